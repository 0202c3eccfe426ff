"""``narrate captions``: a job's captions from the database, or (``--check``) any caption
file checked against a caption profile.

Exit codes: 0 printed (or, with ``--check``, every file passes); 1 a checked file breaks a
rule; 2 bad usage or bad input (no such job, a file that is not WebVTT or SubRip).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from narrate.errors import UsageError
from renderer.caption_profiles import CAPTION_PROFILE_NAMES

_CAPTION_SUFFIXES = (".vtt", ".srt")


def register(cli: click.Group) -> None:
    """Add ``captions`` to ``cli`` (safe to repeat)."""
    if captions.name not in cli.commands:
        cli.add_command(captions)


@click.command()
@click.argument("targets", metavar="JOB | --check FILE...", nargs=-1)
@click.option(
    "--check",
    is_flag=True,
    help="Check caption FILEs (.vtt or .srt, ours or not) against --profile instead.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["vtt", "srt", "json"]),
    help="A job's captions as WebVTT (the default), SubRip, or the JSON word track.",
)
@click.option(
    "--chapter", type=int, help="Only this chapter (its number); vtt/srt default to the first."
)
@click.option(
    "--profile",
    "profile_name",
    type=click.Choice(CAPTION_PROFILE_NAMES),
    help="Caption profile: re-cut a job's captions to it (default: the job's own), or "
    "check against it (default: standard).",
)
@click.option("--json", "as_json", is_flag=True, help="With --check: the reports as JSON.")
def captions(
    targets: tuple[str, ...],
    check: bool,
    fmt: str | None,
    chapter: int | None,
    profile_name: str | None,
    as_json: bool,
) -> None:
    """Print a job's captions from the database (WebVTT, SRT or the JSON word track), or
    with --check list every subtitle rule each caption FILE breaks, cue by cue.

    \b
    --check applies line length, lines, reading speed, shortest and longest cue, the gap
    between cues, overlaps and line breaks after an article; whether cues are in sync
    with the speech needs the audio and cannot be checked from a file. Exit 0 when every
    file passes, 1 when one breaks a rule, 2 for a file that is not WebVTT or SubRip."""
    if check:
        _check_files(targets, fmt, chapter, profile_name or "standard", as_json)
    else:
        _print_job(targets, fmt or "vtt", chapter, profile_name, as_json)


def _check_files(
    targets: tuple[str, ...],
    fmt: str | None,
    chapter: int | None,
    profile_name: str,
    as_json: bool,
) -> None:
    from renderer.caption_check import check_cues, read_caption_file, report_lines
    from renderer.caption_profiles import caption_profile

    if not targets:
        raise UsageError(
            "--check needs the caption files to check",
            hint="narrate captions --check FILE.vtt [FILE.srt ...] [--profile standard]",
        )
    if fmt is not None or chapter is not None:
        raise UsageError(
            "--format and --chapter choose a job's captions; --check reads caption files",
            hint="narrate captions --check FILE.vtt, or narrate captions JOB --format srt",
        )
    chosen = caption_profile(profile_name)
    paths = [Path(target) for target in targets]
    reports = [check_cues(read_caption_file(path)[1], chosen) for path in paths]
    if as_json:
        payload = [
            {"file": str(path), **report.as_json()}
            for path, report in zip(paths, reports, strict=True)
        ]
        click.echo(json.dumps(payload, ensure_ascii=False, indent=2))
    else:
        for path, report in zip(paths, reports, strict=True):
            for line in report_lines(str(path), report):
                click.echo(line)
    if not all(report.passed for report in reports):
        sys.exit(1)


def _print_job(
    targets: tuple[str, ...],
    fmt: str,
    chapter: int | None,
    profile_name: str | None,
    as_json: bool,
) -> None:
    from jobs.export import chapter_captions, finished_chapters, word_track
    from jobs.serialize import dumps
    from narrate.cli import open_database
    from renderer.caption_profiles import caption_profile

    if len(targets) != 1:
        raise UsageError(
            "give one job id" if not targets else f"give one job id, not {len(targets)}",
            hint="narrate captions JOB [--format vtt|srt|json]; to check caption files: "
            "narrate captions --check FILE...",
        )
    job_id = targets[0]
    if job_id.lower().endswith(_CAPTION_SUFFIXES) or Path(job_id).is_file():
        raise UsageError(
            f"{job_id} is a file, not a job id",
            hint=f"to check a caption file: narrate captions --check {job_id}",
        )
    if as_json:
        raise UsageError(
            "--json goes with --check",
            hint="a job's word track as JSON is narrate captions JOB --format json",
        )
    if fmt == "json" and profile_name is not None:
        raise UsageError(
            "--profile cuts WebVTT or SRT captions; the JSON word track has no cues",
            hint="narrate captions JOB --format vtt --profile " + profile_name,
        )
    ctx = open_database()
    if fmt == "json":
        click.echo(dumps(word_track(ctx.factory, job_id, chapter)))
        return
    first = finished_chapters(ctx.factory, job_id, chapter)[0]  # default: the first chapter
    chosen = caption_profile(profile_name) if profile_name else None
    text, warnings = chapter_captions(ctx.factory, first, fmt, chosen)
    click.echo(text, nl=False)
    for warning in warnings:
        click.echo(
            f"warning: captions of chapter {first.index} ({first.title}): {warning.message}",
            err=True,
        )
