"""Captions: group a chapter's timed words into subtitle cues and write SRT / WebVTT.

Input is the chapter text (paragraphs separated by a blank line) and its timed words in
order on the chapter timeline. Cue text is the words' own texts joined with single spaces
(no space between two CJK characters); the raw text is only read for paragraph breaks and
for punctuation that sits between a word's end and the next word's start.

The limits come from a caption profile (:mod:`renderer.caption_profiles`, turned into
:class:`CueRules` by :func:`rules_for`): characters a line, lines, reading speed
(characters a second, counted as :mod:`renderer.caption_profiles` says), shortest and
longest cue, the gap between cues and how long a cue may stay after its speech.

Cue building, in order of precedence:

1. Paragraphs are hard boundaries: no cue holds words from two paragraphs.
2. Sentences (a word ending in ``. ! ? …`` or ``。！？``, optionally followed by closing
   quotes or brackets; common abbreviations such as "Mr." and initials such as "J." are not
   sentence ends) start a new cue.
3. A sentence that does not fit one cue (``max_lines`` lines of ``max_line_chars`` and at
   most ``max_duration_ms`` from its first word's start to its last word's end) is split,
   by dynamic programming, minimising in order: cuts right after an article; the rules
   its parts would break (reading speed, shortest duration, with all the silence they
   may take, see Timing), so that it is cut at a word rather than a clause end when only
   that keeps the reading speed; the cost of the cuts (clause ends ``, ; : — –`` and
   ``，；：、`` free, word boundaries one, inside a word a thousand); the screen time the
   parts lack; the number of cues; and their imbalance (by characters).
4. Consecutive whole sentences share a cue when together they fit, the pause between
   them is below ``max_shared_pause_ms``, and sharing breaks the reading speed or the
   shortest duration no more often, and leaves them no shorter of screen time, than two
   cues would.

Line breaking: one line if the cue fits on one, else the fewest lines; breaks go after
sentence ends first, then after clause punctuation, then at word boundaries, and among
equals the most balanced lines win. A line never ends on an article, a determiner or a
title that belongs to the next word (:data:`GLUE_WORDS`: "a", "an", "the", "my", "your",
"his", "its", "our", "their", "every", "Mr.", "Mrs.", "Ms.", "Dr.", "Prof."; English only,
and only these: adjective + noun, first + last name and verb + auxiliary are not
recognised) unless that pair alone is longer than a line; a cue is not cut there either.
A word longer than ``max_line_chars`` is hard-split into balanced chunks (its time shared
out by characters); these are the only places where a line break or a cue boundary falls
inside a word.

Timing: a cue starts at its first word's start, never earlier. It ends at its last word's
end, extended into the following silence as far as it needs to last ``min_duration_ms``
and to be read at ``max_chars_per_s``, but never more than ``max_linger_ms`` after its
last word, never past ``max_duration_ms`` from its start (unless one word alone is
longer), never past ``until_ms`` (the end of the audio) and always ``min_gap_ms`` before
the next cue starts (when the speech runs on without that pause, the cue ends that much
before its last word does). A cue always has ``start < end``. Degenerate input (starts
going backwards, zero-length words at the same instant) is repaired by delaying a cue's
start to 1 ms after the previous cue's start, which never moves a cue ahead of the speech.

Where the speech itself is faster than the profile allows (no layout and no silence can
give a cue its reading time), the cue stays honest, in sync with the speech, and the
rule it breaks is reported: pass a :class:`CueSink` (such as
:class:`renderer.caption_check.CaptionTally`) to :func:`iter_cues`, which sees every cue
as it is made.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from itertools import pairwise
from typing import Protocol

import srt
import webvtt
from webvtt.vtt import WebVTTCueBlock

from renderer.caption_profiles import STANDARD, CaptionProfile, is_cjk
from renderer.timing import TimedWord

# Break quality after a token, best first. Used both for cue splits and line breaks.
_SENTENCE_END = 0
_CLAUSE_END = 1
_WORD_END = 2
_INSIDE_WORD = 3
_AFTER_GLUE = 4  # after an article, determiner or title: its word follows

# Cost of splitting a sentence into two cues after a token of each tier: clause and
# sentence ends are free, word boundaries cost one, splitting inside a word is a last
# resort (after an article is counted apart, before everything else).
_SPLIT_PENALTY = {_SENTENCE_END: 0, _CLAUSE_END: 0, _WORD_END: 1, _AFTER_GLUE: 1}
_SPLIT_PENALTY[_INSIDE_WORD] = 1_000
# Cost of a line break after a token of each tier.
_LINE_COST = {_SENTENCE_END: 0, _CLAUSE_END: 1, _WORD_END: 2, _INSIDE_WORD: 3, _AFTER_GLUE: 100}

_CLOSERS = "\"'”’»›)\\]}」』）】〉》〕］｝＂＇"
_SENTENCE_RE = re.compile(f"[.!?…。！？．‼⁇⁈⁉][{_CLOSERS}]*$")
_CLAUSE_RE = re.compile(f"(?:[,;:—–，；：、､]|--)[{_CLOSERS}]*$")
_INITIAL_RE = re.compile(r"[A-Z]\.$")
_OPENERS = "\"'“‘«‹([{「『（【〈《〔"
_ABBREVIATIONS = frozenset(
    {"mr.", "mrs.", "ms.", "dr.", "prof.", "st.", "jr.", "sr.", "vs.", "e.g.", "i.e.", "mt."}
    | {"fr.", "rev.", "gen.", "col.", "capt.", "lt.", "sgt.", "cf.", "approx.", "dept."}
)
#: words a line never ends on (compared in lower case, after any opening quote or
#: bracket): articles, determiners that are never pronouns, titles before a name. A capital
#: "A" is not among them: it is as often a name ("Plan A", "matrix A") as an article.
GLUE_WORDS = frozenset(
    {"a", "an", "the", "my", "your", "his", "its", "our", "their", "every"}
    | {"mr.", "mrs.", "ms.", "dr.", "prof.", "mr", "mrs"}
)
_PARAGRAPH_BREAK_RE = re.compile(r"\n[^\S\n]*\n")
_VTT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


def is_glue_word(word: str) -> bool:
    """Whether ``word`` (as shown, punctuation included) must stay on a line with the word
    after it: "the", "an", "“A" and "Mr." do; "the," and "A" do not."""
    bare = word.lstrip(_OPENERS)
    return bare != "A" and bare.lower() in GLUE_WORDS


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


class CueSink(Protocol):
    """Sees every cue :func:`iter_cues` makes, in order (e.g. to tally broken rules)."""

    def add(self, cue: Cue) -> None: ...


@dataclass(frozen=True)
class CueRules:
    """Limits for cue building; the defaults are the ``standard`` caption profile
    (:mod:`renderer.caption_profiles`), :func:`rules_for` makes them from any profile.

    ``max_chars_per_s``: reading speed a cue is extended into silence to keep.
    ``min_duration_ms``: a shorter cue is extended into the following silence.
    ``max_linger_ms``: how far past its last word a cue may be extended.
    ``min_gap_ms``: kept before the next cue, even if that ends a cue before its speech.
    ``max_shared_pause_ms``: two sentences share a cue only if the pause between them is
    shorter than this.
    """

    max_line_chars: int = 42
    max_lines: int = 2
    max_duration_ms: int = 7000
    min_duration_ms: int = 833
    min_gap_ms: int = 83
    max_shared_pause_ms: int = 1500
    max_chars_per_s: float = 17.0
    max_linger_ms: int = 1500

    def __post_init__(self) -> None:
        if self.max_line_chars < 1 or self.max_lines < 1:
            raise ValueError("max_line_chars and max_lines must be at least 1")
        if self.max_duration_ms < 1 or not 0 <= self.min_duration_ms <= self.max_duration_ms:
            raise ValueError("need 0 <= min_duration_ms <= max_duration_ms and max >= 1")
        if self.min_gap_ms < 0 or self.max_shared_pause_ms < 0 or self.max_linger_ms < 0:
            raise ValueError("min_gap_ms, max_shared_pause_ms and max_linger_ms must be >= 0")
        if self.max_chars_per_s <= 0:
            raise ValueError("max_chars_per_s must be positive")

    @classmethod
    def of(cls, profile: CaptionProfile) -> CueRules:
        """The rules of a caption profile (for CJK text: ``profile.for_text(text)``)."""
        return cls(
            max_line_chars=profile.max_line_chars,
            max_lines=profile.max_lines,
            max_duration_ms=profile.max_duration_ms,
            min_duration_ms=profile.min_duration_ms,
            min_gap_ms=profile.min_gap_ms,
            max_chars_per_s=profile.max_chars_per_s,
            max_linger_ms=profile.max_linger_ms,
        )


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


def build_cues(
    text: str,
    words: Sequence[TimedWord],
    rules: CueRules = CueRules(),
    *,
    until_ms: int | None = None,
    sink: CueSink | None = None,
) -> list[Cue]:
    """Group ``words`` (timed, in order, offsets into ``text``) into caption cues.

    See the module docstring for the rules. Words whose text is blank are skipped; an
    empty word list gives no cues.
    """
    return list(iter_cues(text, words, rules, until_ms=until_ms, sink=sink))


def iter_cues(
    text: str,
    words: Iterable[TimedWord],
    rules: CueRules = CueRules(),
    *,
    until_ms: int | None = None,
    sink: CueSink | None = None,
) -> Iterator[Cue]:
    """:func:`build_cues` one paragraph at a time: memory holds two paragraphs' words, so a
    chapter's word track can be streamed from the database whatever its length.

    ``until_ms``: where the audio ends; no cue runs past it. ``sink`` sees each cue as it
    is yielded (a tally of the rules the speech made impossible to keep).
    """
    for cue in _timed_cues(_pieces(text, words, rules, until_ms), rules, until_ms):
        if sink is not None:
            sink.add(cue)
        yield cue


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
    if tier == _WORD_END and is_glue_word(label.rsplit(" ", 1)[-1]):
        tier = _AFTER_GLUE
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
    """Whether a space separates two words: not between two CJK characters, nor between
    a CJK character and punctuation (Chinese quotes: ``子曰：“学``, not ``子曰：“ 学``)."""
    last, first = before[-1], after[0]
    if is_cjk(last):
        return not (is_cjk(first) or _is_punctuation(first))
    return not (is_cjk(first) and _is_punctuation(last))


def _is_punctuation(char: str) -> bool:
    return unicodedata.category(char).startswith("P")


# --- screen time ----------------------------------------------------------------------------


def _reading_ms(chars: int, rules: CueRules) -> int:
    """The screen time ``chars`` characters need: the shortest duration, or the time they
    take to read at the profile's speed (rounded up to the millisecond), if longer."""
    return max(rules.min_duration_ms, math.ceil(chars * 1000 / rules.max_chars_per_s))


def _latest_end(
    start: int, speech_end: int, following: int | None, until: int | None, rules: CueRules
) -> int:
    """The latest a cue may end: ``max_linger_ms`` after its speech, ``max_duration_ms``
    after its start (unless its speech is longer), the end of the audio (``until``), and
    ``min_gap_ms`` before the next cue (``following``: its start), even inside the speech."""
    latest = min(speech_end + rules.max_linger_ms, max(start + rules.max_duration_ms, speech_end))
    if until is not None:
        latest = min(latest, max(until, speech_end))
    if following is not None:
        latest = min(latest, following - rules.min_gap_ms)
    return latest


def _lack(
    first: _Token,
    last: _Token,
    chars: int,
    following: int | None,
    until: int | None,
    rules: CueRules,
) -> tuple[int, int]:
    """How many of the two rules (reading speed, shortest duration) a cue from ``first``
    to ``last`` (``chars`` characters) would break, and by how much screen time (ms) it
    would fall short of keeping both."""
    start = first.start_ms
    available = _latest_end(start, last.end_ms, following, until, rules) - start
    shortfall = max(0, _reading_ms(chars, rules) - available)
    broken = (chars * 1000 > rules.max_chars_per_s * available) + (
        available < rules.min_duration_ms
    )
    return broken, shortfall


# --- cue grouping -------------------------------------------------------------------------


def _pieces(
    text: str, words: Iterable[TimedWord], rules: CueRules, until: int | None
) -> Iterator[_Piece]:
    """Every paragraph's pieces, each paragraph cut knowing when the next one starts."""
    paragraphs = _paragraphs(text, words, rules.max_line_chars)
    current = next(paragraphs, None)
    while current is not None:
        following = next(paragraphs, None)
        after = following[0].start_ms if following else None
        yield from _paragraph_pieces(current, after, until, rules)
        current = following


def _paragraph_pieces(
    tokens: list[_Token], after: int | None, until: int | None, rules: CueRules
) -> list[_Piece]:
    """Cue-sized pieces of one paragraph: sentences split to fit, short ones merged.
    ``after``: when the next paragraph starts (None: nothing follows)."""
    sentences = _split_after(tokens, _SENTENCE_END)
    pieces: list[_Piece] = []
    for number, sentence in enumerate(sentences):
        if _fits(sentence, rules):
            pieces.append(_Piece(tuple(sentence), whole=True))
            continue
        following = sentences[number + 1][0].start_ms if number + 1 < len(sentences) else after
        parts = _split_sentence(sentence, following, until, rules)
        pieces.extend(_Piece(part, whole=False) for part in parts)
    return _merge_sentences(pieces, after, until, rules)


def _split_after(tokens: list[_Token], tier: int) -> list[list[_Token]]:
    """Split ``tokens`` after every token whose break tier is ``tier`` or better."""
    groups: list[list[_Token]] = [[]]
    for token in tokens:
        groups[-1].append(token)
        if token.tier <= tier:
            groups.append([])
    return [group for group in groups if group]


def _split_sentence(
    tokens: list[_Token], after: int | None, until: int | None, rules: CueRules
) -> list[tuple[_Token, ...]]:
    """Split a too-long sentence into fitting parts (``after``: when the next cue starts).

    Dynamic programming over split points minimising, in order: the splits after an
    article, the rules (reading speed, shortest duration) the parts break, the penalty
    of the split points (clause ends free, word boundaries 1, inside a word 1000), the
    screen time the parts lack, the number of parts, and the sum of squared part lengths
    in characters (balance).
    """
    count = len(tokens)
    best: list[tuple[int, ...] | None] = [None] * (count + 1)
    back = [0] * (count + 1)
    best[0] = (0, 0, 0, 0, 0, 0)
    for start in range(count):
        cost = best[start]
        if cost is None:
            continue
        glued = int(start > 0 and tokens[start - 1].tier == _AFTER_GLUE)
        penalty = _SPLIT_PENALTY[tokens[start - 1].tier] if start else 0
        fit = _LineFit(rules.max_line_chars)
        size = 0
        for end in range(start + 1, count + 1):
            token = tokens[end - 1]
            size += len(token.text) + (token.space_before and end > start + 1)
            fit.add(token)
            if end > start + 1:
                too_long = token.end_ms - tokens[start].start_ms > rules.max_duration_ms
                if too_long or fit.lines > rules.max_lines:
                    break
            following = tokens[end].start_ms if end < count else after
            missed, lacking = _lack(tokens[start], token, size, following, until, rules)
            candidate = (
                cost[0] + glued,
                cost[1] + missed,
                cost[2] + penalty,
                cost[3] + lacking,
                cost[4] + 1,
                cost[5] + size * size,
            )
            current = best[end]
            if current is None or candidate < current:
                best[end], back[end] = candidate, start
    parts: list[tuple[_Token, ...]] = []
    end = count
    while end:
        parts.append(tuple(tokens[back[end] : end]))
        end = back[end]
    return parts[::-1]


def _merge_sentences(
    pieces: list[_Piece], after: int | None, until: int | None, rules: CueRules
) -> list[_Piece]:
    """Greedily let consecutive whole sentences share a cue (see :func:`_can_share`)."""
    merged: list[_Piece] = []
    for number, piece in enumerate(pieces):
        following = pieces[number + 1].tokens[0].start_ms if number + 1 < len(pieces) else after
        if merged and _can_share(merged[-1], piece, following, until, rules):
            merged[-1] = _Piece(merged[-1].tokens + piece.tokens, whole=True)
        else:
            merged.append(piece)
    return merged


def _can_share(
    first: _Piece, second: _Piece, following: int | None, until: int | None, rules: CueRules
) -> bool:
    """Whether two whole-sentence pieces may share one cue: they fit, the pause between
    them is short, and together they break the reading speed or the shortest duration no
    more often, and lack no more screen time, than apart."""
    pause = second.tokens[0].start_ms - first.tokens[-1].end_ms
    if not (first.whole and second.whole and pause < rules.max_shared_pause_ms):
        return False
    both = first.tokens + second.tokens
    if not _fits(both, rules):
        return False
    one = _lack(
        first.tokens[0],
        first.tokens[-1],
        _width(first.tokens),
        second.tokens[0].start_ms,
        until,
        rules,
    )
    two = _lack(second.tokens[0], second.tokens[-1], _width(second.tokens), following, until, rules)
    together = _lack(both[0], both[-1], _width(both), following, until, rules)
    return together <= (one[0] + two[0], one[1] + two[1])


def _fits(tokens: Sequence[_Token], rules: CueRules) -> bool:
    """One cue can hold ``tokens``: a single token always; else duration and line limits."""
    if len(tokens) == 1:
        return True
    if tokens[-1].end_ms - tokens[0].start_ms > rules.max_duration_ms:
        return False
    return _line_count(tokens, rules.max_line_chars) <= rules.max_lines


class _LineFit:
    """Lines of at most ``max_chars`` for tokens added one at a time, first fit, keeping a
    word on the line of the article (or title) before it whenever the two fit on a line:
    the fewest lines that never end on an article."""

    __slots__ = ("glued", "lines", "max_chars", "run", "width")

    def __init__(self, max_chars: int) -> None:
        self.max_chars = max_chars
        self.lines = 0
        self.width = 0  # of the current line
        self.run = 0  # of the articles and their word at the end of the current line
        self.glued = False  # the last token added is an article: the next stays with it

    def add(self, token: _Token) -> None:
        size = len(token.text)
        step = token.space_before + size
        if self.lines == 0:
            self.lines, self.width, self.run = 1, size, size
        elif self.width + step <= self.max_chars:
            self.width += step
            self.run = self.run + step if self.glued else size
        elif self.glued and self.run < self.width and self.run + step <= self.max_chars:
            self.lines += 1  # the article moves down to the new line with its word
            self.width = self.run = self.run + step
        else:
            self.lines += 1
            self.width = self.run = size
        self.glued = token.tier == _AFTER_GLUE


def _line_count(tokens: Sequence[_Token], max_chars: int) -> int:
    """Fewest lines of at most ``max_chars`` that hold ``tokens``, none ending on an
    article unless an article and its word are longer than a line."""
    fit = _LineFit(max_chars)
    for token in tokens:
        fit.add(token)
    return fit.lines


def _join(tokens: Sequence[_Token]) -> str:
    """Tokens as one line of text: spaces only where ``space_before`` says."""
    parts = [tokens[0].text]
    parts.extend((" " if token.space_before else "") + token.text for token in tokens[1:])
    return "".join(parts)


def _width(tokens: Sequence[_Token]) -> int:
    """Characters of ``tokens`` on one line."""
    return sum(len(t.text) for t in tokens) + sum(t.space_before for t in tokens[1:])


# --- line breaking ------------------------------------------------------------------------


def _layout(tokens: Sequence[_Token], rules: CueRules) -> tuple[str, ...]:
    """Lines for a cue that fits: one line if possible, else the fewest, best-broken lines."""
    single = _join(tokens)
    if len(single) <= rules.max_line_chars:
        return (single,)
    count = _line_count(tokens, rules.max_line_chars)
    breaks = _line_breaks(tokens, count, rules.max_line_chars)
    return tuple(_join(tokens[start:end]) for start, end in pairwise([0, *breaks, len(tokens)]))


def _line_breaks(tokens: Sequence[_Token], count: int, max_chars: int) -> list[int]:
    """Token indices starting lines 2..count.

    Dynamic programming minimising first the summed cost of the breaks (after sentence
    ends 0, clause punctuation 1, plain word boundaries 2, inside a word 3, after an
    article 100), then the sum of squared line widths. ``count`` must be feasible (from
    :func:`_line_count`).
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
                cost = _LINE_COST[tokens[start - 1].tier] if start else 0
                candidate = (previous[0] + cost, previous[1] + width(start, end) ** 2)
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


def _timed_cues(pieces: Iterable[_Piece], rules: CueRules, until: int | None) -> Iterator[Cue]:
    """Turn pieces into cues with final start and end times (see module docstring); each
    cue is given once the next one's start is known."""
    pending: tuple[int, _Piece] | None = None
    for piece in pieces:
        natural = piece.tokens[0].start_ms
        start = natural if pending is None else max(natural, pending[0] + 1)
        if pending is not None:
            yield _cue(*pending, start, until, rules)
        pending = (start, piece)
    if pending is not None:
        yield _cue(*pending, None, until, rules)


def _cue(
    start: int, piece: _Piece, following: int | None, until: int | None, rules: CueRules
) -> Cue:
    lines = _layout(piece.tokens, rules)
    chars = sum(map(len, lines))
    speech_end = piece.tokens[-1].end_ms
    latest = _latest_end(start, speech_end, following, until, rules)
    end = min(latest, max(speech_end, start + _reading_ms(chars, rules)))
    end = max(end, start + 1)
    if following is not None:
        end = min(end, following)
    return Cue(start, end, lines)


def rules_for(text: str, profile: CaptionProfile = STANDARD) -> CueRules:
    """Cue rules of ``profile`` as it applies to ``text`` (:meth:`CaptionProfile.for_text`:
    16 characters a line and a slower reading speed when it is mostly CJK)."""
    return CueRules.of(profile.for_text(text))
