"""LaTeX formulas read aloud: find them in text, speak them, show them in captions.

Public API:

* :func:`read_formula` turns one formula (LaTeX without its delimiters) into a
  :class:`Formula`: the source, the caption ``display`` text (readable Unicode maths,
  ``x² + y² = z²``), the ``spoken`` English ("x squared plus y squared equals z
  squared") and the ``warnings`` met on the way. It never raises and never returns
  LaTeX in ``display`` or ``spoken``.
* :func:`ssml.latex.find.find_formulas` finds ``$...$``, ``$$...$$``, ``\\(...\\)`` and
  ``\\[...\\]`` in text without taking prices ("$5 and $10") for formulas.
* :func:`ssml.latex.mathml.mathml_to_latex` turns MathML into LaTeX for the same path.

Limits (graceful, with a warning): a formula longer than :data:`MAX_FORMULA_CHARS`
characters is not parsed ("a formula too long to read aloud"); parsing and reading
stop after :data:`TIME_BUDGET_S` seconds of CPU time; a spoken form longer than
:data:`MAX_SPOKEN_CHARS` is cut at a word and ends "and so on".
"""

from __future__ import annotations

import gc
import re
import time
from dataclasses import dataclass

from ssml.latex.display import display as _display
from ssml.latex.nodes import Row
from ssml.latex.parse import parse_latex
from ssml.latex.speech import speak as _speak
from ssml.latex.speech import tidy

MAX_FORMULA_CHARS = 4000
MAX_SPOKEN_CHARS = 1500
MAX_DISPLAY_CHARS = 600
TIME_BUDGET_S = 0.25

_COMMAND_RE = re.compile(r"\\([A-Za-z]+)")
_TRAILING_RE = re.compile(r"(?:\s|\\[,;:! ]|\\q?quad\b|~)*([.,;:]?)(?:\s|\\[,;:! ]|\\q?quad\b|~)*$")


@dataclass(frozen=True)
class Formula:
    """One formula: as written, as shown in captions, and as spoken."""

    source: str  # LaTeX without delimiters, e.g. "x^2 + y^2"
    display: str  # caption text, e.g. "x² + y²"
    spoken: str  # what the engine says, e.g. "x squared plus y squared"
    block: bool = False  # a display formula ($$...$$, \[...\])
    warnings: tuple[str, ...] = ()


def split_trailing_punctuation(source: str) -> tuple[str, str]:
    """``"x = 1."`` -> ``("x = 1", ".")``: sentence punctuation written inside a formula."""
    m = _TRAILING_RE.search(source)
    if not m or m.start() == 0:
        return source, ""
    return source[: m.start()], m.group(1)


def read_formula(
    source: str, *, block: bool = False, time_budget_s: float = TIME_BUDGET_S
) -> Formula:
    """Read one formula (see the module docstring); never raises."""
    source = source.strip()
    if len(source) > MAX_FORMULA_CHARS:
        return Formula(
            source,
            "[formula]",
            "a formula too long to read aloud",
            block,
            (f"formula of {len(source)} characters is longer than {MAX_FORMULA_CHARS}",),
        )
    warnings: list[str] = []
    try:
        tree, parse_warnings = _parse_within(source, time_budget_s)
        warnings.extend(parse_warnings)
        spoken, speech_warnings = _speak(tree)
        warnings.extend(speech_warnings)
        shown = _display(tree)
    except (RecursionError, ValueError, IndexError, KeyError, AttributeError, TypeError) as exc:
        warnings.append(f"could not read the formula ({type(exc).__name__}); read its words")
        spoken = fallback_speech(source)
        shown = fallback_display(source)
    if not spoken and source:
        spoken = fallback_speech(source)
    if len(spoken) > MAX_SPOKEN_CHARS:
        cut = spoken.rfind(" ", 0, MAX_SPOKEN_CHARS)
        spoken = spoken[: cut if cut > 0 else MAX_SPOKEN_CHARS].rstrip(",; ") + ", and so on"
        warnings.append("the spoken formula was too long and was cut")
    if len(shown) > MAX_DISPLAY_CHARS:
        shown = shown[:MAX_DISPLAY_CHARS].rstrip() + "…"
    return Formula(source, shown or fallback_display(source), spoken, block, tuple(warnings))


def _parse_within(source: str, budget_s: float) -> tuple[Row, list[str]]:
    """Parse with a budget of this thread's CPU time, with the garbage collector paused:
    a full collection of a large heap (a long-lived worker, a long test run) took over
    250 ms inside one parse and made a plain 300-term sum "too complex to read". What a
    formula reads as must depend on the formula, not on the process's state or load."""
    paused = gc.isenabled()
    gc.disable()
    try:
        return parse_latex(source, deadline=time.thread_time() + budget_s)
    finally:
        if paused:
            gc.enable()


def fallback_speech(source: str) -> str:
    """Last resort: the words of a formula with every LaTeX mark taken out."""
    text = _COMMAND_RE.sub(lambda m: " " + m.group(1) + " ", source)
    return tidy(re.sub(r"[\\{}^_$&%#~]", " ", text))


def fallback_display(source: str) -> str:
    """Last resort caption text: the source without LaTeX marks."""
    text = _COMMAND_RE.sub(lambda m: m.group(1), source)
    return " ".join(re.sub(r"[\\{}^_$&%#~]", " ", text).split()) or "[formula]"


__all__ = [
    "MAX_FORMULA_CHARS",
    "MAX_SPOKEN_CHARS",
    "TIME_BUDGET_S",
    "Formula",
    "read_formula",
    "split_trailing_punctuation",
]
