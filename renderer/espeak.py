"""The local engine: espeak-ng through our own ctypes binding.

The shared library and its ``espeak-ng-data`` come from the ``espeakng-loader`` wheel,
so no system package is needed. espeak-ng always produces **22050 Hz mono 16-bit**
PCM; :class:`EspeakEngine` returns it as little-endian bytes together with one
:class:`~renderer.engine.WordMark` per espeak WORD event.

The library is process-global and not thread-safe. It is initialised lazily, once per
process (in ``AUDIO_OUTPUT_SYNCHRONOUS`` mode, which starts no thread, so a process
forked after initialisation can keep using it), every call holds a module lock, and the
voice and parameters are selected again on every call.

Request multipliers (1.0 = espeak's default) map to espeak parameters like this:

=========  ================  ================================  ==================
request    allowed range     espeak parameter                  resulting range
=========  ================  ================================  ==================
rate       0.5 - 2.0         ``espeakRATE`` = 175 * rate wpm    87 - 350 (80-450)
pitch      0.5 - 2.0         ``espeakPITCH`` = 50 * pitch       25 - 100 (0-100)
volume     0.0 - 2.0         ``espeakVOLUME`` = 100 * volume    0 - 200 (0-200)
=========  ================  ================================  ==================

Values are rounded and clipped to espeak's own range; a multiplier outside the allowed
range raises :class:`~narrate.errors.UsageError`. SSML ``<prosody>`` inside the document
then works relative to these.

Voices are espeak's voice *file ids*, lower case: ``en-us``, ``en`` (British),
``en-gb-x-rp``, ``en-gb-scotland``, ``cmn``, ``yue``, ``fr``, ``de``, ... A variant may
be appended with ``+``: ``en-us+f3``, ``en-us+m3``, ``en-us+klatt``, ``en-us+whisper``
(the files in ``espeak-ng-data/voices/!v``; matched case-insensitively). Unknown voices
and unknown variants raise :class:`~narrate.errors.VoiceNotFoundError` instead of
espeak's silent fallback. Note that ``en-gb`` and ``zh`` are *not* ids (use ``en`` and
``cmn``).

Word marks
    espeak's WORD event gives ``text_position`` (1-based, in characters of the raw SSML
    markup, tags included) and ``length`` (in decoded characters). The segment text is
    the SSML text content (all text nodes in document order, entities decoded);
    :func:`markup_to_text_offsets` maps markup positions into it. A mark starts at the
    event's ``sample``; it ends at the next WORD, END or SENTENCE event (or the end of
    the audio), pulled back to the last non-silent sample before that point so that a
    word does not run through the pause after it. espeak merges some words ("on the"
    gives only "on") and splits others ("3.50" gives four events inside the token);
    :func:`renderer.timing.align_words` turns marks into one time per word.
    espeak reports the words of a ``<sub alias>`` at the position of the text *after*
    the element (or not at all); :mod:`ssml.dialects` therefore wraps each ``<sub>`` in
    ``narrate-aK``/``narrate-zK`` marks, and the span between their MARK events becomes
    one mark over the sub's display text, while alias words reported elsewhere are
    dropped. espeak's ``[[...]]`` phoneme input is enabled (lexicon phonemes for espeak
    are compiled into ``<sub alias="[[...]]">``); the dialect hides literal ``[[``.

Output is not bit-for-bit reproducible: the same request can differ by a few samples
from one call to the next (espeak keeps some synthesis state between calls).
"""

from __future__ import annotations

import array
import ctypes
import operator
import os
import re
import sys
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from narrate.errors import SynthesisFailedError, VoiceNotFoundError
from renderer.engine import (
    Engine,
    EngineSetup,
    EngineSpec,
    PriceList,
    SynthesisRequest,
    SynthesisResult,
    Voice,
    WordMark,
    validate_prosody,
)
from ssml.dialects import ESPEAK, MARK_PREFIX

SAMPLE_RATE_HZ = 22050
#: espeak-ng's voices are part of espeak-ng, and its audio may be used freely
VOICE_LICENCE = "GPL-3.0-or-later (espeak-ng); its audio is yours to use"

# --- markup positions ---------------------------------------------------------------

_PREDEFINED_ENTITIES = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}
_ENTITY_RE = re.compile(r"&(?:#([0-9]+)|#[xX]([0-9a-fA-F]+)|([A-Za-z_:][\w.:-]*));")


def _decode_entity(match: re.Match[str]) -> str | None:
    dec, hexa, name = match.groups()
    if name is not None:
        return _PREDEFINED_ENTITIES.get(name)
    code = int(dec) if dec is not None else int(hexa, 16)
    if 0 < code <= 0x10FFFF:
        return chr(code)
    return None


def _scan_markup(ssml: str) -> tuple[str, list[int]]:
    """Return the text content of ``ssml`` and, per markup character, its text index.

    Text counts only inside the root element (as ``"".join(root.itertext())`` sees it):
    character data and CDATA contents, entity and character references decoded, line
    ends normalised (``\\r\\n`` and a lone ``\\r`` become ``\\n``). Comments, processing
    instructions, the doctype and tags (attribute values included) contribute nothing.
    A markup character that is not text maps to the index of the next text character.
    """
    text: list[str] = []
    offsets = [0] * len(ssml)
    n = len(ssml)
    depth = 0
    i = 0

    def skip(start: int, end: int) -> None:
        """Markup ``ssml[start:end]``: maps to the next text character."""
        cur = len(text)
        for k in range(start, min(end, n)):
            offsets[k] = cur

    def put_chars(start: int, end: int) -> None:
        """Character data ``ssml[start:end]`` (no markup in it)."""
        k = start
        while k < end:
            ch = ssml[k]
            if depth <= 0:
                offsets[k] = len(text)
                k += 1
                continue
            offsets[k] = len(text)
            if ch == "\r":
                if k + 1 < end and ssml[k + 1] == "\n":
                    offsets[k + 1] = len(text)
                    k += 1
                ch = "\n"
            text.append(ch)
            k += 1

    while i < n:
        ch = ssml[i]
        if ch == "<":
            if ssml.startswith("<!--", i):
                close = ssml.find("-->", i + 4)
                end = n if close < 0 else close + 3
                skip(i, end)
            elif ssml.startswith("<![CDATA[", i):
                close = ssml.find("]]>", i + 9)
                body_end = n if close < 0 else close
                skip(i, i + 9)
                put_chars(i + 9, body_end)
                end = min(n, body_end + 3)
                skip(body_end, end)
            elif ssml.startswith("<?", i):
                close = ssml.find("?>", i + 2)
                end = n if close < 0 else close + 2
                skip(i, end)
            elif ssml.startswith("<!", i):
                end = _doctype_end(ssml, i)
                skip(i, end)
            else:
                end = _tag_end(ssml, i)
                skip(i, end)
                tag = ssml[i:end]
                if tag.startswith("</"):
                    depth -= 1
                elif not tag.endswith("/>"):
                    depth += 1
            i = end
        elif ch == "&":
            m = _ENTITY_RE.match(ssml, i)
            decoded = _decode_entity(m) if m else None
            if m is None or decoded is None:
                put_chars(i, i + 1)
                i += 1
                continue
            skip(i, m.end())
            if depth > 0:
                text.append(decoded)
            i = m.end()
        else:
            j = i + 1
            while j < n and ssml[j] not in "<&":
                j += 1
            put_chars(i, j)
            i = j
    return "".join(text), offsets


def _tag_end(ssml: str, i: int) -> int:
    """Index just past the ``>`` closing the tag that opens at ``i`` (quotes respected)."""
    quote = ""
    for k in range(i + 1, len(ssml)):
        c = ssml[k]
        if quote:
            if c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        elif c == ">":
            return k + 1
    return len(ssml)


def _doctype_end(ssml: str, i: int) -> int:
    """Index just past a ``<!DOCTYPE ...>`` declaration (internal subset included)."""
    depth = 0
    quote = ""
    for k in range(i + 2, len(ssml)):
        c = ssml[k]
        if quote:
            if c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        elif c == "[":
            depth += 1
        elif c == "]":
            depth -= 1
        elif c == ">" and depth <= 0:
            return k + 1
    return len(ssml)


def markup_to_text_offsets(ssml: str) -> list[int]:
    """For each character index of ``ssml``, the matching index into its text content.

    The text content is what :func:`ssml_text` returns (``"".join(root.itertext())``).
    All characters of an entity reference (``&amp;``, ``&#233;``) map to the one
    character they decode to; characters of tags, comments and other markup map to the
    index of the next text character (so a position inside a tag points just after the
    text before it). The list has ``len(ssml)`` entries and never decreases.
    """
    return _scan_markup(ssml)[1]


def ssml_text(ssml: str) -> str:
    """The text content of an SSML document, as word marks index it."""
    return _scan_markup(ssml)[0]


# --- silence --------------------------------------------------------------------------

_WINDOW = SAMPLE_RATE_HZ // 100  # 10 ms
#: a 10 ms window is silent when its RMS is below this fraction of the segment's peak
#: (about -54 dB). espeak's pauses are digital zero for most voices; variants such as
#: +f3 leave a faint floor (RMS 1-3) that this still counts as silence.
_SILENCE_FRACTION = 0.002
#: the peak is estimated from every n-th sample (exactness does not matter here)
_PEAK_STRIDE = 16


def sound_end(samples: array.array[int], start: int, bound: int, threshold: float) -> int:
    """The sample index just past the last non-silent sample of ``samples[start:bound]``.

    Works backwards from ``bound`` in 10 ms windows and stops at the first window whose
    RMS reaches ``threshold``; inside it, returns the position after the last sample
    whose magnitude reaches ``threshold``. When all of the range is silent, returns
    ``bound`` unchanged (a word that is silent throughout keeps its full span).
    """
    bound = min(bound, len(samples))
    if threshold <= 0 or bound <= start:
        return max(start, bound)
    limit = threshold * threshold
    hi = bound
    while hi > start:
        lo = max(start, hi - _WINDOW)
        window = samples[lo:hi]
        # cheap test first: a window whose peak is below the threshold is silent
        if max(max(window), -min(window)) >= threshold:
            energy = sum(map(operator.mul, window, window)) / len(window)
            if energy >= limit:
                for k in range(hi - 1, lo - 1, -1):
                    if abs(samples[k]) >= threshold:
                        return k + 1
                return hi
        hi = lo
    return bound


# --- the ctypes binding ---------------------------------------------------------------

_EVENT_WORD = 1
_EVENT_SENTENCE = 2
_EVENT_MARK = 3
_EVENT_END = 5
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_POS_CHARACTER = 1
_CHARS_UTF8 = 0x1
_SSML = 0x10
_PHONEMES = 0x100  # espeakPHONEMES: [[...]] in the text holds espeak phoneme mnemonics
_PARAM_RATE = 1
_PARAM_VOLUME = 2
_PARAM_PITCH = 3
_EE_OK = 0


class _EventId(ctypes.Union):
    _fields_ = [
        ("number", ctypes.c_int),
        ("name", ctypes.c_char_p),
        ("string", ctypes.c_char * 8),
    ]


class _Event(ctypes.Structure):
    """``espeak_EVENT`` from speak_lib.h."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


class _VoiceStruct(ctypes.Structure):
    """``espeak_VOICE`` from speak_lib.h (``languages`` is a packed byte list)."""

    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_void_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


@dataclass(frozen=True)
class _RawEvent:
    type: int
    text_position: int
    length: int
    sample: int
    name: str = ""  # MARK events: the mark's name


@dataclass(frozen=True)
class _VoiceInfo:
    id: str  # lower-case file id: "en-us"
    name: str
    languages: tuple[str, ...]
    gender: str | None


def _languages(ptr: int | None) -> tuple[str, ...]:
    """Decode espeak's packed language list: (priority byte, NUL-terminated name)*, 0."""
    out: list[str] = []
    if not ptr:
        return ()
    while True:
        if ctypes.string_at(ptr, 1)[0] == 0:
            break
        raw = ctypes.string_at(ptr + 1)
        out.append(raw.decode("utf-8", "replace"))
        ptr += len(raw) + 2
    return tuple(out)


class _Library:
    """The loaded and initialised libespeak-ng. Use only while holding ``_LOCK``."""

    def __init__(self) -> None:
        try:
            import espeakng_loader

            lib_path = espeakng_loader.get_library_path()
            data_path = espeakng_loader.get_data_path()
            self.lib = ctypes.CDLL(str(lib_path))
        except (ImportError, OSError) as exc:
            raise SynthesisFailedError(
                f"cannot load the espeak-ng library: {exc}",
                hint="install narrate's dependencies (espeakng-loader==0.2.4)",
            ) from exc
        lib = self.lib
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_ListVoices.argtypes = [ctypes.POINTER(_VoiceStruct)]
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_VoiceStruct))

        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, os.fsencode(data_path), _INITIALIZE_DONT_EXIT
        )
        if rate != SAMPLE_RATE_HZ:
            raise SynthesisFailedError(
                f"espeak-ng failed to initialise (returned {rate}) with data at {data_path}",
                hint="reinstall espeakng-loader==0.2.4",
            )

        self._chunks: list[bytes] = []
        self._events: list[_RawEvent] = []
        self._callback_error: BaseException | None = None
        # keep a reference: espeak calls this pointer for the life of the process
        self._callback = _SynthCallback(self._on_synth)
        lib.espeak_SetSynthCallback(self._callback)

        self.voices = [
            _VoiceInfo(id=file_id.lower(), name=name, languages=langs, gender=gender)
            for file_id, name, langs, gender in self._list(None)
        ]
        # variant files keep their case on disk ("Alex"): map the lower-case name to it
        self.variant_files = {file_id.lower(): file_id for file_id, *_ in self._list(b"variant")}

    def _on_synth(self, wav: Any, count: int, events: Any) -> int:
        """espeak's synth callback: collect audio and events (ctypes pointers)."""
        try:
            if wav and count > 0:
                self._chunks.append(ctypes.string_at(wav, count * 2))
            k = 0
            while events[k].type != 0:
                ev = events[k]
                name = ""
                if ev.type == _EVENT_MARK and ev.id.name:
                    name = ev.id.name.decode("utf-8", "replace")
                self._events.append(
                    _RawEvent(ev.type, ev.text_position, ev.length, ev.sample, name)
                )
                k += 1
        except BaseException as exc:  # never let an exception unwind through C
            self._callback_error = exc
            return 1
        return 0

    def _list(self, language: bytes | None) -> list[tuple[str, str, tuple[str, ...], str | None]]:
        """espeak_ListVoices: (file id, name, languages, gender) per voice.

        ``language=None`` lists the language voices; ``b"variant"`` the variants.
        """
        lang = ctypes.c_char_p(language) if language is not None else None
        spec = None
        if lang is not None:
            spec = ctypes.pointer(_VoiceStruct(languages=ctypes.cast(lang, ctypes.c_void_p)))
        arr = self.lib.espeak_ListVoices(spec)
        out: list[tuple[str, str, tuple[str, ...], str | None]] = []
        k = 0
        while arr and arr[k]:
            v = arr[k].contents
            identifier = (v.identifier or b"").decode("utf-8", "replace")
            out.append(
                (
                    identifier.rsplit("/", 1)[-1],
                    (v.name or b"").decode("utf-8", "replace").strip(),
                    _languages(v.languages),
                    {1: "male", 2: "female"}.get(v.gender),
                )
            )
            k += 1
        del lang  # kept alive until espeak has read it
        return out

    def synth(
        self, ssml: str, voice: str, rate: int, pitch: int, volume: int
    ) -> tuple[bytes, list[_RawEvent]]:
        lib = self.lib
        rc = lib.espeak_SetVoiceByName(voice.encode())
        if rc != _EE_OK:
            raise VoiceNotFoundError(_unknown_voice_message(voice))
        for param, value in ((_PARAM_RATE, rate), (_PARAM_PITCH, pitch), (_PARAM_VOLUME, volume)):
            rc = lib.espeak_SetParameter(param, value, 0)
            if rc != _EE_OK:
                raise SynthesisFailedError(
                    f"espeak rejected parameter {param}={value} (error {rc})"
                )
        self._chunks = []
        self._events = []
        self._callback_error = None
        data = ssml.encode("utf-8")
        try:
            rc = lib.espeak_Synth(
                data,
                len(data) + 1,
                0,
                _POS_CHARACTER,
                0,
                _CHARS_UTF8 | _SSML | _PHONEMES,
                None,
                None,
            )
            if self._callback_error is not None:
                raise SynthesisFailedError(
                    f"espeak synthesis callback failed: {self._callback_error!r}"
                ) from self._callback_error
            if rc != _EE_OK:
                raise SynthesisFailedError(f"espeak_Synth failed (error {rc})")
            return b"".join(self._chunks), self._events
        finally:
            self._chunks = []
            self._events = []
            self._callback_error = None


_LOCK = threading.Lock()
_LIBRARY: _Library | None = None


def _reset_lock_after_fork() -> None:
    global _LOCK
    _LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_lock_after_fork)


def _library() -> _Library:
    """The process's library, initialised on first use. Call with ``_LOCK`` held."""
    global _LIBRARY
    if _LIBRARY is None:
        _LIBRARY = _Library()
    return _LIBRARY


def _unknown_voice_message(voice: str) -> str:
    return (
        f"espeak has no voice {voice!r}; run `narrate voices --engine espeak` to list "
        "the voices (a variant may be added as in en-us+f3)"
    )


def espeak_parameters(rate: float, pitch: float, volume: float) -> tuple[int, int, int]:
    """Map engine-neutral multipliers to espeak's (words/min, pitch 0-100, volume 0-200).

    Raises :class:`~narrate.errors.UsageError` (via
    :func:`renderer.engine.validate_prosody`) for a multiplier outside its range.
    """
    validate_prosody(rate, pitch, volume)
    wpm = min(450, max(80, round(175 * rate)))
    return wpm, min(100, max(0, round(50 * pitch))), min(200, max(0, round(100 * volume)))


def _resolve_voice(lib: _Library, voice: str) -> str:
    """The name to give espeak_SetVoiceByName for ``voice``, or VoiceNotFoundError.

    ``voice`` is a voice id (``en-us``, ``en-gb-x-rp``) or a language tag one voice
    speaks first (``en-gb`` is the voice ``en``, English as spoken in Great Britain),
    optionally with a variant (``+f3``).
    """
    name, plus, variant = voice.strip().partition("+")
    base = _voice_id(lib, name.lower())
    if base is None:
        raise VoiceNotFoundError(_unknown_voice_message(voice))
    if not plus:
        return base
    file_name = lib.variant_files.get(variant.lower())
    if file_name is None or "+" in variant:
        raise VoiceNotFoundError(_unknown_voice_message(voice))
    return f"{base}+{file_name}"


def _voice_id(lib: _Library, name: str) -> str | None:
    """The voice id ``name`` is, or the id of the voice whose first language it is."""
    if not name:
        return None
    if name in {v.id for v in lib.voices}:
        return name
    speaking = sorted(v.id for v in lib.voices if v.languages and v.languages[0] == name)
    return speaking[0] if speaking else None


_SPAN_MARK_RE = re.compile(r'<mark\s+name="' + re.escape(MARK_PREFIX) + r'([az])(\d+)"\s*/>')


def _mark_spans(ssml: str, offsets: list[int]) -> dict[str, tuple[int, int]]:
    """Text spans between ``narrate-aK`` and ``narrate-zK`` marks, by ``K``.

    :mod:`ssml.dialects` wraps every ``<sub>`` in such a pair. espeak reports the words
    it speaks from an alias at the position of the text *after* the element (or not at
    all), so the marks, which it reports in time order with exact samples, are what
    times the sub's display text.
    """
    starts: dict[str, int] = {}
    spans: dict[str, tuple[int, int]] = {}
    for m in _SPAN_MARK_RE.finditer(ssml):
        side, key = m.group(1), m.group(2)
        at = offsets[m.start()] if m.start() < len(offsets) else len(offsets)
        if side == "a":
            starts[key] = at
        elif key in starts:
            spans[key] = (starts[key], at)
    return spans


def _marks(
    ssml: str,
    samples: array.array[int],
    events: list[_RawEvent],
) -> tuple[WordMark, ...]:
    text, offsets = _scan_markup(ssml)
    total = len(samples)
    strided = samples[::_PEAK_STRIDE]
    peak = max(max(strided), -min(strided)) if strided else 0
    threshold = peak * _SILENCE_FRACTION
    spans = _mark_spans(ssml, offsets) if f"{MARK_PREFIX}a" in ssml else {}
    # for each event, the sample where the next WORD/END/SENTENCE event starts
    bounds = [total] * len(events)
    nxt = total
    for k in range(len(events) - 1, -1, -1):
        bounds[k] = nxt
        if events[k].type in (_EVENT_WORD, _EVENT_END, _EVENT_SENTENCE):
            nxt = min(max(events[k].sample, 0), total)
    marks: list[WordMark] = []
    inside: tuple[int, int, int] | None = None  # (span start, span end, start sample)
    for k, ev in enumerate(events):
        if ev.type == _EVENT_MARK and ev.name.startswith(MARK_PREFIX):
            side, key = ev.name[len(MARK_PREFIX)], ev.name[len(MARK_PREFIX) + 1 :]
            span = spans.get(key)
            sample = min(max(ev.sample, 0), total)
            if side == "a" and span is not None:
                inside = (span[0], span[1], sample)
            elif side == "z" and inside is not None:
                a, b, begin = inside
                while b > a + 1 and text[b - 1].isspace():
                    b -= 1
                if a < b <= len(text):
                    end = sound_end(samples, begin, max(sample, begin), threshold)
                    marks.append(
                        WordMark(
                            char_start=a,
                            char_end=b,
                            start_ms=begin * 1000 // SAMPLE_RATE_HZ,
                            end_ms=end * 1000 // SAMPLE_RATE_HZ,
                        )
                    )
                inside = None
            continue
        if ev.type != _EVENT_WORD:
            continue
        pos = ev.text_position - 1
        if not 0 <= pos < len(offsets):
            continue
        char_start = offsets[pos]
        if char_start >= len(text):
            continue
        if inside is not None and not inside[0] <= char_start < inside[1]:
            continue  # a word of the alias, reported at the wrong place
        char_end = min(len(text), char_start + max(1, ev.length))
        while char_end > char_start + 1 and text[char_end - 1].isspace():
            char_end -= 1
        start = min(max(ev.sample, 0), total)
        bound = max(bounds[k], start)
        end = sound_end(samples, start, bound, threshold)
        marks.append(
            WordMark(
                char_start=char_start,
                char_end=char_end,
                start_ms=start * 1000 // SAMPLE_RATE_HZ,
                end_ms=end * 1000 // SAMPLE_RATE_HZ,
            )
        )
    marks.sort(key=lambda m: (m.start_ms, m.char_start))
    return tuple(marks)


def _create(setup: EngineSetup) -> Engine:
    return EspeakEngine()


#: the engine's declaration (see renderer.engines)
SPEC = EngineSpec(
    name="espeak",
    display_name="espeak-ng",
    factory=_create,
    dialect=ESPEAK,
    max_segment_chars=1500,
    # measured: 50,137 characters made 2892 s of audio in 4.5 s of CPU
    chars_per_audio_s=17.3,
    cpu_s_per_audio_s=0.0016,
)


class EspeakEngine:
    """espeak-ng, in process. Implements :class:`renderer.engine.Engine`.

    Voice ids are espeak file ids (``en-us``, ``en``, ``en-gb-x-rp``, ``cmn``, ``fr``,
    ...; see :meth:`voices`), optionally with a variant: ``en-us+f3`` (female),
    ``en-us+m3``, ``en-us+klatt``, ``en-us+whisper`` and the other files of
    ``espeak-ng-data/voices/!v``. Variants are not listed by :meth:`voices`.
    """

    spec = SPEC
    name = SPEC.name
    ssml_dialect = SPEC.dialect.name
    default_voice = "en-us"
    max_segment_chars = SPEC.max_segment_chars

    def synthesize(self, request: SynthesisRequest) -> SynthesisResult:
        rate, pitch, volume = espeak_parameters(request.rate, request.pitch, request.volume)
        with _LOCK:
            lib = _library()
            voice = _resolve_voice(lib, request.voice)
            pcm, events = lib.synth(request.ssml, voice, rate, pitch, volume)
        samples = array.array("h")
        samples.frombytes(pcm)
        marks = _marks(request.ssml, samples, events)
        if sys.byteorder != "little":
            samples.byteswap()
            pcm = samples.tobytes()
        return SynthesisResult(pcm=pcm, sample_rate_hz=SAMPLE_RATE_HZ, marks=marks)

    def complete(self, request: SynthesisRequest) -> SynthesisRequest:
        """The request with its voice as espeak names it (``en-gb`` -> ``en``), checked;
        nothing else implicit shapes the audio."""
        espeak_parameters(request.rate, request.pitch, request.volume)
        with _LOCK:
            voice = _resolve_voice(_library(), request.voice)
        base, plus, _file = voice.partition("+")
        variant = request.voice.partition("+")[2].lower()
        return replace(request, voice=f"{base}+{variant}" if plus else base)

    def billed_chars(self, request: SynthesisRequest) -> int | None:
        """It runs here: nothing is billed."""
        return None

    def price_list(self, request: SynthesisRequest, prices: Path | None) -> PriceList | None:
        """It runs here: nothing is billed."""
        return None

    def check(self, request: SynthesisRequest) -> None:
        espeak_parameters(request.rate, request.pitch, request.volume)
        with _LOCK:
            _resolve_voice(_library(), request.voice)

    def voices(self) -> list[Voice]:
        """espeak's language voices, by file id; add ``+f3`` etc. for a variant."""
        with _LOCK:
            infos = list(_library().voices)
        return sorted(
            (
                Voice(
                    id=v.id,
                    name=v.name,
                    languages=v.languages,
                    gender=v.gender,
                    sample_rate_hz=SAMPLE_RATE_HZ,
                    licence=VOICE_LICENCE,
                )
                for v in infos
            ),
            key=lambda v: v.id,
        )
