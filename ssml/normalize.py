"""Pure text clean-up for speech: typography, invisible characters, footnote markers.

Everything here is a pure function of its arguments. Ingest runs :func:`normalize_text`
over every paragraph and title, and :func:`chapter_heading` over every chapter title.

Choices made by :func:`normalize_text` (in the order they are applied):

* **Invisible characters are deleted:** U+2060 WORD JOINER, U+200B ZERO WIDTH SPACE,
  U+200C ZWNJ, U+200D ZWJ, U+FEFF BOM / ZWNBSP and U+00AD SOFT HYPHEN.
* **Latin-typography spaces become an ordinary space:** U+00A0 NO-BREAK SPACE,
  U+2000-U+200A (en quad ... hair space), U+202F NARROW NO-BREAK SPACE and U+205F MEDIUM
  MATHEMATICAL SPACE. U+3000 IDEOGRAPHIC SPACE is left alone (it belongs to CJK text).
* **Footnote markers are deleted:** superscript digits (``¹²³⁰⁴⁵⁶⁷⁸⁹``, wherever they
  occur, so ``m²`` loses its ``²`` too), bracketed numbers glued to the preceding word or
  punctuation (``word[12]`` but not ``see [12]``), and ``*``/``†``/``‡`` glued to the end
  of a word (``word*``, ``end.†``). Before that, a plain-text emphasis pair ``*word*`` is
  unwrapped to ``word``.
* **Dashes:** an em dash (U+2014) or horizontal bar (U+2015), or a run of them, becomes
  ``" — "`` (the em dash with one space on each side) so word boundaries stay clear -
  except that no space is put between the dash and a closing quote/bracket/punctuation
  that follows it, or an opening quote/bracket that precedes it. An en dash (U+2013)
  with spaces around it is used as a dash and becomes ``" — "`` too; any other en dash
  (``1914–1918``, ``London–Paris``) becomes an ASCII hyphen ``-``.
* **Quotes:** ``‘ ’ ‚ ‛ ‹ ›`` become ``'`` and ``“ ” „ ‟ « »`` become ``"`` (and ``…``
  becomes ``...``), except next to Chinese or Japanese text, where they are kept.
* **Ellipsis:** ``…`` becomes ``...``.
* **Whitespace:** every run of whitespace (including newlines and tabs, but not U+3000)
  collapses to one space, and the result is stripped.

Chinese/Japanese full-width punctuation (``，。：？；！、《》`` and U+3000) is not touched.
"""

from __future__ import annotations

import re

from ssml.latex.find import find_formulas
from ssml.numbers import TENS_WORDS, UNIT_WORDS

_INVISIBLE = dict.fromkeys(map(ord, "\u2060\u200b\u200c\u200d\ufeff\u00ad"), None)
_SPACES = {
    **dict.fromkeys(range(0x2000, 0x200B), " "),
    0x00A0: " ",
    0x202F: " ",
    0x205F: " ",
}
_QUOTES = {
    **dict.fromkeys(map(ord, "‘’‚‛‹›"), "'"),
    **dict.fromkeys(map(ord, "“”„‟«»"), '"'),
}
_TYPOGRAPHY_RE = re.compile("[‘’‚‛‹›“”„‟«»…]")
_SUPERSCRIPT_DIGITS = "¹²³⁰⁴⁵⁶⁷⁸⁹"

_EMPHASIS_PAIR_RE = re.compile(r"(?<![\w*])\*(?=[^\s*])([^*\n]*?[^\s*])\*(?![\w*])")
_SUPERSCRIPT_RE = re.compile(f"[{_SUPERSCRIPT_DIGITS}]+")
_BRACKET_NOTE_RE = re.compile(r"(?<=[\w.,;:!?\"')\]”’])\[\d{1,3}\]")
_GLUED_MARK_RE = re.compile(r"(?<=[\w.,;:!?\"')”’])[*†‡]+(?=[\s.,;:!?\"')”’]|$)")
_EM_DASH_RE = re.compile(r"\s*[\u2014\u2015]+\s*")
_SPACED_EN_DASH_RE = re.compile(r"(?:^|\s)\u2013(?:\s|$)")
_DASH_BEFORE_CLOSER_RE = re.compile(r" — (?=[”’»)\]},.;:!?]|$)")
_DASH_AFTER_OPENER_RE = re.compile(r"(?<=[“‘«(\[{]) — ")
_WHITESPACE_RE = re.compile(r"[^\S\u3000]+")


def normalize_text(s: str) -> str:
    """Return ``s`` cleaned up for speech (see the module docstring for every rule).

    Formulas (``\\(...\\)``, ``\\[...\\]``, ``$...$``) are left as written but for
    their LaTeX comments and line breaks: a footnote rule must not take ``[1]`` out of
    ``x[1] + y^2``, nor a quote rule touch a prime.
    """
    s = s.translate(_INVISIBLE).translate(_SPACES)
    formulas = find_formulas(s)
    if not formulas:
        return _normalize_prose(s)
    out: list[str] = []
    done = 0
    for formula in formulas:
        out.append(_normalize_prose(s[done : formula.start], strip=False))
        out.append(_one_line(s[formula.start : formula.end]))
        done = formula.end
    out.append(_normalize_prose(s[done:], strip=False))
    return _WHITESPACE_RE.sub(" ", "".join(out)).strip()


def _normalize_prose(s: str, *, strip: bool = True) -> str:
    s = _WHITESPACE_RE.sub(" ", s)  # first, so no rule below meets a long whitespace run
    s = _remove_footnote_markers(s)
    s = _normalize_dashes(s)
    s = _TYPOGRAPHY_RE.sub(_ascii_typography, s)
    s = _WHITESPACE_RE.sub(" ", s)
    return s.strip() if strip else s


_LATEX_COMMENT_RE = re.compile(r"(?<!\\)%[^\n]*")


def _one_line(formula: str) -> str:
    """A formula on one line: its ``%`` comments (to the end of their line) go first."""
    return _WHITESPACE_RE.sub(" ", _LATEX_COMMENT_RE.sub("", formula))


def _ascii_typography(match: re.Match[str]) -> str:
    """Curly quotes and … as ASCII, except beside Chinese/Japanese text, where they stay."""
    text, at = match.string, match.start()
    neighbours = text[at - 1 : at] + text[at + 1 : at + 2]
    if any(_is_cjk(ch) for ch in neighbours):
        return match.group()
    char = match.group()
    return "..." if char == "…" else _QUOTES[ord(char)]


def _is_cjk(char: str) -> bool:
    code = ord(char)
    return (
        0x2E80 <= code <= 0x9FFF  # radicals, CJK punctuation, kana, unified ideographs
        or 0xF900 <= code <= 0xFAFF  # compatibility ideographs
        or 0xFF00 <= code <= 0xFFEF  # full-width forms
        or code >= 0x20000  # extension B and later
    )


def _remove_footnote_markers(s: str) -> str:
    s = _EMPHASIS_PAIR_RE.sub(r"\1", s)
    s = _SUPERSCRIPT_RE.sub("", s)
    s = _BRACKET_NOTE_RE.sub("", s)
    return _GLUED_MARK_RE.sub("", s)


def _normalize_dashes(s: str) -> str:
    s = _SPACED_EN_DASH_RE.sub(" — ", s)
    s = s.replace("\u2013", "-")
    s = _EM_DASH_RE.sub(" — ", s)
    s = _DASH_BEFORE_CLOSER_RE.sub(" —", s)
    return _DASH_AFTER_OPENER_RE.sub("— ", s)


# --- numbers and chapter headings -----------------------------------------------------

_ROMAN_RE = re.compile(r"M{0,3}(CM|CD|D?C{0,3})(XC|XL|L?X{0,3})(IX|IV|V?I{0,3})")
_ROMAN_VALUES = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}

NUMBER_WORDS: dict[str, int] = {w: i for i, w in enumerate(UNIT_WORDS) if i} | {
    w: 10 * i for i, w in enumerate(TENS_WORDS) if w
}

#: A number as chapter titles write it: arabic, Roman (any case) or English words.
NUMBER_PATTERN = r"\d{1,4}|[IVXLCDMivxlcdm]+|[A-Za-z]+(?:[- ][A-Za-z]+)?"
_LABELLED_RE = re.compile(
    rf"(?P<label>chapter|part|book|section|volume)\s+(?P<num>{NUMBER_PATTERN})\.?"
    r"(?:\s*[:.\u2014\u2013-]\s*(?P<rest>\S.*))?",
    re.IGNORECASE,
)
_BARE_ARABIC_RE = re.compile(r"(\d{1,4})\.?")
_BARE_ROMAN_MAX = 399  # "MIX", "DC", "CD" ... are more likely words than chapter numbers


def roman_to_int(s: str) -> int | None:
    """The value of a canonical Roman numeral (any case), or None if ``s`` is not one."""
    up = s.upper()
    if not up or not _ROMAN_RE.fullmatch(up):
        return None
    total = 0
    for ch, nxt in zip(up, [*up[1:], ""], strict=True):
        value = _ROMAN_VALUES[ch]
        total += -value if nxt and _ROMAN_VALUES[nxt] > value else value
    return total


def words_to_int(s: str) -> int | None:
    """The value of an English number word from one to ninety-nine, or None."""
    parts = re.split(r"[- ]", s.lower())
    if len(parts) == 1:
        return NUMBER_WORDS.get(parts[0])
    tens, unit = NUMBER_WORDS.get(parts[0]), NUMBER_WORDS.get(parts[1])
    if len(parts) == 2 and tens and unit and tens >= 20 and tens % 10 == 0 and unit < 10:
        return tens + unit
    return None


def parse_number(s: str) -> int | None:
    """The value of an arabic, Roman or English-word number, or None."""
    if s.isdigit():
        return int(s)
    return roman_to_int(s) if roman_to_int(s) else words_to_int(s)


def chapter_heading(title: str) -> str:
    """What to speak before a chapter's body, given its display title.

    A title that is only a number (``"IV"``, ``"12."``) becomes ``"Chapter 4"``;
    ``"Chapter IV"``/``"CHAPTER IV."`` become ``"Chapter 4"``; ``"Chapter IV: The Sphinx"``
    becomes ``"Chapter 4: The Sphinx"`` (likewise for Part/Book/Section/Volume and for
    English number words). Any other title is spoken as it is.
    """
    t = normalize_text(title)
    bare = _BARE_ARABIC_RE.fullmatch(t)
    if bare:
        return f"Chapter {int(bare.group(1))}"
    roman = t.rstrip(".")
    value = roman_to_int(roman) if roman.isupper() else None
    if value and value <= _BARE_ROMAN_MAX:
        return f"Chapter {value}"
    labelled = _LABELLED_RE.fullmatch(t)
    if labelled:
        number = parse_number(labelled.group("num"))
        if number:
            head = f"{labelled.group('label').capitalize()} {number}"
            rest = labelled.group("rest")
            return f"{head}: {rest}" if rest else head
    return t
