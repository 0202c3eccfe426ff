"""Checking captions against a caption profile: ``narrate captions --check`` for any WebVTT
or SubRip file, ours or not, and the tally of the rules narrate's own cues had to break.

Rules a file alone can be checked against (limits from :mod:`renderer.caption_profiles`),
each reported with the cue (its number in the file, from 1), its time and text, what was
measured and the limit:

* ``line_chars``: the longest line, in characters;
* ``lines``: lines in the cue;
* ``chars_per_s``: reading speed, the characters of all lines (spaces and punctuation
  included, line breaks not) over the cue's duration;
* ``min_duration`` / ``max_duration``: end minus start;
* ``gap``: from the cue's end to the next cue's start, when the next starts after it;
* ``overlap``: the next cue starts before this one ends (or before it starts);
* ``article_break``: a line ends on an article, determiner or title that belongs to the
  next word (:data:`renderer.captions.GLUE_WORDS`; the last line of a cue too, since the
  next cue continues the text);
* ``empty``: a cue without text.

Whether a cue is in sync with its speech (never before it, at most 1.5 s after it) needs
the audio and the words' times, which a caption file does not have: it is kept when
narrate cuts cues (:mod:`renderer.captions`), and cannot be checked here.

Text is counted as a viewer sees it: WebVTT tags (``<i>``, ``<v Name>``, ``<c.x>``,
timestamps) are left out and character references (``&amp;``) count as the character;
SubRip tags (``<i>``, ``<font ...>``) and ASS overrides (``{\\an8}``) are left out.
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import srt
import webvtt
import webvtt.errors

from narrate.errors import InputError, MalformedDocumentError
from renderer.caption_profiles import CaptionProfile
from renderer.captions import Cue, is_glue_word


@dataclass(frozen=True)
class CaptionRule:
    """One rule: ``bound`` says how a measure breaks it (above the limit, below it, at all)."""

    key: str
    label: str
    unit: str
    bound: str  # "max" | "min" | "never"


CAPTION_RULES: dict[str, CaptionRule] = {
    rule.key: rule
    for rule in (
        CaptionRule("empty", "text", "", "never"),
        CaptionRule("line_chars", "line length", "chars", "max"),
        CaptionRule("lines", "lines", "lines", "max"),
        CaptionRule("chars_per_s", "reading speed", "chars/s", "max"),
        CaptionRule("min_duration", "duration", "ms", "min"),
        CaptionRule("max_duration", "duration", "ms", "max"),
        CaptionRule("gap", "gap to next cue", "ms", "min"),
        CaptionRule("overlap", "overlap with next", "ms", "max"),
        CaptionRule("article_break", "line ends on", "", "never"),
    )
}
_ORDER = {key: number for number, key in enumerate(CAPTION_RULES)}


@dataclass(frozen=True)
class Violation:
    """A cue breaking a rule: ``measured`` against ``limit`` (None for "never" rules)."""

    rule: str
    cue: int  # its number in the file, from 1
    start_ms: int
    end_ms: int
    lines: tuple[str, ...]
    measured: float | int | str
    limit: float | int | None

    @property
    def label(self) -> str:
        return CAPTION_RULES[self.rule].label

    @property
    def shown(self) -> str:
        """The measure as people read it: ``21.3 chars/s``, ``46 chars``, ``"the"``."""
        rule = CAPTION_RULES[self.rule]
        if isinstance(self.measured, str):
            return f'"{self.measured}"'
        return _with_unit(self.measured, rule.unit)

    @property
    def limit_text(self) -> str:
        """``at most 17 chars/s``, ``at least 833 ms``, ``never``."""
        rule = CAPTION_RULES[self.rule]
        if rule.bound == "never" or self.limit is None:
            return "never"
        word = "at most" if rule.bound == "max" else "at least"
        return f"{word} {_with_unit(self.limit, rule.unit)}"

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def as_json(self) -> dict[str, object]:
        return {
            "cue": self.cue,
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "start": timestamp(self.start_ms),
            "end": timestamp(self.end_ms),
            "text": self.text,
            "rule": self.rule,
            "label": self.label,
            "measured": self.measured,
            "shown": self.shown,
            "limit": self.limit_text,
        }


@dataclass(frozen=True)
class CaptionReport:
    """Every cue of a caption file against one profile."""

    profile: str
    cues: int
    violations: tuple[Violation, ...]

    @property
    def passed(self) -> bool:
        return not self.violations

    @property
    def failing_cues(self) -> int:
        return len({v.cue for v in self.violations})

    def counts(self) -> dict[str, int]:
        """Cues breaking each rule, for the rules broken."""
        found: dict[str, int] = {}
        for violation in self.violations:
            found[violation.rule] = found.get(violation.rule, 0) + 1
        return found

    def as_json(self) -> dict[str, object]:
        return {
            "profile": self.profile,
            "passed": self.passed,
            "cues": self.cues,
            "failing_cues": self.failing_cues,
            "counts": self.counts(),
            "violations": [v.as_json() for v in self.violations],
        }


class CueChecker:
    """Checks cues one at a time, in file order; a cue's gap to the next one is judged
    when the next one comes. Holds one cue."""

    def __init__(self, profile: CaptionProfile) -> None:
        self.profile = profile
        self.cues = 0
        self._previous: tuple[int, Cue] | None = None

    def add(self, cue: Cue) -> list[Violation]:
        """The rules broken by ``cue`` and by the previous cue's gap to it."""
        self.cues += 1
        found: list[Violation] = []
        if self._previous is not None:
            found.extend(_between(*self._previous, cue, self.profile))
        found.extend(_within(self.cues, cue, self.profile))
        self._previous = (self.cues, cue)
        return found


def check_cues(cues: Iterable[Cue], profile: CaptionProfile) -> CaptionReport:
    """Every rule of ``profile`` applied to ``cues`` (in file order); for captions that
    are mostly Chinese or Japanese, the profile's CJK limits
    (:meth:`~renderer.caption_profiles.CaptionProfile.for_text`)."""
    cues = list(cues)
    profile = profile.for_text(" ".join(line for cue in cues for line in cue.lines))
    checker = CueChecker(profile)
    found = [violation for cue in cues for violation in checker.add(cue)]
    found.sort(key=lambda v: (v.cue, _ORDER[v.rule]))
    return CaptionReport(profile.name, checker.cues, tuple(found))


def _within(number: int, cue: Cue, profile: CaptionProfile) -> Iterable[Violation]:
    """The rules one cue breaks by itself."""

    def broken(rule: str, measured: float | str, limit: float | None) -> Violation:
        return Violation(rule, number, cue.start_ms, cue.end_ms, cue.lines, measured, limit)

    lines = cue.lines
    if not any(line.strip() for line in lines):
        yield broken("empty", "", None)
        return
    longest = max(map(len, lines))
    if longest > profile.max_line_chars:
        yield broken("line_chars", longest, profile.max_line_chars)
    if len(lines) > profile.max_lines:
        yield broken("lines", len(lines), profile.max_lines)
    duration = cue.end_ms - cue.start_ms
    chars = sum(map(len, lines))
    if duration > 0 and chars * 1000 > profile.max_chars_per_s * duration:
        yield broken("chars_per_s", round(chars * 1000 / duration, 1), profile.max_chars_per_s)
    if duration < profile.min_duration_ms:
        yield broken("min_duration", duration, profile.min_duration_ms)
    if duration > profile.max_duration_ms:
        yield broken("max_duration", duration, profile.max_duration_ms)
    glued = [line.split()[-1] for line in lines if line.split() and is_glue_word(line.split()[-1])]
    if glued:
        yield broken("article_break", ", ".join(glued), None)


def _between(number: int, cue: Cue, following: Cue, profile: CaptionProfile) -> Iterable[Violation]:
    """The rules broken between a cue and the next one (reported on the first)."""
    gap = following.start_ms - cue.end_ms
    if following.start_ms < cue.start_ms or gap < 0:
        overlap = cue.end_ms - following.start_ms
        yield Violation("overlap", number, cue.start_ms, cue.end_ms, cue.lines, overlap, 0)
    elif gap < profile.min_gap_ms:
        yield Violation("gap", number, cue.start_ms, cue.end_ms, cue.lines, gap, profile.min_gap_ms)


# --- the tally of a render ----------------------------------------------------------------


@dataclass(frozen=True)
class CaptionWarning:
    """A rule some cues of a chapter break because the speech leaves no way to keep it:
    how many, and the worst of them."""

    rule: str
    profile: str
    cues: int
    total: int
    limit: float | int | None
    worst: Violation

    @property
    def message(self) -> str:
        """One line for people: what, how often, why, and the worst cue."""
        worst = self.worst
        excerpt = " ".join(" ".join(worst.lines).split())
        if len(excerpt) > 48:
            excerpt = excerpt[:47] + "…"
        return (
            f"{self.cues} of {self.total} cues {_why(self)}; worst {worst.shown}, "
            f"cue {worst.cue} at {timestamp(worst.start_ms)} “{excerpt}”"
        )


def _why(warning: CaptionWarning) -> str:
    limit = warning.worst.limit_text.removeprefix("at most ").removeprefix("at least ")
    reasons = {
        "chars_per_s": f"read faster than {limit} (the voice outpaces the {warning.profile} "
        "caption profile with no pause to hold them longer; a slower --rate, e.g. 0.85, helps)",
        "min_duration": f"last less than {limit}: short phrases with speech right after them",
        "max_duration": f"last more than {limit}: one word is spoken longer than that",
        "gap": f"end less than {limit} before the next: it starts at once",
        "overlap": "overlap the next cue: the words' times overlap",
        "line_chars": f"have a line longer than {limit}",
        "lines": f"have more than {limit}",
        "article_break": "end a line on an article or a title: it and its word are longer "
        "than a line",
        "empty": "are empty",
    }
    return reasons[warning.rule]


class CaptionTally:
    """Sees cues as they are made (a :class:`renderer.captions.CueSink`) and counts, per
    rule of ``profile``, the cues that break it, keeping only the worst: memory stays
    bounded however long the chapter. Fed the same cues, it finds exactly what
    :func:`check_cues` (``narrate captions --check``) finds in the file written from them."""

    def __init__(self, profile: CaptionProfile) -> None:
        self.profile = profile
        self._checker = CueChecker(profile)
        self._counts: dict[str, int] = {}
        self._worst: dict[str, Violation] = {}

    @property
    def cues(self) -> int:
        return self._checker.cues

    def add(self, cue: Cue) -> None:
        for violation in self._checker.add(cue):
            rule = violation.rule
            self._counts[rule] = self._counts.get(rule, 0) + 1
            kept = self._worst.get(rule)
            if kept is None or _worse(violation, kept):
                self._worst[rule] = violation

    def warnings(self) -> tuple[CaptionWarning, ...]:
        """One warning per rule broken, in the rules' order."""
        return tuple(
            CaptionWarning(
                rule, self.profile.name, self._counts[rule], self.cues, worst.limit, worst
            )
            for rule, worst in sorted(self._worst.items(), key=lambda item: _ORDER[item[0]])
        )


def _worse(violation: Violation, than: Violation) -> bool:
    bound = CAPTION_RULES[violation.rule].bound
    a, b = violation.measured, than.measured
    if isinstance(a, str) or isinstance(b, str) or bound == "never":
        return False
    return a > b if bound == "max" else a < b


# --- reading files --------------------------------------------------------------------------

#: the largest caption file read (a 4-hour chapter's WebVTT is about 1 MB)
MAX_CAPTION_BYTES = 64 * 1024 * 1024

_VTT_TIMING_RE = re.compile(
    r"^\s*(?:\d{2,}:)?[0-5]\d:[0-5]\d\.\d{3}[ \t]+-->[ \t]+(?:\d{2,}:)?[0-5]\d:[0-5]\d\.\d{3}"
    r"(?:[ \t].*)?$"
)
_SRT_MARKUP_RE = re.compile(r"<[^>]*>|\{\\[^}]*\}")


def read_caption_file(path: Path) -> tuple[str, list[Cue]]:
    """The format (``vtt`` or ``srt``) and cues of a caption file; an :class:`InputError`
    (exit 2) with what is wrong when it is missing, unreadable or malformed."""
    if not path.is_file():
        raise InputError(
            f"caption file {str(path)!r} does not exist or is not a file",
            hint="give the path of a .vtt or .srt file",
        )
    try:
        size = path.stat().st_size
        if size > MAX_CAPTION_BYTES:
            raise MalformedDocumentError(
                f"{path} is {size} bytes, more than a caption file holds "
                f"({MAX_CAPTION_BYTES} at most)",
                hint="is it a caption file?",
            )
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MalformedDocumentError(
            f"{path} is not UTF-8 text (byte {exc.start})",
            hint="caption files are UTF-8; convert it, e.g. `iconv -f cp1252 -t utf-8`",
        ) from None
    return parse_captions(content, _format_hint(path), name=str(path))


def _format_hint(path: Path) -> str | None:
    suffix = path.suffix.lower()
    return suffix[1:] if suffix in (".vtt", ".srt") else None


def parse_captions(
    content: str, fmt: str | None = None, *, name: str = "captions"
) -> tuple[str, list[Cue]]:
    """The format and cues of caption text: WebVTT when it starts with ``WEBVTT`` (or
    ``fmt`` is ``vtt``), else SubRip. A :class:`MalformedDocumentError` says what is wrong."""
    content = content.removeprefix("\ufeff")
    if not content.strip():
        raise MalformedDocumentError(f"{name} is empty", hint="give a .vtt or .srt file")
    if re.match(r"WEBVTT(?:[ \t\r\n]|$)", content):
        return "vtt", _parse_vtt(content, name)
    if fmt == "vtt":
        raise MalformedDocumentError(
            f"{name} is not WebVTT: it does not start with WEBVTT",
            hint="a WebVTT file's first line is WEBVTT",
        )
    try:
        return "srt", _parse_srt(content)
    except (srt.SRTParseError, ValueError) as exc:
        kind = "not valid SubRip" if fmt == "srt" else "neither WebVTT nor SubRip"
        raise MalformedDocumentError(
            f"{name} is {kind}: {_srt_problem(exc, content)}",
            hint="each SubRip cue is a number, a `00:00:01,000 --> 00:00:02,500` line, "
            "its text and a blank line",
        ) from None


def _parse_vtt(content: str, name: str) -> list[Cue]:
    timings = 0
    for number, line in enumerate(content.splitlines(), start=1):
        if "-->" not in line:
            continue
        if not _VTT_TIMING_RE.match(line):
            raise MalformedDocumentError(
                f"{name} line {number}: not a WebVTT cue timing: {line.strip()[:80]!r}",
                hint="cue timings are `00:00:01.000 --> 00:00:02.500` (hours optional)",
            )
        timings += 1
    try:
        captions = webvtt.from_buffer(io.StringIO(content)).captions
    except (webvtt.errors.MalformedFileError, webvtt.errors.MalformedCaptionError) as exc:
        raise MalformedDocumentError(
            f"{name} is not valid WebVTT: {exc}", hint="see https://www.w3.org/TR/webvtt1/"
        ) from None
    if len(captions) != timings:
        raise MalformedDocumentError(
            f"{name}: {timings} cue timings but {len(captions)} readable cues",
            hint="every cue is a timing line followed by its text, cues apart by a blank line",
        )
    return [
        Cue(
            caption.start_time.in_milliseconds(),
            caption.end_time.in_milliseconds(),
            _lines(html.unescape(line) for line in caption.text.split("\n")),
        )
        for caption in captions
    ]


def _parse_srt(content: str) -> list[Cue]:
    return [
        Cue(
            _ms(subtitle.start.total_seconds()),
            _ms(subtitle.end.total_seconds()),
            _lines(_SRT_MARKUP_RE.sub("", line) for line in subtitle.content.split("\n")),
        )
        for subtitle in srt.parse(content)
    ]


def _lines(lines: Iterable[str]) -> tuple[str, ...]:
    """A cue's lines as shown: trailing blanks dropped, blank lines dropped."""
    return tuple(line.rstrip() for line in lines if line.strip())


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _srt_problem(exc: Exception, content: str) -> str:
    """Where SubRip parsing stopped, as a line number, instead of a character offset."""
    found = re.search(r"at char (\d+)", str(exc))
    if not found:
        return str(exc)
    offset = int(found.group(1))
    line = content.count("\n", 0, offset) + 1
    text = content[offset:].split("\n", 1)[0].strip()
    return f"line {line} is not where a cue should be: {text[:80]!r}"


# --- text -------------------------------------------------------------------------------------


def timestamp(ms: int) -> str:
    """``hh:mm:ss.ttt``."""
    sign = "-" if ms < 0 else ""
    seconds, millis = divmod(abs(ms), 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{sign}{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


def _with_unit(value: float, unit: str) -> str:
    shown = f"{value:g}" if isinstance(value, float) else str(value)
    return f"{shown} {unit}".rstrip()


def report_lines(name: str, report: CaptionReport) -> Sequence[str]:
    """The text ``narrate captions --check`` prints for one file."""
    if report.passed:
        return [f"{name}: passes {report.profile} ({report.cues} cues)"]
    broken = ", ".join(f"{rule} {count}" for rule, count in report.counts().items())
    lines = [
        f"{name}: FAILS {report.profile}: {report.failing_cues} of {report.cues} cues "
        f"break a rule ({broken})"
    ]
    for v in report.violations:
        text = " / ".join(v.lines)
        if len(text) > 60:
            text = text[:59] + "…"
        lines.append(
            f"  cue {v.cue:<5d} {timestamp(v.start_ms)} --> {timestamp(v.end_ms)}  "
            f"{v.label:18s} {v.shown:>14s}  {v.limit_text:18s} “{text}”"
        )
    return lines
