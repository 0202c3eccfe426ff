"""Find LaTeX formulas in running text, without taking prices for formulas.

Delimiters, tried at each position in this order:

* ``$$...$$`` and ``\\[...\\]``: display formulas (may span lines).
* ``\\(...\\)``: an inline formula.
* ``$...$`` (only when ``dollars`` is true): an inline formula, with Pandoc's rules so
  that money is left alone: the opening ``$`` is not followed by a space, the closing
  ``$`` is not preceded by a space and not followed by a digit, and neither is
  escaped (``\\$``). "It costs $5 and $10" therefore holds no formula. On top of
  Pandoc, a would-be formula that starts with an amount followed by an ordinary word
  ("$5 and 10$") is not taken either.

An empty formula (``$$$$``, ``\\(\\)``) is found with an empty ``source``, and a ``$$``
without a closing ``$$`` is found as ``unmatched``: the annotation stage drops both
from the text with a warning, so neither is read as "dollar dollar". Any other
opening delimiter without its closer (``\\(``, ``\\[``, a lone ``$``) is left as text.
Markdown ingest already decided what is maths (and marks it with ``\\(...\\)``/
``\\[...\\]``, with every literal backslash doubled), so Markdown text is searched with
``dollars=False``.

Linear time: the scan jumps from one ``\\`` or ``$`` to the next; a closer is searched
for once (a closer found missing after one position is missing after every later one);
an inline ``$`` looks only as far as the next ``$`` (a formula never holds one).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_MONEY_PROSE_RE = re.compile(r"\d[\d.,]*\s+[A-Za-z]{2,}\b")
_MARKS = {True: re.compile(r"[\\$]"), False: re.compile(r"\\")}


@dataclass(frozen=True)
class FoundFormula:
    """A formula in text: ``text[start:end]`` is the whole match, delimiters included."""

    start: int
    end: int
    source: str  # the LaTeX between the delimiters
    block: bool
    unmatched: bool = False  # a "$$" that opens no formula (source is empty)


def find_formulas(text: str, *, dollars: bool = True) -> list[FoundFormula]:
    """Every formula in ``text``, in order, never overlapping (see the module docstring)."""
    found: list[FoundFormula] = []
    missing: set[str] = set()  # closers known to be absent from the rest of the text
    marks = _MARKS[dollars]
    n = len(text)
    i = 0
    while (mark := marks.search(text, i)) is not None:
        i = mark.start()
        if text[i] == "\\":
            if i + 1 < n and text[i + 1] in "([":
                closer = "\\)" if text[i + 1] == "(" else "\\]"
                end = -1 if closer in missing else _latex_closer(text, i + 2, closer)
                if end >= 0:
                    found.append(FoundFormula(i, end + 2, text[i + 2 : end], text[i + 1] == "["))
                    i = end + 2
                    continue
                missing.add(closer)
            i += 2  # an escaped character (\$ is a dollar sign, not a delimiter)
            continue
        if text.startswith("$$", i):
            end = -1 if "$$" in missing else text.find("$$", i + 2)
            if end >= 0:
                found.append(FoundFormula(i, end + 2, text[i + 2 : end], True))
                i = end + 2
                continue
            missing.add("$$")
            found.append(FoundFormula(i, i + 2, "", True, unmatched=True))
            i += 2
            continue
        match = _inline_dollar(text, i)
        if match is not None:
            found.append(match)
            i = match.end
            continue
        i += 1
    return found


def _latex_closer(text: str, start: int, closer: str) -> int:
    """Where ``closer`` (``\\)`` or ``\\]``) is, reading ``\\x`` pairs as one token; or -1."""
    while (k := text.find("\\", start)) >= 0:
        if text.startswith(closer, k):
            return k
        start = k + 2
    return -1


def _inline_dollar(text: str, i: int) -> FoundFormula | None:
    """Pandoc's ``$...$``: the closer is the next ``$``, or there is no formula here."""
    if i + 1 >= len(text) or text[i + 1].isspace() or text[i + 1] == "$":
        return None
    close = text.find("$", i + 1)
    if close < 0 or text[close - 1] in "\\" or text[close - 1].isspace():
        return None
    if close + 1 < len(text) and text[close + 1].isdigit():
        return None
    body = text[i + 1 : close]
    if "\n\n" in body or _MONEY_PROSE_RE.match(body):
        return None
    return FoundFormula(i, close + 1, body, False)


def strip_delimiters(source: str) -> tuple[str, bool]:
    """``"$$x$$"`` -> ``("x", True)``; text without delimiters comes back as it is."""
    s = source.strip()
    for opener, closer, block in (("$$", "$$", True), ("\\[", "\\]", True), ("\\(", "\\)", False)):
        if s.startswith(opener) and s.endswith(closer) and len(s) >= len(opener) + len(closer):
            return s[len(opener) : len(s) - len(closer)], block
    if len(s) >= 2 and s.startswith("$") and s.endswith("$"):
        return s[1:-1], False
    return s, False
