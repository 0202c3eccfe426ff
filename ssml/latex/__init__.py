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

Limits (graceful, with a warning; :func:`read_formula` never hangs and never raises):

* Every stage (parse, speech, caption text, the checks of the alias) is about linear in
  the formula's size whatever its shape, and all of them share **one** budget of
  :data:`TIME_BUDGET_S` seconds of this thread's CPU time
  (:class:`~ssml.latex.budget.Budget`), with the garbage collector paused. The caller
  may start the budget earlier and pass it in (:mod:`ssml.annotate` does, so that
  splitting off trailing punctuation counts too). A parse that runs out keeps what it
  has read ("the rest is left out"); a speech or caption stage that runs out falls back
  to the formula's words with the LaTeX marks taken out. The budget leaves room for the
  fallback and for checking the clock every few nodes, so a whole read stays within
  250 ms.
* Nesting deeper than :data:`~ssml.latex.parse.MAX_DEPTH` levels (fractions, roots,
  scripts, ``\\left...\\right``, environments, braces, fences, macro bodies) is read to
  that depth and the inside is said as "and so on", with a warning that says so.
* A formula longer than :data:`MAX_FORMULA_CHARS` characters is not parsed ("a formula
  too long to read aloud"); a spoken form longer than :data:`MAX_SPOKEN_CHARS` is cut at
  a word and ends "and so on"; caption text is cut at :data:`MAX_DISPLAY_CHARS`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ssml.latex.budget import Budget, OutOfTime, gc_paused
from ssml.latex.display import display as _display
from ssml.latex.parse import MAX_DEPTH, parse_latex
from ssml.latex.speech import speak as _speak
from ssml.latex.speech import tidy

MAX_FORMULA_CHARS = 4000
MAX_SPOKEN_CHARS = 1500
MAX_DISPLAY_CHARS = 600
#: CPU seconds for all the stages of one formula; 50 ms short of the 250 ms a read may
#: take, for the fallback and the clock being read every few nodes
TIME_BUDGET_S = 0.2
_OUT_OF_TIME = "the formula took too long to read; its words are read instead"

_COMMAND_RE = re.compile(r"\\([A-Za-z]+)")
_MARKS_RE = re.compile(r"[\\{}^_$&%#~]")


@dataclass(frozen=True)
class Formula:
    """One formula: as written, as shown in captions, and as spoken."""

    source: str  # LaTeX without delimiters, e.g. "x^2 + y^2"
    display: str  # caption text, e.g. "x² + y²"
    spoken: str  # what the engine says, e.g. "x squared plus y squared"
    block: bool = False  # a display formula ($$...$$, \[...\])
    warnings: tuple[str, ...] = ()


def split_trailing_punctuation(source: str) -> tuple[str, str]:
    """``"x = 1."`` -> ``("x = 1", ".")``: sentence punctuation written inside a formula.

    The tail taken off is spacing (white space, ``~``, ``\\,`` ``\\;`` ``\\:`` ``\\!``
    ``\\ ``, ``\\quad``, ``\\qquad``), at most one of ``. , ; :``, and spacing again. One
    backward scan: a regular expression for this backtracks cubically on long runs of
    spaces (4000 spaces: minutes).
    """
    end = _before_spacing(source, len(source))
    punctuation = ""
    if end > 0 and source[end - 1] in ".,;:":
        punctuation = source[end - 1]
        end = _before_spacing(source, end - 1)
    if end == 0:
        return source, ""
    return source[:end], punctuation


def _before_spacing(source: str, end: int) -> int:
    """Where the run of LaTeX spacing that ends at ``end`` starts."""
    while end > 0:
        c = source[end - 1]
        if c in ",;:! " and end >= 2 and source[end - 2] == "\\":
            end -= 2
        elif c.isspace() or c == "~":
            end -= 1
        elif source.endswith("\\qquad", 0, end):
            end -= 6
        elif source.endswith("\\quad", 0, end):
            end -= 5
        else:
            break
    return end


def read_formula(
    source: str,
    *,
    block: bool = False,
    time_budget_s: float = TIME_BUDGET_S,
    budget: Budget | None = None,
) -> Formula:
    """Read one formula (see the module docstring); never raises.

    ``budget`` is the formula's CPU budget when the caller started it already; otherwise
    one of ``time_budget_s`` seconds starts now.
    """
    with gc_paused():
        return _read(source, block, budget if budget is not None else Budget(time_budget_s))


def _read(source: str, block: bool, budget: Budget) -> Formula:
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
    spoken = shown = None
    try:
        tree, parse_warnings = parse_latex(source, budget=budget)
        warnings.extend(parse_warnings)
        spoken, speech_warnings = _speak(tree, budget)
        warnings.extend(w for w in speech_warnings if w not in warnings)
        shown = _display(tree, budget)
    except OutOfTime:
        if _OUT_OF_TIME not in warnings:
            warnings.append(_OUT_OF_TIME)
    except (RecursionError, ValueError, IndexError, KeyError, AttributeError, TypeError) as exc:
        warnings.append(f"could not read the formula ({type(exc).__name__}); read its words")
    if spoken is None:
        spoken = fallback_speech(source)
    if shown is None:
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


def fallback_speech(source: str) -> str:
    """Last resort: the words of a formula with every LaTeX mark taken out (linear)."""
    text = _COMMAND_RE.sub(lambda m: " " + m.group(1) + " ", source[: 2 * MAX_SPOKEN_CHARS])
    return tidy(_MARKS_RE.sub(" ", text))


def fallback_display(source: str) -> str:
    """Last resort caption text: the source without LaTeX marks (linear)."""
    text = _COMMAND_RE.sub(lambda m: m.group(1), source[: 2 * MAX_DISPLAY_CHARS])
    return " ".join(_MARKS_RE.sub(" ", text).split()) or "[formula]"


__all__ = [
    "MAX_DEPTH",
    "MAX_DISPLAY_CHARS",
    "MAX_FORMULA_CHARS",
    "MAX_SPOKEN_CHARS",
    "TIME_BUDGET_S",
    "Budget",
    "Formula",
    "read_formula",
    "split_trailing_punctuation",
]
