"""Bulletin commands: ``narrate bulletin run|schedule|list|unschedule``.

Exit codes: 0 written (warnings, such as a bulletin shorter than its target for want of
news, are printed and kept in its manifest), 1 the bulletin could not be rendered, 2 a bad
definition or option.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import click


def register(cli: click.Group) -> None:
    if bulletin.name not in cli.commands:
        cli.add_command(bulletin)


@click.group()
def bulletin() -> None:
    """News bulletins from feeds: run one now, or on a schedule."""


def _now(text: str | None) -> dt.datetime:
    from narrate.errors import UsageError

    if not text:
        return dt.datetime.now(dt.UTC)
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"--now {text!r} is not an ISO 8601 time", hint="e.g. 2026-12-02T18:00:00+00:00"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


@bulletin.command("run")
@click.argument("definition", metavar="DEF.toml", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Folder.")
@click.option("--now", help="Render it as of this moment (ISO 8601); default: now.")
@click.option("--base-url", help="Where the folder is served, for the podcast feed's enclosures.")
@click.option("--json", "as_json", is_flag=True, help="Print its manifest as JSON.")
def run(
    definition: Path, out_dir: Path, now: str | None, base_url: str | None, as_json: bool
) -> None:
    """Fetch the feeds, script, render and master a bulletin into --out; update feed.xml."""
    from jobs.bulletins import run_bulletin
    from narrate.settings import Settings
    from ssml.bulletin import load_definition

    result = run_bulletin(
        Settings.from_env(), load_definition(definition), out_dir, _now(now), base_url=base_url
    )
    manifest = result.manifest
    if as_json:
        click.echo(json.dumps(manifest, indent=2, ensure_ascii=False))
    for feed in manifest["feeds"]:
        if feed["status"] != "ok":
            click.echo(f"feed {feed['status']}: {feed['url']}: {feed['error']}", err=True)
    for warning in manifest["warnings"]:
        click.echo(f"warning: {warning}", err=True)
    if not as_json:
        click.echo(
            f"wrote {result.audio} ({manifest['duration_ms'] / 1000:.1f} s of "
            f"{manifest['target_duration_ms'] / 1000:.0f}, {len(manifest['items'])} stories)"
        )


@bulletin.command("schedule")
@click.argument("definition", metavar="DEF.toml", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Folder.")
@click.option("--base-url", help="Where the folder is served, for the podcast feed's enclosures.")
def schedule(definition: Path, out_dir: Path, base_url: str | None) -> None:
    """Run DEF.toml on its schedule (beat runs it; replaces a schedule of the same name)."""
    from jobs.schedules import add_schedule, next_slot
    from narrate.cli import open_database
    from ssml.bulletin import load_definition

    parsed = load_definition(definition)
    now = dt.datetime.now(dt.UTC)
    add_schedule(
        open_database().factory,
        parsed,
        definition.read_text(encoding="utf-8"),
        out_dir,
        base_url,
        now,
    )
    upcoming = next_slot(parsed.schedule, parsed.timezone, now)
    click.echo(f"scheduled {parsed.name!r}: next run {_local(upcoming, parsed.timezone)}")


@bulletin.command("list")
@click.option("--json", "as_json", is_flag=True)
def list_schedules(as_json: bool) -> None:
    """The scheduled bulletins: schedule, next run, last run."""
    from jobs.schedules import next_slot, schedules
    from narrate.cli import open_database

    now = dt.datetime.now(dt.UTC)
    rows = []
    for row, last in schedules(open_database().factory):
        rows.append(
            {
                "name": row.name,
                "schedule": row.cron,
                "timezone": row.timezone,
                "out": row.out_dir,
                "next_run": next_slot(row.cron, row.timezone, now).isoformat(),
                "last_run": None
                if last is None
                else {
                    "slot": dt.datetime.fromtimestamp(last.slot_ms / 1000, dt.UTC).isoformat(),
                    "status": last.status,
                    "error": last.error,
                },
            }
        )
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    for entry in rows:
        ran = entry["last_run"]
        said = f"last {ran['status']} ({ran['slot']})" if isinstance(ran, dict) else "never run"
        upcoming = dt.datetime.fromisoformat(str(entry["next_run"]))
        click.echo(
            f"{entry['name']}: '{entry['schedule']}' {entry['timezone']}; next "
            f"{_local(upcoming, str(entry['timezone']))}; {said}"
        )


@bulletin.command("unschedule")
@click.argument("name")
def unschedule(name: str) -> None:
    """Stop running the bulletin NAME (its files stay)."""
    from jobs.schedules import remove_schedule
    from narrate.cli import open_database

    remove_schedule(open_database().factory, name)
    click.echo(f"unscheduled {name!r}")


def _local(moment: dt.datetime, timezone: str) -> str:
    import zoneinfo

    return moment.astimezone(zoneinfo.ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M %Z")
