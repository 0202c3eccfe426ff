"""The simulator's "voice": deterministic tones whose length follows the text and rate.

Tokens follow the service's word timestamps (reference §4, §10.11): every Han character
is a word, a run of letters/digits (with inner apostrophes and hyphens) is a word, and
every other visible character (punctuation) is a word of its own. Each word is a tone
(frequency from a checksum of the word, times ``pitch``; loudness from ``volume``),
punctuation is silence; lengths are divided by ``rate``:

=============  ===============================
token          length at rate 1.0
=============  ===============================
Han character  190 ms
word           45 ms + 55 ms per letter/digit
. ! ? 。！？   150 ms of silence
, ; : ，；：、 90 ms of silence
other          0 ms
=============  ===============================
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from functools import cache

from renderer.cosyvoice.billing import is_han

HAN_MS = 190
WORD_BASE_MS = 45
LETTER_MS = 55
FINAL_PUNCT = frozenset("。！？!?.…")
CLAUSE_PUNCT = frozenset(",;:，；：、")
FINAL_PAUSE_MS = 150
CLAUSE_PAUSE_MS = 90


@dataclass(frozen=True)
class Token:
    start: int
    end: int
    kind: str  # "han" | "word" | "punct"


def tokens(text: str) -> list[Token]:
    out: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif is_han(ch):
            out.append(Token(i, i + 1, "han"))
            i += 1
        elif ch.isalnum():
            j = i + 1
            while j < n and (
                (text[j].isalnum() and not is_han(text[j]))
                or (
                    text[j] in "'’-"
                    and j + 1 < n
                    and text[j + 1].isalnum()
                    and not is_han(text[j + 1])
                )
            ):
                j += 1
            out.append(Token(i, j, "word"))
            i = j
        else:
            out.append(Token(i, i + 1, "punct"))
            i += 1
    return out


def token_ms(text: str, kind: str, rate: float) -> int:
    if kind == "han":
        base = HAN_MS
    elif kind == "word":
        base = WORD_BASE_MS + LETTER_MS * sum(1 for c in text if c.isalnum())
    elif text in FINAL_PUNCT:
        base = FINAL_PAUSE_MS
    elif text in CLAUSE_PUNCT:
        base = CLAUSE_PAUSE_MS
    else:
        base = 0
    return int(base / rate)


@cache
def _period(samples: int, amplitude: int) -> bytes:
    values = (int(amplitude * math.sin(2 * math.pi * k / samples)) for k in range(samples))
    return b"".join(v.to_bytes(2, "little", signed=True) for v in values)


def tone(word: str, count: int, sample_rate: int, pitch: float, volume: int) -> bytes:
    """``count`` samples of the word's tone (s16le)."""
    amplitude = min(30000, int(10000 * volume / 50))
    if count <= 0:
        return b""
    if amplitude <= 0:
        return bytes(2 * count)
    frequency = (160 + (zlib.crc32(word.encode()) % 16) * 15) * pitch
    period = _period(max(2, round(sample_rate / frequency)), amplitude)
    whole, rest = divmod(2 * count, len(period))
    return period * whole + period[:rest]


@dataclass(frozen=True)
class SpokenWord:
    text: str
    ordinal: int  # token number within the sentence
    begin: int  # sample positions within the sentence
    end: int


@dataclass(frozen=True)
class SpokenSentence:
    pcm: bytes
    words: list[SpokenWord]


def speak(
    text: str,
    *,
    sample_rate: int,
    rate: float = 1.0,
    pitch: float = 1.0,
    volume: int = 50,
    breaks: tuple[tuple[int, int], ...] = (),
) -> SpokenSentence:
    """Audio and words of one sentence; ``breaks`` are (offset in text, ms) pauses."""
    pcm = bytearray()
    words: list[SpokenWord] = []
    pending = sorted(breaks)

    def silence(ms: int) -> None:
        pcm.extend(bytes(2 * (ms * sample_rate // 1000)))

    for ordinal, token in enumerate(tokens(text)):
        while pending and pending[0][0] <= token.start:
            silence(pending.pop(0)[1])
        word = text[token.start : token.end]
        begin = len(pcm) // 2
        count = token_ms(word, token.kind, rate) * sample_rate // 1000
        if token.kind == "punct":
            pcm.extend(bytes(2 * count))
        else:
            pcm.extend(tone(word, count, sample_rate, pitch, volume))
        words.append(SpokenWord(word, ordinal, begin, begin + count))
    for _offset, ms in pending:
        silence(ms)
    return SpokenSentence(bytes(pcm), words)
