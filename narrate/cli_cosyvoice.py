"""CosyVoice commands: ``simulate``, ``estimate`` and ``voices create|list|status|delete``.

Added to the main command by :func:`register` (idempotent). Errors are narrate errors, so
``narrate.cli.main`` turns them into one message and an exit code (2 for what the user
can fix: a bad option, a missing key, a sample that fails the checks).
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from renderer.engines import ENGINES

DEFAULT_PREFIX = "narrate"


def register(cli: click.Group, voices: click.Group) -> None:
    """Add the CosyVoice commands to ``cli`` and its ``voices`` group (safe to repeat)."""
    for group, command in (
        (cli, simulate),
        (cli, estimate),
        (voices, voices_create),
        (voices, voices_list),
        (voices, voices_status),
        (voices, voices_delete),
    ):
        if command.name not in group.commands:
            group.add_command(command)


# --- simulate -------------------------------------------------------------------------


@click.group()
def simulate() -> None:
    """Run a local simulator of a cloud service (for tests and dry runs)."""


@simulate.command("cosyvoice")
@click.option("--port", type=int, default=8765, show_default=True, help="0 picks a free port.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--api-key", help="Require this key (default: any non-empty key).")
@click.option("--region", type=click.Choice(["beijing", "singapore"]), default="beijing")
@click.option("--rate-limit", type=int, default=3, show_default=True, help="Tasks/s; 0 = none.")
@click.option(
    "--throttle-mode", type=click.Choice(["task", "handshake"]), default="task", show_default=True
)
@click.option(
    "--fault",
    "faults",
    multiple=True,
    type=click.Choice(["throttle", "internal", "arrears", "drop", "slow", "truncate"]),
    help="A fault to inject (repeatable); see --fail-rate.",
)
@click.option("--fail-rate", type=click.FloatRange(0, 1), default=0.0, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the fault draws.")
@click.option("--fault-marker", help="Fail every task whose text contains this string.")
@click.option("--first-packet", type=float, default=0.0, help="Latency of the first audio, s.")
@click.option("--slow-first-packet", type=float, default=3.0, show_default=True)
@click.option("--rtf", type=float, default=0.0, help="Seconds of work per second of audio.")
@click.option("--text-gap-timeout", type=float, default=23.0, show_default=True)
@click.option("--idle-timeout", type=float, default=60.0, show_default=True)
@click.option(
    "--timestamps",
    type=click.Choice(["sentence-end", "task-finished", "both"]),
    default="sentence-end",
    show_default=True,
)
@click.option("--time-base", type=click.Choice(["cumulative", "sentence"]), default="cumulative")
@click.option("--voice-ready-after", type=float, default=0.2, show_default=True)
def simulate_cosyvoice(
    port: int,
    host: str,
    api_key: str | None,
    region: str,
    rate_limit: int,
    throttle_mode: str,
    faults: tuple[str, ...],
    fail_rate: float,
    seed: int,
    fault_marker: str | None,
    first_packet: float,
    slow_first_packet: float,
    rtf: float,
    text_gap_timeout: float,
    idle_timeout: float,
    timestamps: str,
    time_base: str,
    voice_ready_after: float,
) -> None:
    """Serve a CosyVoice simulator: WebSocket synthesis, voice enrollment and /stats."""
    from renderer.cosyvoice.simulator import SimulatorConfig, serve_forever

    config = SimulatorConfig(
        api_key=api_key,
        region=region,
        rate_limit=rate_limit,
        throttle_mode=throttle_mode,
        faults=faults,
        fail_rate=fail_rate if faults else 0.0,
        seed=seed,
        fault_marker=fault_marker,
        first_packet_s=first_packet,
        slow_first_packet_s=slow_first_packet,
        rtf=rtf,
        text_gap_timeout_s=text_gap_timeout,
        idle_timeout_s=idle_timeout,
        timestamps=timestamps,
        time_base=time_base,
        voice_ready_s=voice_ready_after,
    )

    def ready(bound: int) -> None:
        click.echo(
            f"CosyVoice simulator on ws://{host}:{bound}/api-ws/v1/inference "
            f"(stats: http://{host}:{bound}/stats)\n"
            f"  export NARRATE_COSYVOICE_URL=ws://{host}:{bound}/api-ws/v1/inference "
            "DASHSCOPE_API_KEY=any-key",
            err=True,
        )

    with contextlib.suppress(KeyboardInterrupt):
        serve_forever(config, host, port, ready)


# --- estimate -------------------------------------------------------------------------


@dataclass(frozen=True)
class ChapterCost:
    index: int
    title: str
    segments: int
    characters: int
    billed: int


def estimate_document(
    input_path: Path,
    *,
    model: str | None,
    chapters: str | None,
    include_matter: bool,
    voice: str | None,
    rate: float,
    options: tuple[tuple[str, str], ...],
    lexicon: Path | None = None,
    latex: str = "speak",
) -> tuple[str, str, list[ChapterCost]]:
    """``(model, region, per-chapter costs)``: what a render would send, without sending it.

    The document is read, annotated and segmented exactly as ``narrate render`` does; the
    model and options are checked, and the voice only when given (pricing needs no voice
    and no key).
    """
    from jobs.planning import plan_document
    from jobs.render import RenderRequest, policy_for, read_document
    from renderer.cosyvoice.engine import CosyVoiceEngine
    from renderer.cosyvoice.options import check_model, check_voice_for_model, parse_options
    from renderer.cosyvoice.text import plan_task
    from renderer.engines import get_engine

    engine = get_engine("cosyvoice")
    assert isinstance(engine, CosyVoiceEngine)
    chosen = model or engine.config.default_model
    info = check_model(chosen, engine.config.region)
    if voice:
        check_voice_for_model(voice, info)
    ssml_setting = str(parse_options(options, info).get("ssml", "auto"))
    request = RenderRequest(
        input_path,
        "cosyvoice",
        chapters=chapters,
        include_matter=include_matter,
        lexicon=lexicon,
        latex=latex,
    )
    planned = plan_document(read_document(request), policy_for(engine))
    costs = []
    for chapter in planned:
        billed = sum(
            plan_task(s.ssml, ssml_setting=ssml_setting, rate=round(rate, 3)).billed
            for s in chapter.segments
        )
        costs.append(
            ChapterCost(
                chapter.index,
                chapter.title,
                len(chapter.segments),
                sum(s.chars for s in chapter.segments),
                billed,
            )
        )
    return chosen, engine.config.region, costs


@click.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.option(
    "--engine",
    type=click.Choice(ENGINES),
    default="cosyvoice",
    show_default=True,
    help="A billed engine is priced; one that runs here is timed (CPU and wall time).",
)
@click.option("--model", help="The model (default: NARRATE_COSYVOICE_MODEL or v3-flash).")
@click.option("--chapters", metavar="RANGE", help="Only these chapters, 1-based: 3-5 or 1,4-6.")
@click.option("--include-matter", is_flag=True, help="Also count front and back matter.")
@click.option("--voice", help="Check this voice against the model too.")
@click.option("--rate", type=float, default=1.0, show_default=True)
@click.option(
    "--lexicon",
    type=click.Path(path_type=Path, dir_okay=False),
    help="As for render: aliases change what is sent and billed.",
)
@click.option("--latex", type=click.Choice(["speak", "passthrough"]), default="speak")
@click.option(
    "--option", "engine_options", multiple=True, metavar="NAME=VALUE", help="As for render."
)
@click.option(
    "--prices",
    type=click.Path(path_type=Path, dir_okay=False),
    help="JSON price table (default: NARRATE_COSYVOICE_PRICES, else the list prices).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the estimate as JSON.")
def estimate(
    input_path: Path,
    engine: str,
    model: str | None,
    chapters: str | None,
    include_matter: bool,
    voice: str | None,
    rate: float,
    lexicon: Path | None,
    latex: str,
    engine_options: tuple[str, ...],
    prices: Path | None,
    as_json: bool,
) -> None:
    """Characters, requests, minimum time and price of rendering INPUT with CosyVoice;
    with an engine that runs here (espeak, piper), the audio and synthesis time."""
    import os

    from jobs.throttle import DEFAULT_LIMITS
    from narrate.cli import _parse_options
    from renderer.cosyvoice.billing import load_prices
    from renderer.engines import engine_spec

    spec = engine_spec(engine)
    cost = _edit_cost(
        input_path,
        engine=engine,
        model=model,
        voice=voice,
        rate=rate,
        options=_parse_options(engine_options),
        chapters=chapters,
        include_matter=include_matter,
        lexicon=lexicon,
        latex=latex,
    )
    if not spec.billing:
        estimate_time(
            input_path,
            engine=engine,
            chapters=chapters,
            include_matter=include_matter,
            rate=rate,
            lexicon=lexicon,
            latex=latex,
            as_json=as_json,
            cost=cost,
        )
        return
    table = load_prices(prices, os.environ)
    chosen, region, costs = estimate_document(
        input_path,
        model=model,
        chapters=chapters,
        include_matter=include_matter,
        voice=voice,
        rate=rate,
        options=_parse_options(engine_options),
        lexicon=lexicon,
        latex=latex,
    )
    requests = sum(c.segments for c in costs)
    billed = sum(c.billed for c in costs)
    characters = sum(c.characters for c in costs)
    limit = DEFAULT_LIMITS[spec.rate_limit_account or engine]
    per_second = limit.requests / (limit.window_ms / 1000)
    minimum_s = requests / per_second
    paced_s = requests * limit.span_s / limit.requests
    price = table.price(chosen, billed)
    if as_json:
        payload: dict[str, Any] = {
            "engine": engine,
            "model": chosen,
            "region": region,
            "characters": characters,
            "billed_characters": billed,
            "requests": requests,
            "rate_limit_per_s": per_second,
            "min_seconds": round(minimum_s, 2),
            "min_seconds_paced": round(paced_s, 2),
            "price": str(price),
            "currency": table.currency,
            "price_per_10k": str(table.per_10k[chosen]),
            "price_source": table.source,
            "chapters": [c.__dict__ for c in costs],
            "new": {
                "segments": cost.segments_new,
                "characters": cost.characters_new,
                "billed_characters": cost.billed_characters_new,
                "price": str(table.price(chosen, cost.billed_characters_new or 0)),
                "chapters_to_stitch": cost.chapters_changed,
            },
        }
        click.echo(json.dumps(payload, ensure_ascii=False, indent=2))
        return
    for c in costs:
        click.echo(
            f"{c.index:3d}. {c.title}: {c.segments} requests, {c.characters} characters, "
            f"{c.billed} billed"
        )
    click.echo(
        f"total: {characters} characters, {billed} billed characters, {requests} requests\n"
        f"minimum time at {per_second:g} requests/s: {minimum_s:.1f} s "
        f"({paced_s:.1f} s with narrate's {limit.margin_ms} ms safety margin)\n"
        f"price: {price} {table.currency} ({chosen} at {table.per_10k[chosen]} "
        f"{table.currency} per 10,000 characters; {table.source})\n"
        f"against what is rendered: {cost.summary()}; price of what is new: "
        f"{table.price(chosen, cost.billed_characters_new or 0)} {table.currency}"
    )


def _edit_cost(
    input_path: Path,
    *,
    engine: str,
    model: str | None,
    voice: str | None,
    rate: float,
    options: tuple[tuple[str, str], ...],
    chapters: str | None,
    include_matter: bool,
    lexicon: Path | None,
    latex: str,
) -> Any:
    """What of INPUT is new against what is rendered (:func:`jobs.render.cost_of`)."""
    from jobs.render import RenderRequest, cost_of
    from narrate.settings import Settings

    request = RenderRequest(
        input_path,
        engine,
        voice=voice,
        rate=rate,
        model=model,
        engine_options=options,
        chapters=chapters,
        include_matter=include_matter,
        lexicon=lexicon,
        latex=latex,
    )
    return cost_of(request, Settings.from_env())[1]


@dataclass(frozen=True)
class ChapterTime:
    index: int
    title: str
    segments: int
    characters: int
    audio_seconds: float


def estimate_time(
    input_path: Path,
    *,
    engine: str,
    chapters: str | None,
    include_matter: bool,
    rate: float,
    lexicon: Path | None,
    latex: str,
    as_json: bool,
    cost: Any = None,
) -> None:
    """``estimate`` for an engine that runs on this machine: time, not money.

    Audio length follows from the characters and the engine's measured pace
    (``EngineSpec.chars_per_audio_s``) at ``--rate``; CPU time from its measured cost
    per second of audio; wall time from the processes a render uses (``NARRATE_WORKERS``,
    default the cores), never more than there are segments.
    """
    from jobs.planning import plan_document
    from jobs.render import RenderRequest, policy_for, read_document
    from narrate.errors import UsageError
    from narrate.settings import Settings
    from renderer.engine import validate_prosody
    from renderer.engines import get_engine

    validate_prosody(rate, 1.0, 1.0)
    engine_obj = get_engine(engine)
    spec = engine_obj.spec
    if spec.chars_per_audio_s is None or spec.cpu_s_per_audio_s is None:
        raise UsageError(f"narrate has no measured pace for the {engine} engine to estimate from")
    request = RenderRequest(
        input_path,
        engine,
        chapters=chapters,
        include_matter=include_matter,
        lexicon=lexicon,
        latex=latex,
    )
    planned = plan_document(read_document(request), policy_for(engine_obj))
    workers = Settings.from_env().workers
    rows = [
        ChapterTime(
            chapter.index,
            chapter.title,
            len(chapter.segments),
            sum(s.chars for s in chapter.segments),
            round(sum(s.chars for s in chapter.segments) / spec.chars_per_audio_s / rate, 1),
        )
        for chapter in planned
    ]
    segments = sum(r.segments for r in rows)
    characters = sum(r.characters for r in rows)
    audio_s = characters / spec.chars_per_audio_s / rate
    cpu_s = audio_s * spec.cpu_s_per_audio_s
    processes = max(1, min(workers, segments))
    wall_s = cpu_s / processes
    if as_json:
        payload = {
            "engine": engine,
            "characters": characters,
            "segments": segments,
            "audio_seconds": round(audio_s, 1),
            "cpu_seconds": round(cpu_s, 1),
            "processes": processes,
            "wall_seconds": round(wall_s, 1),
            "chars_per_audio_s": spec.chars_per_audio_s,
            "cpu_s_per_audio_s": spec.cpu_s_per_audio_s,
            "chapters": [r.__dict__ for r in rows],
        }
        if cost is not None:
            new_audio_s = cost.characters_new / spec.chars_per_audio_s / rate
            payload["new"] = {
                "segments": cost.segments_new,
                "characters": cost.characters_new,
                "audio_seconds": round(new_audio_s, 1),
                "cpu_seconds": round(new_audio_s * spec.cpu_s_per_audio_s, 1),
                "chapters_to_stitch": cost.chapters_changed,
            }
        click.echo(json.dumps(payload, ensure_ascii=False, indent=2))
        return
    for row in rows:
        click.echo(
            f"{row.index:3d}. {row.title}: {row.segments} segments, {row.characters} "
            f"characters, about {_clock(row.audio_seconds)} of audio"
        )
    click.echo(
        f"total: {characters} characters, {segments} segments, about {_clock(audio_s)} of "
        f"audio\nsynthesis: about {_clock(cpu_s)} of CPU ({spec.display_name} at "
        f"{spec.cpu_s_per_audio_s:g} CPU s per audio s), about {_clock(wall_s)} on "
        f"{processes} process(es) (NARRATE_WORKERS), plus stitching and encoding"
    )
    if cost is not None:
        click.echo(f"against what is rendered: {cost.summary()}")


def _clock(seconds: float) -> str:
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


# --- voices ---------------------------------------------------------------------------


def _enrollment() -> Any:
    from renderer.cosyvoice.config import from_env
    from renderer.cosyvoice.enrollment import EnrollmentClient

    config = from_env()
    config.require_key()
    return EnrollmentClient(config)


def _is_url(value: str) -> bool:
    return value.startswith(("http://", "https://"))


@click.command("create")
@click.option("--clone", "clone", metavar="FILE_OR_URL", help="Clone the voice of a sample.")
@click.option("--design", "design", metavar="DESCRIPTION", help="Describe a new voice.")
@click.option("--target-model", required=True, help="The model the voice is made for.")
@click.option("--prefix", default=DEFAULT_PREFIX, show_default=True, help="[a-z0-9]{1,9}")
@click.option("--language", help="The sample's (or preview's) language: zh, en, ...")
@click.option(
    "--public-url", help="Where FILE can be downloaded by the service (checked locally first)."
)
@click.option("--preview-text", default="", help="Design: the text of the preview audio.")
@click.option(
    "--preview-out", type=click.Path(path_type=Path), help="Design: save the preview WAV here."
)
@click.option("--wait", is_flag=True, help="Wait until the voice is OK or rejected.")
@click.option("--poll-interval", type=float, default=10.0, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def voices_create(
    clone: str | None,
    design: str | None,
    target_model: str,
    prefix: str,
    language: str | None,
    public_url: str | None,
    preview_text: str,
    preview_out: Path | None,
    wait: bool,
    poll_interval: float,
    as_json: bool,
) -> None:
    """Create a CosyVoice voice: --clone FILE_OR_URL or --design "description"."""
    from narrate.errors import UsageError
    from renderer.cosyvoice.enrollment import STATUSES, check_prefix, check_target
    from renderer.cosyvoice.samples import check_sample

    if (clone is None) == (design is None):
        raise UsageError("give exactly one of --clone FILE_OR_URL and --design DESCRIPTION")
    check_prefix(prefix)
    report: dict[str, Any] = {}
    if clone is not None:
        url = clone
        if not _is_url(clone):
            from renderer.cosyvoice.config import from_env

            check_target(target_model, from_env().region, design=False)
            path = Path(clone)
            if not path.is_file():
                raise UsageError(f"{clone} is neither a file nor an http(s) URL")
            problems, _stats = check_sample(path)
            fatal = [p for p in problems if p.fatal]
            for problem in problems:
                label = "problem" if problem.fatal else "note"
                click.echo(f"{label}: {problem.check}: {problem.message}", err=True)
            if fatal:
                raise UsageError(
                    f"{path.name} cannot be used as a clone sample ({len(fatal)} problem(s) above)",
                    hint="fix the sample and run the command again",
                )
            if public_url is None:
                raise UsageError(
                    f"{path.name} passed the local checks, but the service takes only a public "
                    "URL, which it downloads itself",
                    hint="upload the file (e.g. an OSS bucket with public-read, or a signed URL) "
                    f"and run again with --clone {path} --public-url URL",
                )
            url = public_url
        voice_id = _enrollment().clone(
            target_model=target_model, prefix=prefix, url=url, language=language
        )
    else:
        assert design is not None
        text = preview_text or (
            "你好，这是我的新声音。"
            if any("\u4e00" <= c <= "\u9fff" for c in design)
            else "Hello, this is my new voice."
        )
        voice_id, preview = _enrollment().design(
            target_model=target_model,
            prefix=prefix,
            prompt=design,
            preview_text=text,
            language=language,
        )
        if preview is not None and preview_out is not None:
            preview_out.write_bytes(preview)
            report["preview"] = str(preview_out)
    report["voice_id"] = voice_id
    status = "DEPLOYING"
    if wait:
        client = _enrollment()
        for _ in range(60):
            status = client.query(voice_id).status
            if status != "DEPLOYING":
                break
            time.sleep(poll_interval)
    report["status"] = status
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False, indent=2))
        return
    click.echo(voice_id)
    click.echo(
        f"status {status}: {STATUSES.get(status, '')}; use it with --engine cosyvoice "
        f"--model {target_model} --voice {voice_id}",
        err=True,
    )
    if status == "UNDEPLOYED":
        from narrate.errors import SynthesisFailedError

        raise SynthesisFailedError(f"voice {voice_id} was rejected by the service")


@click.command("list")
@click.option("--prefix", help="Only voices created with this prefix.")
@click.option("--json", "as_json", is_flag=True)
def voices_list(prefix: str | None, as_json: bool) -> None:
    """List the account's cloned and designed CosyVoice voices."""
    found = _enrollment().list(prefix=prefix)
    if as_json:
        click.echo(json.dumps([v.__dict__ for v in found], ensure_ascii=False, indent=2))
        return
    for voice in found:
        click.echo(f"{voice.voice_id:48s} {voice.status:10s} {voice.created or ''}")


@click.command("status")
@click.argument("voice_id")
@click.option("--json", "as_json", is_flag=True)
def voices_status(voice_id: str, as_json: bool) -> None:
    """Show a CosyVoice voice's state (DEPLOYING, OK, UNDEPLOYED) and target model."""
    from renderer.cosyvoice.enrollment import STATUSES

    info = _enrollment().query(voice_id)
    if as_json:
        click.echo(json.dumps(info.__dict__, ensure_ascii=False, indent=2))
        return
    click.echo(
        f"{info.voice_id}: {info.status} ({STATUSES.get(info.status, 'unknown state')}); "
        f"target model {info.target_model}"
    )


@click.command("delete")
@click.argument("voice_id")
def voices_delete(voice_id: str) -> None:
    """Delete a CosyVoice voice (irreversible; frees quota)."""
    _enrollment().delete(voice_id)
    click.echo(f"deleted {voice_id}")
