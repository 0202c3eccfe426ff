"""CosyVoice commands: ``simulate`` and ``voices create|list|status|delete``.

Added to the main command by :func:`register` (idempotent). Errors are narrate errors, so
``narrate.cli.main`` turns them into one message and an exit code (2 for what the user
can fix: a bad option, a missing key, a sample that fails the checks).
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Any

import click

DEFAULT_PREFIX = "narrate"


def register(cli: click.Group, voices: click.Group) -> None:
    """Add the CosyVoice commands to ``cli`` and its ``voices`` group (safe to repeat)."""
    for group, command in (
        (cli, simulate),
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
