"""Captions: group a chapter's timed words into subtitle cues and write SRT / WebVTT.

Input is the chapter text (paragraphs separated by a blank line) and its timed words in
order on the chapter timeline. Cue text is the words' own texts joined with single spaces
(no space between two CJK characters); the raw text is only read for paragraph breaks and
for punctuation that sits between a word's end and the next word's start.

Cue building, in order of precedence:

1. Paragraphs are hard boundaries: no cue holds words from two paragraphs.
2. Sentences (a word ending in ``. ! ? …`` or ``。！？``, optionally followed by closing
   quotes or brackets; common abbreviations such as "Mr." and initials such as "J." are not
   sentence ends) start a new cue.
3. A sentence that does not fit one cue (``max_lines`` lines of ``max_line_chars`` and at
   most ``max_duration_ms`` from its first word's start to its last word's end) is split
   with as few word-boundary splits as possible (clause ends ``, ; : — –`` and
   ``，；：、`` are free), then into as few cues as possible, then into the most balanced
   cues (by characters).
4. Consecutive whole sentences share a cue when together they fit and the pause between
   them is below ``max_shared_pause_ms``.

Line breaking: one line if the cue fits on one, else the fewest lines; breaks go after
sentence ends first, then after clause punctuation, then at word boundaries, and among
equals the most balanced lines win. A word longer than ``max_line_chars`` is hard-split
into balanced chunks (its time shared out by characters); these are the only places where
a line break or a cue boundary falls inside a word.

Timing: a cue starts at its first word's start and ends at its last word's end. A cue
shorter than ``min_duration_ms`` is extended into the following silence, up to the next
cue's start minus ``min_gap_ms``. A cue never overlaps the next one (if the words
themselves overlap, the end is trimmed to ``min_gap_ms`` before the next start), never
lasts longer than ``max_duration_ms`` unless one word alone is longer, and always has
``start < end``. Degenerate input (starts going backwards, zero-length words at the same
instant) is repaired by delaying a cue's start to 1 ms after the previous cue's start,
which never moves a cue ahead of the speech.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from itertools import pairwise

import srt
import webvtt
from webvtt.vtt import WebVTTCueBlock

from renderer.timing import TimedWord

# Break quality after a token, best first. Used both for cue splits and line breaks.
_SENTENCE_END = 0
_CLAUSE_END = 1
_WORD_END = 2
_INSIDE_WORD = 3

# Cost of splitting a sentence into two cues after a token of each tier: clause and
# sentence ends are free, word boundaries cost one, splitting inside a word is a last resort.
_SPLIT_PENALTY = {_SENTENCE_END: 0, _CLAUSE_END: 0, _WORD_END: 1, _INSIDE_WORD: 1_000}

_CLOSERS = "\"'”’»›)\\]}」』）】〉》〕］｝＂＇"
_SENTENCE_RE = re.compile(f"[.!?…。！？．‼⁇⁈⁉][{_CLOSERS}]*$")
_CLAUSE_RE = re.compile(f"(?:[,;:—–，；：、､]|--)[{_CLOSERS}]*$")
_INITIAL_RE = re.compile(r"[A-Z]\.$")
_OPENERS = "\"'“‘«‹([{「『（【〈《〔"
_ABBREVIATIONS = frozenset(
    {"mr.", "mrs.", "ms.", "dr.", "prof.", "st.", "jr.", "sr.", "vs.", "e.g.", "i.e.", "mt."}
    | {"fr.", "rev.", "gen.", "col.", "capt.", "lt.", "sgt.", "cf.", "approx.", "dept."}
)
_PARAGRAPH_BREAK_RE = re.compile(r"\n[^\S\n]*\n")
_VTT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


@dataclass(frozen=True)
class Cue:
    """One caption on screen: times in chapter milliseconds and 1..max_lines text lines."""

    start_ms: int
    end_ms: int
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        """The lines joined with newlines, as written to SRT / WebVTT."""
        return "\n".join(self.lines)


@dataclass(frozen=True)
class CueRules:
    """Limits for cue building (defaults: Netflix English template, delivery standards §6).

    ``min_duration_ms`` is 20 frames at 24 fps; a shorter cue is extended into the
    following silence only, never overlapping the next cue. ``min_gap_ms`` (~2 frames) is
    kept before the next cue when a cue is extended or has to be trimmed.
    ``max_shared_pause_ms``: two sentences share a cue only if the pause between them is
    shorter than this. For Chinese/Japanese pass a smaller ``max_line_chars`` (e.g. 16).
    """

    max_line_chars: int = 42
    max_lines: int = 2
    max_duration_ms: int = 7000
    min_duration_ms: int = 833
    min_gap_ms: int = 84
    max_shared_pause_ms: int = 1500

    def __post_init__(self) -> None:
        if self.max_line_chars < 1 or self.max_lines < 1:
            raise ValueError("max_line_chars and max_lines must be at least 1")
        if self.max_duration_ms < 1 or not 0 <= self.min_duration_ms <= self.max_duration_ms:
            raise ValueError("need 0 <= min_duration_ms <= max_duration_ms and max >= 1")
        if self.min_gap_ms < 0 or self.max_shared_pause_ms < 0:
            raise ValueError("min_gap_ms and max_shared_pause_ms must not be negative")


@dataclass(frozen=True)
class _Token:
    """A word (or a chunk of an over-long word) ready for layout."""

    text: str
    start_ms: int
    end_ms: int
    tier: int  # break quality after this token
    space_before: bool  # joined to the previous token with a space (else directly)


@dataclass(frozen=True)
class _Piece:
    """Consecutive tokens destined for one cue; ``whole`` if they are whole sentences."""

    tokens: tuple[_Token, ...]
    whole: bool


def build_cues(text: str, words: Sequence[TimedWord], rules: CueRules = CueRules()) -> list[Cue]:
    """Group ``words`` (timed, in order, offsets into ``text``) into caption cues.

    See the module docstring for the rules. Words whose text is blank are skipped; an
    empty word list gives no cues.
    """
    return list(iter_cues(text, words, rules))


def iter_cues(text: str, words: Iterable[TimedWord], rules: CueRules = CueRules()) -> Iterator[Cue]:
    """:func:`build_cues` one paragraph at a time: memory holds one paragraph's words, so a
    chapter's word track can be streamed from the database whatever its length."""
    pieces = (
        piece
        for paragraph in _paragraphs(text, words, rules.max_line_chars)
        for piece in _paragraph_pieces(paragraph, rules)
    )
    return _timed_cues(pieces, rules)


def to_srt(cues: Iterable[Cue]) -> str:
    """SubRip text for ``cues``, numbered from 1 (empty string for no cues)."""
    return "".join(srt_cue(number, cue) for number, cue in enumerate(cues, start=1))


def to_vtt(cues: Iterable[Cue]) -> str:
    """WebVTT text for ``cues``; starts with ``WEBVTT``; ``& < >`` are escaped."""
    return VTT_HEADER + "".join(map(vtt_cue, cues))


#: what a WebVTT file starts with, before its first :func:`vtt_cue`
VTT_HEADER = "WEBVTT\n"


def vtt_cue(cue: Cue) -> str:
    """One WebVTT cue block (a blank line, the timings, the escaped lines): files are
    written a cue at a time, so a chapter's captions never sit in memory whole."""
    caption = webvtt.Caption(
        start=_vtt_timestamp(cue.start_ms),
        end=_vtt_timestamp(cue.end_ms),
        text=[line.translate(_VTT_ESCAPES) for line in cue.lines],
    )
    return "\n".join(WebVTTCueBlock.format_lines(caption)) + "\n"


def srt_cue(number: int, cue: Cue) -> str:
    """One SubRip block, numbered ``number`` (from 1)."""
    subtitle = srt.Subtitle(
        index=number,
        start=timedelta(milliseconds=cue.start_ms),
        end=timedelta(milliseconds=cue.end_ms),
        content=cue.text,
    )
    block: str = subtitle.to_srt()
    return block


def _vtt_timestamp(ms: int) -> str:
    """``hh:mm:ss.ttt`` for a non-negative millisecond time."""
    seconds, millis = divmod(max(ms, 0), 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


# --- tokens -------------------------------------------------------------------------------


def _paragraphs(text: str, words: Iterable[TimedWord], max_chars: int) -> Iterator[list[_Token]]:
    """Tokens grouped by paragraph; a blank line in ``text`` between two words splits.
    Reads ``words`` once, one word ahead."""
    kept = (word for word in words if word.text.strip())
    paragraph: list[_Token] = []
    previous: TimedWord | None = None
    word = next(kept, None)
    while word is not None:
        following = next(kept, None)
        if previous is not None and _PARAGRAPH_BREAK_RE.search(_gap(text, previous, word)):
            yield paragraph
            paragraph = []
        space = bool(paragraph) and _spaced(paragraph[-1].text, word.text.strip())
        trailing = _leading_punctuation(_gap(text, word, following))
        paragraph.extend(_word_tokens(word, trailing, space, max_chars))
        previous, word = word, following
    if paragraph:
        yield paragraph


def _gap(text: str, word: TimedWord, following: TimedWord | None) -> str:
    """The raw text between ``word`` and ``following`` (to the end if there is none)."""
    start = max(word.char_end, 0)
    end = len(text) if following is None else max(following.char_start, start)
    return text[start:end]


def _leading_punctuation(gap: str) -> str:
    """What is glued to the end of a word in the raw text (e.g. punctuation it lacks)."""
    return "" if not gap or gap[0].isspace() else gap.split(maxsplit=1)[0]


def _word_tokens(word: TimedWord, trailing: str, space: bool, max_chars: int) -> list[_Token]:
    """One token for the word, or several glued chunks if it is longer than a line."""
    label = " ".join(word.text.split())
    tier = _tier(label + trailing)
    chunks = _chunks(label, max_chars)
    duration = word.end_ms - word.start_ms
    tokens: list[_Token] = []
    done = 0
    for number, chunk in enumerate(chunks):
        start = word.start_ms + duration * done // len(label)
        done += len(chunk)
        last = number == len(chunks) - 1
        end = word.end_ms if last else word.start_ms + duration * done // len(label)
        tokens.append(
            _Token(chunk, start, end, tier if last else _INSIDE_WORD, space and number == 0)
        )
    return tokens


def _chunks(label: str, max_chars: int) -> list[str]:
    """``label`` cut into the fewest, most even pieces of at most ``max_chars``."""
    count = -(-len(label) // max_chars)
    size = -(-len(label) // count)
    return [label[at : at + size] for at in range(0, len(label), size)]


def _tier(word: str) -> int:
    """Break quality after a word, judged from its text plus any punctuation after it."""
    if _SENTENCE_RE.search(word) and not _is_abbreviation(word):
        return _SENTENCE_END
    if _CLAUSE_RE.search(word):
        return _CLAUSE_END
    return _WORD_END


def _is_abbreviation(word: str) -> bool:
    """True for "Mr.", "e.g.", initials like "J." — a period that does not end a sentence."""
    bare = word.lstrip(_OPENERS)
    return bare.lower() in _ABBREVIATIONS or bool(_INITIAL_RE.fullmatch(bare))


def _spaced(before: str, after: str) -> bool:
    """Whether a space separates two words: not between two CJK characters."""
    return not (_is_cjk(before[-1]) and _is_cjk(after[0]))


def _is_cjk(char: str) -> bool:
    """Han, kana, bopomofo, CJK punctuation and full-width forms (not Hangul)."""
    code = ord(char)
    return (
        0x2E80 <= code <= 0x2FDF  # radicals
        or 0x3000 <= code <= 0x312F  # CJK punctuation, kana, bopomofo
        or 0x31A0 <= code <= 0x31FF  # bopomofo ext, strokes, katakana ext
        or 0x3400 <= code <= 0x4DBF  # ext A
        or 0x4E00 <= code <= 0x9FFF  # unified ideographs
        or 0xF900 <= code <= 0xFAFF  # compatibility ideographs
        or 0xFE30 <= code <= 0xFE4F  # compatibility forms
        or 0xFF00 <= code <= 0xFFEF  # half-width and full-width forms
        or 0x20000 <= code <= 0x3FFFF  # ext B and later
    )


# --- cue grouping -------------------------------------------------------------------------


def _paragraph_pieces(tokens: list[_Token], rules: CueRules) -> list[_Piece]:
    """Cue-sized pieces of one paragraph: sentences split to fit, short ones merged."""
    pieces: list[_Piece] = []
    for sentence in _split_after(tokens, _SENTENCE_END):
        if _fits(sentence, rules):
            pieces.append(_Piece(tuple(sentence), whole=True))
        else:
            pieces.extend(_Piece(part, whole=False) for part in _split_sentence(sentence, rules))
    return _merge_sentences(pieces, rules)


def _split_after(tokens: list[_Token], tier: int) -> list[list[_Token]]:
    """Split ``tokens`` after every token whose break tier is ``tier`` or better."""
    groups: list[list[_Token]] = [[]]
    for token in tokens:
        groups[-1].append(token)
        if token.tier <= tier:
            groups.append([])
    return [group for group in groups if group]


def _split_sentence(tokens: list[_Token], rules: CueRules) -> list[tuple[_Token, ...]]:
    """Split a too-long sentence into fitting parts.

    Dynamic programming over split points minimising, in order: the penalty of the split
    points (clause ends free, word boundaries 1, inside a word 1000), the number of parts,
    and the sum of squared part lengths in characters (balance).
    """
    best: list[tuple[int, int, int] | None] = [None] * (len(tokens) + 1)
    back = [0] * (len(tokens) + 1)
    best[0] = (0, 0, 0)
    for start in range(len(tokens)):
        cost = best[start]
        if cost is None:
            continue
        penalty = _SPLIT_PENALTY[tokens[start - 1].tier] if start else 0
        # grow the part one token at a time, keeping its width and first-fit line count
        size = lines = width = 0
        for end in range(start + 1, len(tokens) + 1):
            token = tokens[end - 1]
            if end == start + 1:
                size = width = len(token.text)
                lines = 1
            else:
                step = token.space_before + len(token.text)
                size += step
                if width + step <= rules.max_line_chars:
                    width += step
                else:
                    lines, width = lines + 1, len(token.text)
                too_long = token.end_ms - tokens[start].start_ms > rules.max_duration_ms
                if too_long or lines > rules.max_lines:
                    break
            candidate = (cost[0] + penalty, cost[1] + 1, cost[2] + size * size)
            current = best[end]
            if current is None or candidate < current:
                best[end], back[end] = candidate, start
    parts: list[tuple[_Token, ...]] = []
    end = len(tokens)
    while end:
        parts.append(tuple(tokens[back[end] : end]))
        end = back[end]
    return parts[::-1]


def _merge_sentences(pieces: list[_Piece], rules: CueRules) -> list[_Piece]:
    """Greedily let consecutive whole sentences share a cue when they fit and pause < max."""
    merged: list[_Piece] = []
    for piece in pieces:
        if merged and _can_share(merged[-1], piece, rules):
            merged[-1] = _Piece(merged[-1].tokens + piece.tokens, whole=True)
        else:
            merged.append(piece)
    return merged


def _can_share(first: _Piece, second: _Piece, rules: CueRules) -> bool:
    """Whether two whole-sentence pieces may share one cue."""
    pause = second.tokens[0].start_ms - first.tokens[-1].end_ms
    return (
        first.whole
        and second.whole
        and pause < rules.max_shared_pause_ms
        and _fits(first.tokens + second.tokens, rules)
    )


def _fits(tokens: Sequence[_Token], rules: CueRules) -> bool:
    """One cue can hold ``tokens``: a single token always; else duration and line limits."""
    if len(tokens) == 1:
        return True
    if tokens[-1].end_ms - tokens[0].start_ms > rules.max_duration_ms:
        return False
    return _greedy_line_count(tokens, rules.max_line_chars) <= rules.max_lines


def _greedy_line_count(tokens: Sequence[_Token], max_chars: int) -> int:
    """Fewest lines of at most ``max_chars`` that hold ``tokens`` (first-fit is optimal)."""
    lines, width = 1, len(tokens[0].text)
    for token in tokens[1:]:
        extended = width + token.space_before + len(token.text)
        if extended <= max_chars:
            width = extended
        else:
            lines, width = lines + 1, len(token.text)
    return lines


def _join(tokens: Sequence[_Token]) -> str:
    """Tokens as one line of text: spaces only where ``space_before`` says."""
    parts = [tokens[0].text]
    parts.extend((" " if token.space_before else "") + token.text for token in tokens[1:])
    return "".join(parts)


# --- line breaking ------------------------------------------------------------------------


def _layout(tokens: Sequence[_Token], rules: CueRules) -> tuple[str, ...]:
    """Lines for a cue that fits: one line if possible, else the fewest, best-broken lines."""
    single = _join(tokens)
    if len(single) <= rules.max_line_chars:
        return (single,)
    count = _greedy_line_count(tokens, rules.max_line_chars)
    breaks = _line_breaks(tokens, count, rules.max_line_chars)
    return tuple(_join(tokens[start:end]) for start, end in pairwise([0, *breaks, len(tokens)]))


def _line_breaks(tokens: Sequence[_Token], count: int, max_chars: int) -> list[int]:
    """Token indices starting lines 2..count.

    Dynamic programming minimising first the summed break tiers (after sentence ends, then
    clause punctuation, then plain word boundaries), then the sum of squared line widths.
    ``count`` must be feasible (from `_greedy_line_count`).
    """
    n = len(tokens)
    widths = [0]
    for index, token in enumerate(tokens):
        widths.append(widths[-1] + len(token.text) + (token.space_before and index > 0))

    def width(start: int, end: int) -> int:
        return widths[end] - widths[start] - (tokens[start].space_before and start > 0)

    best: list[list[tuple[int, int] | None]] = [[None] * (n + 1) for _ in range(count + 1)]
    back = [[0] * (n + 1) for _ in range(count + 1)]
    best[0][0] = (0, 0)
    for line in range(1, count + 1):
        for end in range(1, n + 1):
            for start in range(end - 1, -1, -1):
                if width(start, end) > max_chars:
                    break
                previous = best[line - 1][start]
                if previous is None:
                    continue
                tier = tokens[start - 1].tier if start else 0
                candidate = (previous[0] + tier, previous[1] + width(start, end) ** 2)
                current = best[line][end]
                if current is None or candidate < current:
                    best[line][end], back[line][end] = candidate, start
    starts: list[int] = []
    end = n
    for line in range(count, 1, -1):
        end = back[line][end]
        starts.append(end)
    return starts[::-1]


# --- timing -------------------------------------------------------------------------------


def _timed_cues(pieces: Iterable[_Piece], rules: CueRules) -> Iterator[Cue]:
    """Turn pieces into cues with final start and end times (see module docstring); each
    cue is given once the next one's start is known."""
    pending: tuple[int, _Piece] | None = None
    for piece in pieces:
        natural = piece.tokens[0].start_ms
        start = natural if pending is None else max(natural, pending[0] + 1)
        if pending is not None:
            yield _cue(*pending, start, rules)
        pending = (start, piece)
    if pending is not None:
        yield _cue(*pending, None, rules)


def _cue(start: int, piece: _Piece, following: int | None, rules: CueRules) -> Cue:
    end = _cue_end(start, piece.tokens[-1].end_ms, following, rules)
    return Cue(start, end, _layout(piece.tokens, rules))


def _cue_end(start: int, speech_end: int, following: int | None, rules: CueRules) -> int:
    """End time: speech end, extended to the minimum duration, clipped by the next cue."""
    limit = start + max(rules.max_duration_ms, speech_end - start)
    end = min(max(speech_end, start + rules.min_duration_ms), limit)
    if following is None:
        return max(end, start + 1)
    if end > speech_end:  # extension into silence stops min_gap_ms before the next cue
        end = max(speech_end, min(end, following - rules.min_gap_ms))
    if end > following:  # the words overlap the next cue: trim, keeping a gap
        end = following - rules.min_gap_ms
    return min(max(end, start + 1), following)


#: line width for Chinese/Japanese captions (Netflix's Simplified Chinese template: 16)
CJK_LINE_CHARS = 16


def rules_for(text: str) -> CueRules:
    """Cue rules suited to ``text``: 16 characters a line when it is mostly CJK."""
    letters = [ch for ch in text if ch.isalnum()]
    cjk = sum(1 for ch in letters if _is_cjk(ch))
    if letters and cjk * 2 > len(letters):
        return CueRules(max_line_chars=CJK_LINE_CHARS)
    return CueRules()
