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

An opening delimiter without its closer is left as text. Markdown ingest already decided
what is maths (and marks it with ``\\(...\\)``/``\\[...\\]``), so Markdown text is
searched with ``dollars=False``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_MONEY_PROSE_RE = re.compile(r"\d[\d.,]*\s+[A-Za-z]{2,}\b")
_INLINE_CLOSE_RE = re.compile(r"(?<![\s\\])\$(?!\d)")


@dataclass(frozen=True)
class FoundFormula:
    """A formula in text: ``text[start:end]`` is the whole match, delimiters included."""

    start: int
    end: int
    source: str  # the LaTeX between the delimiters
    block: bool


def find_formulas(text: str, *, dollars: bool = True) -> list[FoundFormula]:
    """Every formula in ``text``, in order, never overlapping (see the module docstring)."""
    found: list[FoundFormula] = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n and text[i + 1] in "([":
            closer = "\\)" if text[i + 1] == "(" else "\\]"
            end = text.find(closer, i + 2)
            if end >= 0:
                found.append(FoundFormula(i, end + 2, text[i + 2 : end], text[i + 1] == "["))
                i = end + 2
                continue
            i += 2
            continue
        if c == "\\":
            i += 2  # an escaped character (\$ is a dollar sign, not a delimiter)
            continue
        if c == "$" and dollars:
            if text.startswith("$$", i):
                end = text.find("$$", i + 2)
                if end > i + 2:
                    found.append(FoundFormula(i, end + 2, text[i + 2 : end], True))
                    i = end + 2
                    continue
                i += 2
                continue
            match = _inline_dollar(text, i)
            if match is not None:
                found.append(match)
                i = match.end
                continue
        i += 1
    return found


def _inline_dollar(text: str, i: int) -> FoundFormula | None:
    if i + 1 >= len(text) or text[i + 1].isspace() or text[i + 1] == "$":
        return None
    close = _INLINE_CLOSE_RE.search(text, i + 1)
    if close is None:
        return None
    body = text[i + 1 : close.start()]
    if "$" in body or "\n\n" in body:
        return None
    if _MONEY_PROSE_RE.match(body):
        return None
    return FoundFormula(i, close.end(), body, False)


def strip_delimiters(source: str) -> tuple[str, bool]:
    """``"$$x$$"`` -> ``("x", True)``; text without delimiters comes back as it is."""
    s = source.strip()
    for opener, closer, block in (("$$", "$$", True), ("\\[", "\\]", True), ("\\(", "\\)", False)):
        if s.startswith(opener) and s.endswith(closer) and len(s) >= len(opener) + len(closer):
            return s[len(opener) : len(s) - len(closer)], block
    if len(s) >= 2 and s.startswith("$") and s.endswith("$"):
        return s[1:-1], False
    return s, False
