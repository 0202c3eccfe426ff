"""The ``piper`` engine: Piper voices in process, one model load and one thread per process.

A request's SSML (the ``piper`` dialect) is read into runs of speech between pauses
(:mod:`renderer.piper.text`). Each run is phonemized by Piper as a whole (so sentences
keep their prosody), each sentence is synthesized on its own (a very long one in
clause-sized pieces, so memory stays bounded) with the voice patched for phoneme
alignments (:mod:`renderer.piper.model`), and narrate's words are timed from those
alignments (:mod:`renderer.piper.align`). Pauses are silence inserted between runs.
Marks are on the timeline of the audio returned, before any trimming.

Controls, as on every engine:

* ``rate``: through Piper's length scale, so that speech lasts ``1 / rate`` as long, as
  on other engines. Piper rounds every phoneme's duration up to whole frames, so a
  length scale of 0.8 only shortens speech to about 0.88: :func:`length_scale_for`
  inverts the curve measured on the bundled voice (``RATE_CURVE``).
* ``volume``: a multiplier of the samples (clipped at full scale). Piper's per-sentence
  peak normalisation is off: chapter mastering owns levels.
* ``pitch``: Piper has none; anything but 1.0 is refused before any work.

Options (``--option NAME=VALUE``): ``noise_scale`` and ``noise_w_scale`` (0-2, default
0: the same segment always gives the same samples; Piper's own defaults, 0.667 and 0.8,
vary the voice a little but differ from run to run), ``speaker`` (an id of a
multi-speaker voice). :meth:`PiperEngine.complete` writes the noise settings and the
model's sha256 into the request's options, so they are part of the segment's content
hash, and a voice file replaced after a job was planned fails its segments instead of
mixing two voices.
"""

from __future__ import annotations

import os
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from narrate.errors import SynthesisFailedError, UsageError
from renderer.engine import (
    PriceList,
    SynthesisRequest,
    SynthesisResult,
    Voice,
    WordMark,
    engine_cache_dir,
    validate_prosody,
)
from renderer.piper.align import Timed, timed_symbols, unit_marks
from renderer.piper.model import LoadedVoice, load_voice, patched_model, require_piper
from renderer.piper.spec import SPEC
from renderer.piper.text import Run, Unit, read_ssml
from renderer.piper.voices import (
    BUNDLED_ID,
    VoiceFiles,
    list_voices,
    looks_like_path,
    read_config,
    resolve_voice,
)

#: a sentence longer than this many phonemes (about 18 s of speech) is synthesized in
#: clause-sized pieces: the voice's decoder holds tensors of some 10-15 MB per second of
#: audio it makes at once, so this bounds a process's memory (measured with the bundled
#: voice on a 32 s sentence: 180 MB after load, 450-630 MB peak with 150-400 phoneme
#: pieces; the piper command line, which never cuts, peaked at 613 MB on the novel)
MAX_PIECE_PHONEMES = 300
#: voices kept loaded in one process (a model is about 150 MB once loaded)
MAX_LOADED_VOICES = 2
NOISE_RANGE = (0.0, 2.0)
_CLAUSE_ENDS = frozenset(",;:")
#: (speech duration relative to length scale 1, length scale) measured on the bundled
#: voice over two paragraphs: the durations Piper gives for each length scale
RATE_CURVE = (
    (0.634, 0.5),
    (0.730, 0.667),
    (0.881, 0.8),
    (1.0, 1.0),
    (1.118, 1.25),
    (1.356, 1.493),
    (1.710, 2.0),
)
LENGTH_SCALE_RANGE = (0.25, 3.0)
_WORDS_CACHE = 50_000


@dataclass(frozen=True)
class PiperSettings:
    """A request's Piper settings, from its options."""

    noise_scale: float = 0.0
    noise_w_scale: float = 0.0
    speaker: int | None = None
    #: the sha256 the voice's model had when the job was planned (None: not pinned)
    model_sha256: str | None = None

    def options(self) -> tuple[tuple[str, str], ...]:
        pairs = [
            ("noise_scale", f"{self.noise_scale:g}"),
            ("noise_w_scale", f"{self.noise_w_scale:g}"),
        ]
        if self.speaker is not None:
            pairs.append(("speaker", str(self.speaker)))
        if self.model_sha256 is not None:
            pairs.append(("model_sha256", self.model_sha256))
        return tuple(sorted(pairs))


def parse_options(options: Sequence[tuple[str, str]]) -> PiperSettings:
    """The settings ``--option`` gives, or UsageError for an unknown or bad one."""
    settings = PiperSettings()
    for name, value in options:
        if name in ("noise_scale", "noise_w_scale"):
            try:
                number = float(value)
            except ValueError:
                number = -1.0
            low, high = NOISE_RANGE
            if not low <= number <= high:
                raise UsageError(
                    f"--option {name}={value!r} is not a number from {low:g} to {high:g}",
                    hint="0 (the default) makes the same segment always sound the same",
                )
            if name == "noise_scale":
                settings = replace(settings, noise_scale=number)
            else:
                settings = replace(settings, noise_w_scale=number)
        elif name == "speaker":
            if not value.isdigit():
                raise UsageError(f"--option speaker={value!r} is not a speaker id (0, 1, ...)")
            settings = replace(settings, speaker=int(value))
        elif name == "model_sha256":
            settings = replace(settings, model_sha256=value.strip().lower())
        else:
            raise UsageError(
                f"the piper engine has no option {name!r}",
                hint="it takes noise_scale, noise_w_scale and speaker",
            )
    return settings


def length_scale_for(rate: float) -> float:
    """The length scale (relative to the voice's) that makes speech ``1 / rate`` as long:
    :data:`RATE_CURVE` interpolated, extrapolated along its end segments."""
    if rate == 1.0:
        return 1.0
    want = 1.0 / rate
    points = RATE_CURVE
    k = 1
    while k < len(points) - 1 and points[k][0] < want:
        k += 1
    (r0, l0), (r1, l1) = points[k - 1], points[k]
    scale = l0 + (want - r0) * (l1 - l0) / (r1 - r0)
    low, high = LENGTH_SCALE_RANGE
    return min(high, max(low, scale))


def check_prosody(rate: float, pitch: float, volume: float) -> None:
    validate_prosody(rate, pitch, volume)
    if pitch != 1.0:
        raise UsageError(
            f"--pitch {pitch} cannot be honoured: Piper voices have no pitch control",
            hint="leave --pitch at 1.0 with --engine piper (espeak and CosyVoice have it)",
        )


class PiperEngine:
    """Piper voices, in process. Implements :class:`renderer.engine.Engine`."""

    spec = SPEC
    name = SPEC.name
    ssml_dialect = SPEC.dialect.name
    default_voice = BUNDLED_ID
    max_segment_chars = SPEC.max_segment_chars

    def __init__(self, cache_dir: Path | None = None, env: Mapping[str, str] | None = None):
        require_piper()
        self.env: Mapping[str, str] = os.environ if env is None else env
        self._cache_dir = cache_dir
        self._loaded: OrderedDict[str, LoadedVoice] = OrderedDict()
        self._lock = threading.Lock()
        self._alone: dict[tuple[str, str], tuple[str, ...]] = {}

    @property
    def cache_dir(self) -> Path:
        """Where patched models are kept (default: under ``NARRATE_STORAGE_DIR``)."""
        if self._cache_dir is None:
            from narrate.settings import Settings

            self._cache_dir = engine_cache_dir(Settings.from_env(self.env).storage_dir)
        return self._cache_dir

    # --- the Engine interface ------------------------------------------------------

    def voices(self) -> list[Voice]:
        """The bundled voice and those in the folders of ``NARRATE_PIPER_VOICES``."""
        return list_voices(self.env)

    def billed_chars(self, request: SynthesisRequest) -> int | None:
        """It runs here: nothing is billed."""
        return None

    def price_list(self, request: SynthesisRequest, prices: Path | None) -> PriceList | None:
        """It runs here: nothing is billed."""
        return None

    def check(self, request: SynthesisRequest) -> None:
        """Prosody, options, the voice's files and config, and its patched model (made
        now, once, so a broken model is reported before any work)."""
        self._prepare(request)

    def complete(self, request: SynthesisRequest) -> SynthesisRequest:
        """The request with everything that shapes its audio explicit: the voice as an
        absolute path when given as one, the noise settings and the model's sha256."""
        files, settings, digest = self._prepare(request)
        voice = str(files.model.resolve()) if looks_like_path(request.voice) else files.id
        pinned = replace(settings, model_sha256=digest)
        return replace(request, voice=voice, options=pinned.options())

    def synthesize(self, request: SynthesisRequest) -> SynthesisResult:
        check_prosody(request.rate, request.pitch, request.volume)
        settings = parse_options(request.options)
        reading = read_ssml(request.ssml)
        with self._lock:
            loaded = self._voice(request.voice)
            if settings.model_sha256 not in (None, loaded.sha256):
                raise SynthesisFailedError(
                    f"the Piper voice {request.voice!r} changed since the job was planned "
                    f"(model sha256 {loaded.sha256[:12]}, job {settings.model_sha256[:12]})",
                    hint="render again (a new job) to use the new voice file",
                )
            self._check_speaker(loaded, settings)
            return self._speak(loaded, reading.runs, reading.pause_after_ms, request, settings)

    # --- internals -------------------------------------------------------------------

    def _prepare(self, request: SynthesisRequest) -> tuple[VoiceFiles, PiperSettings, str]:
        check_prosody(request.rate, request.pitch, request.volume)
        settings = parse_options(request.options)
        files = resolve_voice(request.voice, self.env)
        config = read_config(files)
        if settings.speaker is not None and settings.speaker >= config.num_speakers:
            raise UsageError(
                f"the Piper voice {files.id!r} has {config.num_speakers} speaker(s); "
                f"--option speaker={settings.speaker} is not one of them"
            )
        _path, digest = patched_model(files, self.cache_dir)
        if settings.model_sha256 not in (None, digest):
            raise UsageError(f"the Piper voice {files.id!r} is not the model the job planned")
        return files, settings, digest

    def _voice(self, voice: str) -> LoadedVoice:
        """The loaded voice (loaded once per process; at most a few kept)."""
        found = self._loaded.get(voice)
        if found is not None:
            self._loaded.move_to_end(voice)
            return found
        files = resolve_voice(voice, self.env)
        loaded = load_voice(files, read_config(files), self.cache_dir)
        self._loaded[voice] = loaded
        while len(self._loaded) > MAX_LOADED_VOICES:
            self._loaded.popitem(last=False)
        return loaded

    @staticmethod
    def _check_speaker(loaded: LoadedVoice, settings: PiperSettings) -> None:
        if settings.speaker is not None and settings.speaker >= loaded.config.num_speakers:
            raise UsageError(f"the Piper voice has no speaker {settings.speaker}")

    def _speak(
        self,
        loaded: LoadedVoice,
        runs: Sequence[Run],
        pause_after_ms: int,
        request: SynthesisRequest,
        settings: PiperSettings,
    ) -> SynthesisResult:
        from piper import SynthesisConfig

        rate_hz = loaded.config.sample_rate_hz
        config = SynthesisConfig(
            speaker_id=settings.speaker,
            length_scale=loaded.piper.config.length_scale * length_scale_for(request.rate),
            noise_scale=settings.noise_scale,
            noise_w_scale=settings.noise_w_scale,
            normalize_audio=False,
            volume=1.0,
        )
        parts: list[np.ndarray[Any, np.dtype[np.int16]]] = []
        marks: list[WordMark] = []
        offset = 0
        for run in runs:
            silence = run.pause_before_ms * rate_hz // 1000
            if silence:
                parts.append(np.zeros(silence, dtype=np.int16))
                offset += silence
            audio, stream = self._speak_run(loaded, run, config, request.volume)
            marks += unit_marks(
                run.units,
                stream,
                lambda unit: self._alone_phonemes(loaded, unit),
                offset_samples=offset,
                sample_rate_hz=rate_hz,
            )
            parts.append(audio)
            offset += len(audio)
        tail = pause_after_ms * rate_hz // 1000
        if tail:
            parts.append(np.zeros(tail, dtype=np.int16))
        pcm = np.concatenate(parts).astype("<i2").tobytes() if parts else b""
        marks.sort(key=lambda m: (m.start_ms, m.char_start))
        return SynthesisResult(pcm=pcm, sample_rate_hz=rate_hz, marks=tuple(marks))

    def _speak_run(
        self, loaded: LoadedVoice, run: Run, config: Any, volume: float
    ) -> tuple[np.ndarray[Any, np.dtype[np.int16]], list[Timed]]:
        """A run's audio and its phonemes' sample spans (from the run's start)."""
        voice = loaded.piper
        chunks: list[np.ndarray[Any, np.dtype[np.int16]]] = []
        stream: list[Timed] = []
        offset = 0
        try:
            sentences = voice.phonemize(run.spoken)
        except Exception as exc:  # espeak-ng inside piper: nothing a retry would change
            raise SynthesisFailedError(f"Piper could not phonemize the text: {exc}") from exc
        for sentence in sentences:
            for piece in split_long(sentence):
                ids = voice.phonemes_to_ids(piece)
                try:
                    result = voice.phoneme_ids_to_audio(ids, config, include_alignments=True)
                except Exception as exc:  # onnxruntime's failures are untyped
                    raise SynthesisFailedError(f"Piper synthesis failed: {exc}") from exc
                audio, id_samples = result
                if id_samples is None:
                    raise SynthesisFailedError("the Piper voice gave no phoneme alignments")
                samples = np.clip(
                    np.asarray(audio, dtype=np.float32).reshape(-1) * (32767.0 * volume),
                    -32767,
                    32767,
                ).astype(np.int16)
                spans = timed_symbols(
                    piece, voice.config.phoneme_id_map, id_samples.tolist(), len(samples)
                )
                stream += [Timed(t.symbol, t.start + offset, t.end + offset) for t in spans]
                chunks.append(samples)
                offset += len(samples)
        if not chunks:
            return np.zeros(0, dtype=np.int16), []
        return np.concatenate(chunks), stream

    def _alone_phonemes(self, loaded: LoadedVoice, unit: Unit) -> tuple[str, ...]:
        """A unit's phonemes when spoken alone (cached per voice and text)."""
        if unit.ipa is not None:
            return tuple(unicodedata.normalize("NFD", unit.ipa))
        key = (loaded.sha256, unit.spoken)
        found = self._alone.get(key)
        if found is None:
            if len(self._alone) >= _WORDS_CACHE:
                self._alone.clear()
            sentences = loaded.piper.phonemize(unit.spoken)
            found = self._alone[key] = tuple(p for s in sentences for p in s)
        return found


def split_long(phonemes: Sequence[str], limit: int = MAX_PIECE_PHONEMES) -> list[list[str]]:
    """A sentence's phonemes cut after clause punctuation (else at a word gap) into
    pieces of at most ``limit`` (a piece without either is cut where it must be)."""
    pieces: list[list[str]] = []
    rest = list(phonemes)
    while len(rest) > limit:
        window = rest[:limit]
        cut = next((i + 1 for i in range(len(window) - 1, 0, -1) if window[i] in _CLAUSE_ENDS), 0)
        if cut == 0:
            cut = next((i + 1 for i in range(len(window) - 1, 0, -1) if window[i] == " "), limit)
        pieces.append(rest[:cut])
        rest = rest[cut:]
        while rest and rest[0] == " ":
            rest = rest[1:]
    if rest:
        pieces.append(rest)
    return pieces
