"""Audio commands: ``check`` (any file against a delivery profile).

Exit codes: 0 every file passes, 1 a file fails a rule, 2 bad input (a missing file, a file
that is not audio) or bad usage.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from renderer.profiles import PROFILE_NAMES


def register(cli: click.Group) -> None:
    """Add the audio commands to ``cli`` (safe to repeat)."""
    if check.name not in cli.commands:
        cli.add_command(check)


@click.command()
@click.argument(
    "files", metavar="FILE...", nargs=-1, required=True, type=click.Path(path_type=Path)
)
@click.option(
    "--profile",
    "profile_name",
    type=click.Choice(PROFILE_NAMES),
    default="acx",
    show_default=True,
    help="The delivery spec to check against.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the reports as JSON.")
def check(files: tuple[Path, ...], profile_name: str, as_json: bool) -> None:
    """Measure audio FILEs (ours or not) and check them against a delivery profile:
    RMS, loudness, true peak, noise floor, silence at the ends, format."""
    from renderer.check import check as check_file
    from renderer.measure import measure_file
    from renderer.profiles import profile

    chosen = profile(profile_name)
    reports = [check_file(measure_file(path), chosen) for path in files]
    if as_json:
        payload = [
            {"file": str(path), **r.as_json()} for path, r in zip(files, reports, strict=True)
        ]
        click.echo(json.dumps(payload, indent=2))
    else:
        for path, report in zip(files, reports, strict=True):
            click.echo(f"{path}: {'passes' if report.passed else 'FAILS'} {chosen.name}")
            for result in report.results:
                mark = "pass" if result.passed else "FAIL"
                click.echo(f"  {mark}  {result.label:24s} {result.shown:>16s}   {result.limit}")
    if not all(r.passed for r in reports):
        sys.exit(1)
