"""A Piper voice's model: patched once for phoneme alignments, loaded with one thread.

Word timings come from the model's per-phoneme durations, which a stock Piper voice
computes but does not output. Piper's own patch
(:func:`piper.patch_voice_with_alignment.add_alignment_output`) marks that tensor as an
output; it needs the ``onnx`` package and about a second, so it is done once per model
and the patched file is cached as ``<cache>/piper/<sha256 of the model>.onnx`` (written
to a temporary name and renamed, so processes racing to patch the same model are safe).
A model that already outputs alignments is used as it is.

Loading builds the ``onnxruntime`` session itself, with one intra-op and one inter-op
thread: narrate runs one process per core, and threads inside each would only compete.
Errors a user can fix (the extra missing, a file that is not a Piper model) are
:class:`~narrate.errors.UsageError` / :class:`~renderer.piper.voices.BrokenVoiceError`,
exit code 2.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from narrate.errors import UsageError
from renderer.piper.spec import INSTALL_HINT
from renderer.piper.voices import BrokenVoiceError, VoiceConfig, VoiceFiles

#: the number of outputs of a model that gives alignments (audio, samples per phoneme id)
_OUTPUTS_WITH_ALIGNMENTS = 2


@dataclass(frozen=True)
class LoadedVoice:
    """A loaded voice: piper's ``PiperVoice`` and what narrate knows of it."""

    files: VoiceFiles
    config: VoiceConfig
    sha256: str
    piper: Any  # piper.PiperVoice (untyped here: piper is an optional dependency)


def require_piper() -> None:
    """Raise a UsageError with the install hint when piper-tts is not installed."""
    try:
        import onnxruntime  # noqa: F401
        import piper  # noqa: F401
    except ImportError as exc:
        raise UsageError(
            f"the Piper engine is not installed ({exc.name} is missing)", hint=INSTALL_HINT
        ) from exc


def file_sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def patched_model(files: VoiceFiles, cache_dir: Path) -> tuple[Path, str]:
    """``(path of the model with alignment output, sha256 of the original model)``."""
    try:
        digest = file_sha256(files.model)
    except OSError as exc:
        raise BrokenVoiceError(f"cannot read the Piper model {files.model}: {exc}") from exc
    target = cache_dir / "piper" / f"{digest}.onnx"
    if target.is_file():
        return target, digest
    try:
        import onnx
        from google.protobuf.message import DecodeError
        from piper.patch_voice_with_alignment import add_alignment_output
    except ImportError as exc:
        raise UsageError(
            f"patching a Piper voice for word timings needs {exc.name}", hint=INSTALL_HINT
        ) from exc
    try:
        model = onnx.load(str(files.model))
    except (DecodeError, OSError, ValueError) as exc:
        raise BrokenVoiceError(
            f"{files.model} is not an ONNX model: {exc}",
            hint="use the voice's .onnx file as it was published (is it complete?)",
        ) from exc
    try:
        add_alignment_output(model)
    except ValueError as exc:
        if "already marked" not in str(exc):
            raise BrokenVoiceError(
                f"{files.model} is not a Piper voice narrate can time words with: {exc}",
                hint="use a Piper (VITS) voice exported by piper",
            ) from exc
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=".patch-", suffix=".onnx")
    os.close(fd)
    try:
        onnx.save(model, temp)
        os.replace(temp, target)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)
    return target, digest


def load_voice(files: VoiceFiles, config: VoiceConfig, cache_dir: Path) -> LoadedVoice:
    """Patch (once) and load ``files`` for synthesis with alignments, one thread."""
    require_piper()
    import onnxruntime
    from piper import PiperVoice
    from piper.config import PiperConfig

    path, digest = patched_model(files, cache_dir)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: the patched output has no shape info
    try:
        session = onnxruntime.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own untyped failures
        raise BrokenVoiceError(
            f"onnxruntime cannot load the Piper voice {files.model}: {exc}",
            hint="use the voice's .onnx file as it was published",
        ) from exc
    if len(session.get_outputs()) < _OUTPUTS_WITH_ALIGNMENTS:
        raise BrokenVoiceError(f"the Piper voice {files.model} gives no phoneme alignments")
    try:
        piper_config = PiperConfig.from_dict(dict(config.raw))
    except (KeyError, ValueError, TypeError) as exc:
        raise BrokenVoiceError(f"{files.config} is not a usable Piper config: {exc}") from exc
    voice = PiperVoice(session=session, config=piper_config)
    return LoadedVoice(files, config, digest, voice)
