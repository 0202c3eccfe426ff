"""Worst-case formula shapes: every stage of a read stays within the issue's 250 ms of CPU.

A read is all of it, for one formula in a sentence: finding it, splitting off trailing
punctuation, parsing, speech, caption text, and building the segment's SSML with its
alias. Hypothesis generates deep nesting of every construct (fractions, roots, scripts,
``\\left...\\right``, environments, braces, fences, macros, ...), mixed nesting, long flat
rows, repeated macros, very long tokens and LaTeX-mark soup, up to the 4000-character
cap. CPU time is this thread's (``time.thread_time``) with the garbage collector paused,
as the reader itself runs: a collection of a large heap belongs to the process, not to
the formula.
"""

from __future__ import annotations

import re
import time

from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from ssml.annotate import annotate_block
from ssml.annotations import Sub
from ssml.build import build_blocks
from ssml.latex import (
    MAX_DEPTH,
    Budget,
    read_formula,
    split_trailing_punctuation,
)
from ssml.latex.budget import OutOfTime, gc_paused
from ssml.latex.find import find_formulas
from ssml.latex.worst import CHAINS, FLAT, WRAPPERS, capped, nested

READ_CPU_S = 0.25  # the budget for one formula, all stages
LATEX_MARKS = re.compile(r"[\\$^_{}]")

TOKENS = st.sampled_from(
    [
        "x",
        "1",
        "\\alpha",
        "+",
        "=",
        "\\leq",
        ",",
        "&",
        "\\\\",
        "^",
        "_",
        "{",
        "}",
        "(",
        ")",
        "[",
        "]",
        "|",
        "\\left(",
        "\\right)",
        "\\frac",
        "\\sqrt",
        "\\text{a}",
        "\\begin{matrix}",
        "\\end{matrix}",
        "$",
        "%",
        "~",
        "\\,",
        " ",
        "\\quad",
        "\\foo",
        "'",
    ]
)


def whole_read(source: str) -> tuple[float, list[Sub], str]:
    """CPU seconds to find, read and build SSML for ``source`` in a sentence."""
    text = f"Note \\({source}\\) here."
    with gc_paused():
        started = time.thread_time()
        found = find_formulas(text)
        shown, annotations = annotate_block(text)
        ssml = build_blocks([(shown, annotations)], pause_ms=500)
        elapsed = time.thread_time() - started
    assert found and found[0].source == source  # the whole formula was found
    return elapsed, [a for a in annotations if isinstance(a, Sub)], ssml


def check_read(source: str) -> None:
    elapsed, subs, ssml = whole_read(source)
    assert elapsed <= READ_CPU_S, f"{elapsed * 1000:.0f} ms of CPU for {source[:80]!r}"
    formulas = [s.formula for s in subs if s.formula is not None]
    assert len(formulas) == 1
    formula = formulas[0]
    assert not LATEX_MARKS.search(formula.spoken), formula.spoken[:200]
    assert formula.display and not LATEX_MARKS.search(formula.display), formula.display[:200]
    root = etree.fromstring(ssml.encode())
    aliases = [el.get("alias") or "" for el in root.iter("sub")]
    assert not any(LATEX_MARKS.search(alias) for alias in aliases)
    assert not LATEX_MARKS.search("".join(root.itertext()))


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sorted(WRAPPERS)), st.integers(min_value=1, max_value=400))
def test_deep_nesting_of_one_construct(construct: str, depth: int) -> None:
    check_read(capped(nested([construct] * depth)))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(sorted(WRAPPERS)), min_size=1, max_size=150))
def test_deep_nesting_of_mixed_constructs(wrappers: list[str]) -> None:
    check_read(capped(nested(wrappers)))


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(sorted(CHAINS)), st.integers(min_value=1, max_value=2000))
def test_chains_that_nest_without_braces(chain: str, count: int) -> None:
    check_read(capped(CHAINS[chain] * count + "x"))


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(sorted(FLAT)), st.integers(min_value=1, max_value=900))
def test_long_flat_formulas_repeated_macros_and_long_tokens(shape: str, size: int) -> None:
    check_read(capped(FLAT[shape](size)))


@settings(max_examples=40, deadline=None)
@given(st.lists(TOKENS, min_size=1, max_size=1200))
def test_soup_of_latex_marks(tokens: list[str]) -> None:
    source = capped("".join(tokens)).strip()
    check_read(source or "x")


def test_depth_cap_reads_the_outer_levels_and_warns() -> None:
    formula = read_formula("\\frac{" * 60 + "x" + "}{2}" * 60)
    assert formula.spoken.startswith("the fraction with numerator " * 5)
    assert "and so on" in formula.spoken or formula.spoken.endswith(", and so on")
    assert formula.display.startswith("((((")
    assert formula.display.count("/2") == MAX_DEPTH - 1
    assert "…" in formula.display
    assert any(
        f"nested too deeply (more than {MAX_DEPTH} levels)" in w and "outer levels are read" in w
        for w in formula.warnings
    )
    shallow = read_formula("\\frac{" * 10 + "x" + "}{2}" * 10)
    assert not shallow.warnings and "…" not in shallow.display


def test_depth_cap_keeps_what_follows_the_deep_part() -> None:
    formula = read_formula("{" * 100 + "x" + "}" * 100 + " + y = 1")
    assert formula.spoken == "and so on plus y equals 1"
    assert formula.display == "… + y = 1"
    parens = read_formula("(" * 300 + "x" + ")" * 300 + " = 1")
    assert parens.spoken.endswith("equals 1")
    assert any("nested too deeply" in w for w in parens.warnings)


class _Countdown(Budget):
    """A budget that runs out after ``ticks`` steps (deterministic, unlike a clock)."""

    def __init__(self, ticks: int | None) -> None:
        super().__init__(3600)
        self.ticks = ticks
        self.used = 0

    def tick(self) -> None:
        self.used += 1
        if self.ticks is not None and self.used > self.ticks:
            raise OutOfTime


def test_a_stage_out_of_budget_falls_back_to_the_words() -> None:
    source = "\\frac{a^2 + b^2}{\\sqrt{c}} = \\sum_{i=1}^{n} x_i"
    counter = _Countdown(None)
    full = read_formula(source, budget=counter)
    assert full.warnings == ()
    assert full.spoken.startswith("the fraction with numerator a squared plus b squared")
    words = "frac a 2 b 2 sqrt c sum i 1 n x i"
    stages = set()
    for ticks in range(counter.used):
        formula = read_formula(source, budget=_Countdown(ticks))
        assert formula.warnings == (
            "the formula took too long to read; its words are read instead",
        )
        assert formula.spoken in (words, full.spoken)
        assert formula.display in ("frac a 2 + b 2 sqrt c = sum i=1 n x i", full.display)
        stages.add((formula.spoken == full.spoken, formula.display == full.display))
    assert stages == {(False, False), (True, False)}  # out in speech, out in the caption


def test_a_parse_out_of_budget_keeps_what_it_read() -> None:
    formula = read_formula(" + ".join(f"x_{{{k}}}" for k in range(300)), time_budget_s=0)
    assert "the formula took too long to read; the rest is left out" in formula.warnings
    assert not LATEX_MARKS.search(formula.spoken) and formula.spoken


def test_trailing_punctuation_split_is_linear_on_long_spacing() -> None:
    # a regular expression did this in minutes (cubic backtracking on 4000 spaces)
    for spacing in (" ", "\\,", "~", "\\quad "):
        head = "x" + spacing * 800 + "y"
        source = head + spacing * 800 + "." + spacing * 5
        started = time.thread_time()
        assert split_trailing_punctuation(source) == (head, ".")
        assert time.thread_time() - started < READ_CPU_S
