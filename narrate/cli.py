"""The ``narrate`` command: a thin shell over the public functions of jobs/renderer/ssml.

Exit codes: 0 success, 1 the job failed (or an internal error), 2 bad usage or bad input,
130 interrupted.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import traceback
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

import click

from narrate import __version__
from narrate.errors import NarrateError
from narrate.options import (
    audio_format_options,
    document_options,
    read_along_option,
    voicing_options,
)
from renderer.caption_profiles import CAPTION_PROFILE_NAMES
from renderer.engines import ENGINES
from renderer.profiles import PROFILE_NAMES

ENGINE_CHOICES = ENGINES


def main() -> None:
    """Entry point: run the CLI, turning narrate errors into messages and exit codes."""
    # a polite stop (a supervisor's SIGTERM) unwinds like Ctrl-C, so worker processes stop
    signal.signal(signal.SIGTERM, _terminated)
    try:
        cli.main(standalone_mode=False, prog_name="narrate")
    except click.exceptions.Abort:
        click.echo("narrate: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except NarrateError as exc:
        click.echo(f"narrate: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("narrate: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # a bug: say so briefly, details only on request
        if os.environ.get("NARRATE_DEBUG"):
            traceback.print_exc()
        click.echo(
            f"narrate: internal error: {type(exc).__name__}: {exc}\n"
            "  (set NARRATE_DEBUG=1 to see the traceback, and please report it)",
            err=True,
        )
        sys.exit(1)


def _terminated(_signum: int, _frame: object) -> None:
    click.echo("narrate: terminated", err=True)
    sys.exit(143)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="narrate")
def cli() -> None:
    """Turn manuscripts into chapter audio files with captions."""


F = TypeVar("F", bound=Callable[..., Any])


def _input_argument() -> Callable[[F], F]:
    return click.argument(
        "input_path", metavar="INPUT", type=click.Path(path_type=Path, dir_okay=True)
    )


@cli.command()
@_input_argument()
@click.option(
    "--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Output folder."
)
@document_options()
@voicing_options
@audio_format_options
@click.option("--title", help="The book's title (tags, credits, m4b); default: the document's.")
@click.option("--author", help="The book's author; default: the document's.")
@click.option("--narrator", help="Who the credits say narrates; default: the voice.")
@click.option(
    "--cover",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Cover image (JPEG or PNG) for tags and the m4b; default: the EPUB's.",
)
@click.option("--credits", is_flag=True, help="Add opening and closing credits chapters.")
@click.option(
    "--master",
    type=click.Choice(["none", *PROFILE_NAMES]),
    default="none",
    show_default=True,
    help="Master each chapter to a delivery spec and check it (see `narrate check`).",
)
@click.option(
    "--caption-profile",
    type=click.Choice(CAPTION_PROFILE_NAMES),
    default="standard",
    show_default=True,
    help="Subtitle rules captions are cut to (see `narrate captions --check`).",
)
@read_along_option("Also write <book>.epub, an EPUB 3 whose text is highlighted as the audio plays")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
def render(out_dir: Path, quiet: bool, as_json: bool, **options: Any) -> None:
    """Render INPUT into one audio file per chapter, with captions, in --out."""
    from jobs.render import render as run_render
    from narrate.progress import ProgressPrinter
    from narrate.settings import Settings

    request = render_request(**options)
    settings = Settings.from_env()
    printer = ProgressPrinter(enabled=not quiet)
    report = run_render(
        settings,
        request,
        out_dir,
        on_progress=printer.update,
        on_start=printer.start,
        quiet=quiet,
    )
    printer.close()
    if as_json:
        click.echo(
            json.dumps(
                {
                    "job": report.job_id,
                    "status": report.status,
                    "segments": report.segments_total,
                    "synthesized": report.segments_synthesized,
                    "reused": report.segments_reused,
                    "warnings": list(report.warnings),
                    "billed_chars": report.billed_chars,
                    "manifest": report.manifest.to_json() if report.manifest else None,
                    "failures": [asdict(f) for f in report.failures],
                },
                ensure_ascii=False,
                indent=2,
            )
        )
    if report.status != "done":
        click.echo(f"narrate: job {report.job_id} failed; nothing was written to --out", err=True)
        for failure in report.failures:
            click.echo(f"  {failure.where}: {failure.error}", err=True)
        sys.exit(1)
    if not quiet:
        if report.segments_synthesized == 0:
            click.echo(
                f"nothing to synthesize: all {report.segments_total} segments reused "
                "from earlier renders",
                err=True,
            )
        else:
            billed = (
                f"; {report.billed_chars} billed characters"
                if report.billed_chars is not None
                else ""
            )
            click.echo(
                f"synthesized {report.segments_synthesized} segments, "
                f"reused {report.segments_reused}{billed}",
                err=True,
            )
    if report.manifest is not None:
        from jobs.export import caption_warning_lines

        for line in caption_warning_lines(report.manifest):
            click.echo(f"warning: {line}", err=True)
    if not as_json:
        click.echo(f"job {report.job_id}: wrote {out_dir / 'manifest.json'}")


@cli.command()
@_input_argument()
@document_options()
@voicing_options
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
def plan(as_json: bool, **options: Any) -> None:
    """Show how INPUT would be cut into chapters and segments, without synthesizing, and
    what of it is new against what is already rendered (with these voice settings)."""
    from jobs.render import cost_of
    from jobs.serialize import to_data
    from narrate.settings import Settings

    request = render_request(**options)
    prepared, cost = cost_of(request, Settings.from_env())
    document, planned = prepared.document, prepared.plan
    if as_json:
        payload = {
            "cost": to_data(cost),
            "chapters": [
                {
                    "index": chapter.index,
                    "title": chapter.title,
                    "segments": [
                        {
                            "index": s.index,
                            "text": s.text,
                            "ssml": s.ssml,
                            "chars": s.chars,
                            "formulas": [
                                {"source": f.source, "display": f.display, "spoken": f.spoken}
                                for f in s.formulas
                            ],
                        }
                        for s in chapter.segments
                    ],
                }
                for chapter in planned
            ],
            "warnings": list(document.warnings),
        }
        click.echo(json.dumps(payload, ensure_ascii=False, indent=2))
        return
    for chapter, spent in zip(planned, cost.per_chapter, strict=True):
        click.echo(
            f"{chapter.index:3d}. {chapter.title}: {spent.segments} segments, "
            f"{spent.characters} chars ({spent.segments_new} segments new)"
        )
        for formula in (f for s in chapter.segments for f in s.formulas):
            click.echo(f"       {formula.source}  ->  {formula.spoken}")
    click.echo(f"against what is rendered: {cost.summary()}")
    if document.skipped:
        click.echo(f"skipped: {', '.join(document.skipped)} (use --include-matter to read them)")
    for warning in document.warnings:
        click.echo(f"warning: {warning}", err=True)


@cli.group(invoke_without_command=True)
@click.option("--engine", type=click.Choice(ENGINE_CHOICES), default="espeak", show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def voices(ctx: click.Context, engine: str, as_json: bool) -> None:
    """List the voices of an engine (subcommands manage custom voices)."""
    if ctx.invoked_subcommand is not None:
        return
    from renderer.engines import get_engine

    found = get_engine(engine).voices()
    if as_json:
        click.echo(json.dumps([v.__dict__ for v in found], ensure_ascii=False, indent=2))
        return
    licences = {voice.licence for voice in found}
    shared = len(licences) == 1
    for voice in found:
        languages = ",".join(voice.languages)
        rate = f"{voice.sample_rate_hz} Hz" if voice.sample_rate_hz else ""
        licence = "" if shared else f"  licence: {voice.licence or 'unknown'}"
        click.echo(f"{voice.id:24s} {voice.name:32s} {languages:12s} {rate:8s}{licence}".rstrip())
    if shared and found:
        click.echo(f"licence of these voices: {found[0].licence or 'unknown'}")


@cli.group()
def db() -> None:
    """Database schema management."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Create or migrate the schema at NARRATE_DATABASE_URL."""
    from jobs.db import upgrade
    from narrate.settings import Settings

    settings = Settings.from_env()
    upgrade(settings.database_url, revision)
    click.echo(f"database at {_redact(settings.database_url)} is at revision {revision}")


def render_request(
    *,
    input_path: Path,
    engine: str,
    chapters: str | None = None,
    include_matter: bool = False,
    lexicon: Path | None = None,
    latex: str = "speak",
    voice: str | None = None,
    model: str | None = None,
    engine_options: tuple[str, ...] = (),
    audio_format: str = "mp3",
    sample_rate_hz: int | None = None,
    bitrate_kbps: int | None = None,
    rate: float = 1.0,
    pitch: float = 1.0,
    volume: float = 1.0,
    master: str = "none",
    title: str | None = None,
    author: str | None = None,
    narrator: str | None = None,
    cover: Path | None = None,
    credits: bool = False,
    caption_profile: str = "standard",
    read_along: str | None = None,
) -> Any:
    """The :class:`jobs.render.RenderRequest` of ``render``'s options (``submit``'s, the web
    form's; ``plan``'s and ``estimate``'s, which take fewer and leave the rest default)."""
    from jobs.book import BookOptions
    from jobs.render import RenderRequest
    from renderer.stitch import AudioFormat

    return RenderRequest(
        input_path=input_path,
        engine=engine,
        voice=voice,
        rate=rate,
        pitch=pitch,
        volume=volume,
        model=model,
        engine_options=_parse_options(engine_options),
        audio=AudioFormat(audio_format, sample_rate_hz, bitrate_kbps),
        chapters=chapters,
        include_matter=include_matter,
        lexicon=lexicon,
        latex=latex,
        master=None if master == "none" else master,
        book=BookOptions(title, author, narrator, cover, credits),
        caption_profile=caption_profile,
        read_along=read_along,
    )


def _register_engine_commands() -> None:
    from narrate import (
        cli_audio,
        cli_bulletin,
        cli_captions,
        cli_cosyvoice,
        cli_estimate,
        cli_jobs,
        cli_serve,
    )

    cli_audio.register(cli)
    cli_captions.register(cli)
    cli_bulletin.register(cli)
    cli_cosyvoice.register(cli, voices)
    cli_estimate.register(cli)
    cli_jobs.register(cli, render)
    cli_serve.register(cli)


_register_engine_commands()


def _parse_options(pairs: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    parsed = []
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals or not name.strip():
            raise click.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="--option")
        parsed.append((name.strip(), value))
    return tuple(parsed)


def open_database() -> Any:
    """The worker context for commands that read jobs, with a current schema."""
    from jobs.context import configure
    from jobs.db import ensure_schema
    from narrate.settings import Settings

    settings = Settings.from_env()
    ensure_schema(settings.database_url)
    return configure(settings)


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


if __name__ == "__main__":
    main()
