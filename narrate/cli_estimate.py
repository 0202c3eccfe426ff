"""``narrate estimate``: a thin shell over :func:`jobs.estimate.estimate` (what a render
would send, cost and take, before anything runs), printed as text or ``--json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from narrate.options import audio_format_options, document_options, voicing_options

if TYPE_CHECKING:
    from jobs.estimate import Estimate


def register(cli: click.Group) -> None:
    if estimate.name not in cli.commands:
        cli.add_command(estimate)


@click.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@document_options(
    default_engine="cosyvoice",
    engine_help="A billed engine is priced; one that runs here is timed (CPU and wall time).",
)
@voicing_options
@audio_format_options
@click.option(
    "--prices",
    type=click.Path(path_type=Path, dir_okay=False),
    help="JSON price table (default: NARRATE_COSYVOICE_PRICES, else the list prices).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the estimate as JSON.")
def estimate(prices: Path | None, as_json: bool, **options: Any) -> None:
    """Characters, requests, minimum time and price of rendering INPUT with CosyVoice;
    with an engine that runs here (espeak, piper), the audio length and the time to render
    it (synthesis, stitching and encoding)."""
    from jobs.estimate import estimate as estimate_render
    from narrate.cli import render_request
    from narrate.settings import Settings

    request = render_request(input_path=options.pop("input_path"), **options)
    found = estimate_render(request, Settings.from_env(), prices)
    if as_json:
        click.echo(json.dumps(as_data(found), ensure_ascii=False, indent=2))
    else:
        for line in as_lines(found):
            click.echo(line)


def as_data(found: Estimate) -> dict[str, Any]:
    """The ``--json`` form of a :class:`jobs.estimate.Estimate`."""
    cost = found.cost
    data: dict[str, Any] = {"engine": found.engine, "characters": cost.characters}
    new: dict[str, Any] = {"segments": cost.segments_new, "characters": cost.characters_new}
    if found.pricing is not None:
        prices = found.pricing.price_list
        data |= {
            "model": prices.model,
            "region": prices.region,
            "billed_characters": cost.billed_characters,
            "requests": cost.segments,
            "price": str(found.pricing.price),
            "currency": prices.currency,
            "price_per_10k": str(prices.per_10k),
            "price_source": prices.source,
        }
        new |= {
            "billed_characters": cost.billed_characters_new,
            "price": str(found.pricing.price_new),
        }
    if found.pace is not None:
        data |= {
            "rate_limit_per_s": found.pace.requests_per_s,
            "min_seconds": round(found.pace.min_s, 2),
            "min_seconds_paced": round(found.pace.min_paced_s, 2),
        }
    if found.time is not None:
        time = found.time
        data |= {
            "segments": cost.segments,
            "audio_seconds": round(time.audio_s, 1),
            "cpu_seconds": round(time.cpu_s, 1),
            "stitch_cpu_seconds": round(time.stitch_cpu_s, 1),
            "book_seconds": round(time.book_s, 1),
            "processes": time.processes,
            "wall_seconds": round(time.wall_s, 1),
            "chars_per_audio_s": time.chars_per_audio_s,
            "cpu_s_per_audio_s": time.cpu_s_per_audio_s,
        }
        new |= {
            "audio_seconds": round(time.new_audio_s, 1),
            "cpu_seconds": round(time.new_cpu_s, 1),
        }
        data["chapters"] = [
            {
                "index": c.index,
                "title": c.title,
                "segments": c.segments,
                "characters": c.characters,
                "audio_seconds": c.audio_s,
            }
            for c in time.chapters
        ]
    else:
        data["chapters"] = [
            {
                "index": c.index,
                "title": c.title,
                "segments": c.segments,
                "characters": c.characters,
                "billed": c.billed_characters,
            }
            for c in cost.per_chapter
        ]
    new["chapters_to_stitch"] = cost.chapters_changed
    data["new"] = new
    return data


def as_lines(found: Estimate) -> list[str]:
    """The text form of a :class:`jobs.estimate.Estimate`."""
    cost = found.cost
    lines = []
    if found.time is not None:
        time = found.time
        lines += [
            f"{c.index:3d}. {c.title}: {c.segments} segments, {c.characters} characters, "
            f"about {clock(c.audio_s)} of audio"
            for c in time.chapters
        ]
        lines += [
            f"total: {cost.characters} characters, {cost.segments} segments, about "
            f"{clock(time.audio_s)} of audio",
            f"CPU: about {clock(time.cpu_s)} of synthesis ({found.display_name} at "
            f"{time.cpu_s_per_audio_s:g} CPU s per audio s) and {clock(time.stitch_cpu_s)} of "
            f"stitching and encoding ({found.audio_format})"
            + (f", then {clock(time.book_s)} for the book's one file" if time.book_s else ""),
            f"time: about {clock(time.wall_s)} on {time.processes} process(es) (NARRATE_WORKERS)",
        ]
    else:
        lines += [
            f"{c.index:3d}. {c.title}: {c.segments} requests, {c.characters} characters, "
            f"{c.billed_characters} billed"
            for c in cost.per_chapter
        ]
        lines.append(
            f"total: {cost.characters} characters, {cost.billed_characters} billed "
            f"characters, {cost.segments} requests"
        )
    if found.pace is not None:
        pace = found.pace
        lines.append(
            f"minimum time at {pace.requests_per_s:g} requests/s: {pace.min_s:.1f} s "
            f"({pace.min_paced_s:.1f} s with narrate's {pace.margin_ms} ms safety margin)"
        )
    against = f"against what is rendered: {cost.summary()}"
    if found.pricing is not None:
        prices = found.pricing.price_list
        lines.append(
            f"price: {found.pricing.price} {prices.currency} ({prices.model} at "
            f"{prices.per_10k} {prices.currency} per 10,000 characters; {prices.source})"
        )
        against += f"; price of what is new: {found.pricing.price_new} {prices.currency}"
    lines.append(against)
    return lines


def clock(seconds: float) -> str:
    """``1:02:03``, or ``2:03`` under an hour."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"
