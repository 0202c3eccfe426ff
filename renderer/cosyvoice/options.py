"""Request settings: model, voice and every synthesis parameter, checked before sending.

Model and voice come from the request (``--model``, ``--voice``); prosody from the
engine-neutral multipliers; everything else from ``--option NAME=VALUE``:

=====================  ======================================  ==========================
option                 values (default)                        wire parameter (§3)
=====================  ======================================  ==========================
``format``             ``pcm`` (default), ``wav``, ``mp3``,    ``format``; the pipeline
                       ``opus``                                needs PCM, anything else
                                                               is decoded with ffmpeg
``sample_rate``        8000, 16000, 22050, 24000 (default),    ``sample_rate``
                       44100, 48000
``bit_rate``           6-510 kbit/s, opus only (32)            ``bit_rate``
``instruction``        free text up to 100 characters;        ``instruction``
                       v3-flash and v3.5 models only
``seed``               0-65535                                 ``seed``
``language``           one of zh en fr de ja ko ru pt th id    ``language_hints`` (a
                       vi (alias ``language_hints``)           one-item list: the
                                                               service reads only the
                                                               first)
``ssml``               ``auto`` (default), ``on``, ``off``     ``enable_ssml``, see
                                                               :mod:`renderer.cosyvoice.text`
``word_timestamps``    ``on`` (default), ``off``               ``word_timestamp_enabled``
=====================  ======================================  ==========================

Prosody: ``rate`` and ``pitch`` multipliers (0.5-2.0) are sent as they are (the service
uses the same scale); ``volume`` (0-2.0, 1.0 = default) becomes ``round(50 * volume)``
on the service's 0-100 scale where 50 is the default.

Refused before any request (a :class:`CosyVoiceUsageError`, exit 2): an unknown model;
a model outside the configured region (v3.5 and v2 are Beijing only); a system voice on
a v3.5 model; a ``*_v2`` voice on a v3 model or a v3 voice on v2; a cloned or designed
voice made for another model; ``instruction`` on a model without it; any value out of
range; an unknown option name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from renderer.cosyvoice.errors import CosyVoiceUsageError
from renderer.cosyvoice.models import (
    BIT_RATE_RANGE,
    FAMILY_DEFAULT_VOICE,
    FORMATS,
    INSTRUCTION_MAX_CHARS,
    LANGUAGES,
    MODELS,
    PITCH_RANGE,
    RATE_RANGE,
    SAMPLE_RATES,
    SEED_RANGE,
    VOICE_ID_RE,
    Model,
    custom_voice_model,
    system_voice_family,
)

DEFAULT_SAMPLE_RATE = 24000
DEFAULT_BIT_RATE = 32
OPTION_NAMES = (
    "format",
    "sample_rate",
    "bit_rate",
    "instruction",
    "seed",
    "language",
    "ssml",
    "word_timestamps",
)
_ALIASES = {"language_hints": "language", "timestamps": "word_timestamps"}
_ON = {"on", "true", "yes", "1"}
_OFF = {"off", "false", "no", "0"}


@dataclass(frozen=True)
class TaskSettings:
    """Everything one synthesis task is started with (validated)."""

    model: str
    voice: str
    format: str = "pcm"
    sample_rate: int = DEFAULT_SAMPLE_RATE
    volume: int = 50
    rate: float = 1.0
    pitch: float = 1.0
    bit_rate: int | None = None
    instruction: str | None = None
    seed: int | None = None
    language: str | None = None
    ssml: str = "auto"
    word_timestamps: bool = True

    def parameters(self, *, ssml_mode: bool, language_hint: str | None = None) -> dict[str, Any]:
        """The ``run-task`` ``payload.parameters`` (§3).

        ``language_hint`` (the document's language) is used when no ``language`` option
        was given and it is a language the service takes.
        """
        params: dict[str, Any] = {
            "text_type": "PlainText",
            "voice": self.voice,
            "format": self.format,
            "sample_rate": self.sample_rate,
            "volume": self.volume,
            "rate": self.rate,
            "pitch": self.pitch,
        }
        if self.word_timestamps:
            params["word_timestamp_enabled"] = True
        if ssml_mode:
            params["enable_ssml"] = True
        if self.format == "opus":
            params["bit_rate"] = self.bit_rate or DEFAULT_BIT_RATE
        if self.seed is not None:
            params["seed"] = self.seed
        if self.instruction is not None:
            params["instruction"] = self.instruction
        language = self.language or (language_hint if language_hint in LANGUAGES else None)
        if language is not None:
            params["language_hints"] = [language]
        return params


def check_model(model: str, region: str) -> Model:
    """The model's facts, or a usage error naming what to choose instead."""
    info = MODELS.get(model)
    if info is None:
        raise CosyVoiceUsageError(
            f"{model!r} is not a CosyVoice model",
            hint=f"use --model with one of {', '.join(MODELS)}",
        )
    if region not in info.regions:
        where = " or ".join(sorted(info.regions))
        raise CosyVoiceUsageError(
            f"{model} is not offered in the {region} region (only {where})",
            hint=f"set NARRATE_COSYVOICE_REGION={sorted(info.regions)[0]} with a key of that "
            "region, or choose cosyvoice-v3-flash / cosyvoice-v3-plus",
        )
    return info


def check_voice_syntax(voice: str) -> None:
    from narrate.errors import VoiceNotFoundError

    if not VOICE_ID_RE.match(voice):
        raise VoiceNotFoundError(
            f"{voice!r} is not a CosyVoice voice id",
            hint="system voices look like longanyang or longxiaochun_v2, cloned voices "
            "like cosyvoice-v3-flash-myvoice-1a2b3c (see `narrate voices list`)",
        )
    target = custom_voice_model(voice)
    if target is not None and target not in MODELS:
        raise VoiceNotFoundError(
            f"voice {voice} was made for {target}, which narrate does not support",
            hint=f"create a voice for one of {', '.join(MODELS)}",
        )


def check_voice_for_model(voice: str, info: Model) -> None:
    """Refuse a voice the model cannot speak with (§3, §8.2)."""
    check_voice_syntax(voice)
    target = custom_voice_model(voice)
    if target is not None:
        if target != info.name:
            raise CosyVoiceUsageError(
                f"voice {voice} was made for {target}, but the job uses {info.name}",
                hint=f"render with --model {target}, or create a voice for {info.name} with "
                f"`narrate voices create ... --target-model {info.name}`",
            )
        return
    if not info.system_voices:
        raise CosyVoiceUsageError(
            f"{info.name} has no system voices and {voice!r} is one",
            hint=f"create a voice with `narrate voices create --clone URL --target-model "
            f"{info.name}` (or --design) and pass its id with --voice",
        )
    family = system_voice_family(voice)
    if family != info.family:
        suggestion = FAMILY_DEFAULT_VOICE.get(info.family, "")
        raise CosyVoiceUsageError(
            f"system voice {voice} is a {family} voice and cannot speak with {info.name}",
            hint=f"choose a {info.family} voice (e.g. --voice {suggestion}) or a "
            f"cosyvoice-{family} model",
        )


def _number(name: str, raw: str, low: float, high: float, integer: bool) -> float:
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        kind = "a whole number" if integer else "a number"
        raise CosyVoiceUsageError(
            f"--option {name}={raw} is out of range",
            hint=f"give {kind} from {low:g} to {high:g}",
        )
    return value


def _switch(name: str, raw: str) -> bool:
    low = raw.strip().lower()
    if low in _ON:
        return True
    if low in _OFF:
        return False
    raise CosyVoiceUsageError(f"--option {name}={raw} is not on or off", hint="use on or off")


def parse_options(options: Sequence[tuple[str, str]], info: Model) -> dict[str, Any]:
    """Validated keyword arguments for :class:`TaskSettings` from ``--option`` pairs."""
    out: dict[str, Any] = {}
    for raw_name, raw in options:
        name = _ALIASES.get(raw_name.strip().lower(), raw_name.strip().lower())
        value = raw.strip()
        if name == "format":
            if value.lower() not in FORMATS:
                raise CosyVoiceUsageError(
                    f"--option format={raw} is not a CosyVoice format",
                    hint=f"use one of {', '.join(FORMATS)} (pcm is cheapest to process)",
                )
            out["format"] = value.lower()
        elif name == "sample_rate":
            if not value.isdigit() or int(value) not in SAMPLE_RATES:
                raise CosyVoiceUsageError(
                    f"--option sample_rate={raw} is not a rate the service offers",
                    hint=f"use one of {', '.join(map(str, SAMPLE_RATES))}",
                )
            out["sample_rate"] = int(value)
        elif name == "bit_rate":
            out["bit_rate"] = int(_number(name, value, *BIT_RATE_RANGE, integer=True))
        elif name == "seed":
            out["seed"] = int(_number(name, value, *SEED_RANGE, integer=True))
        elif name == "instruction":
            if not info.instruction:
                with_it = ", ".join(m.name for m in MODELS.values() if m.instruction)
                raise CosyVoiceUsageError(
                    f"{info.name} takes no instruction",
                    hint=f"drop --option instruction, or use a model that has it: {with_it}",
                )
            if not value or len(value) > INSTRUCTION_MAX_CHARS:
                raise CosyVoiceUsageError(
                    f"--option instruction has {len(value)} characters",
                    hint=f"give 1 to {INSTRUCTION_MAX_CHARS} characters (e.g. 请用广东话表达。)",
                )
            out["instruction"] = value
        elif name == "language":
            if value.lower() not in LANGUAGES:
                raise CosyVoiceUsageError(
                    f"--option language={raw} is not one the service takes",
                    hint=f"give one of {', '.join(LANGUAGES)} (the service reads only one)",
                )
            out["language"] = value.lower()
        elif name == "ssml":
            if value.lower() not in ("auto", "on", "off"):
                raise CosyVoiceUsageError(
                    f"--option ssml={raw} is not auto, on or off", hint="use auto, on or off"
                )
            out["ssml"] = value.lower()
        elif name == "word_timestamps":
            out["word_timestamps"] = _switch(name, value)
        else:
            raise CosyVoiceUsageError(
                f"--option {raw_name} is not a CosyVoice option",
                hint=f"known options: {', '.join(OPTION_NAMES)}",
            )
    if "bit_rate" in out and out.get("format") != "opus":
        raise CosyVoiceUsageError(
            "--option bit_rate applies only to opus", hint="add --option format=opus or drop it"
        )
    return out


def resolve(
    *,
    model: str,
    voice: str,
    rate: float,
    pitch: float,
    volume: float,
    options: Sequence[tuple[str, str]],
    region: str,
) -> TaskSettings:
    """Check everything about a request that can be known locally; the settings to send."""
    from renderer.engine import validate_prosody

    validate_prosody(rate, pitch, volume)
    for name, value, (low, high) in (("rate", rate, RATE_RANGE), ("pitch", pitch, PITCH_RANGE)):
        if not low <= value <= high:  # pragma: no cover - validate_prosody covers it
            raise CosyVoiceUsageError(f"--{name} {value} is out of range")
    info = check_model(model, region)
    check_voice_for_model(voice, info)
    parsed = parse_options(options, info)
    return TaskSettings(
        model=model,
        voice=voice,
        volume=max(0, min(100, round(50 * volume))),
        rate=round(rate, 3),
        pitch=round(pitch, 3),
        **parsed,
    )
