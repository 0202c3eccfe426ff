"""Finding formulas in text without taking prices for maths."""

from __future__ import annotations

import pytest

from ssml.latex.find import FoundFormula, find_formulas, strip_delimiters


def sources(text: str, **kw: bool) -> list[tuple[str, bool]]:
    return [(f.source, f.block) for f in find_formulas(text, **kw)]


@pytest.mark.parametrize(
    "text",
    [
        "It costs $5.",
        "It costs $5 and $10 today.",
        "Prices: $5, $10 and $20.",
        "Between $5 and 10$ a day.",
        "Pay $ 5 now $ or later.",
        "Escaped \\$x\\$ is money.",
        "A lone $ sign.",
        "Costs $3.50 (or $4).",
    ],
)
def test_prices_are_not_formulas(text: str) -> None:
    assert find_formulas(text) == []


def test_every_delimiter() -> None:
    text = r"A $x^2$ and $$\frac{1}{2}$$ and \(y\) and \[z = 1\] end."
    assert sources(text) == [("x^2", False), (r"\frac{1}{2}", True), ("y", False), ("z = 1", True)]
    found = find_formulas(text)
    assert text[found[0].start : found[0].end] == "$x^2$"


def test_markdown_text_is_not_searched_for_dollars() -> None:
    assert sources(r"Cost $x$ and \(y\).", dollars=False) == [("y", False)]


def test_multiline_display_maths() -> None:
    assert sources("$$\n\\begin{bmatrix}1\\\\2\\end{bmatrix}\n$$") == [
        ("\n\\begin{bmatrix}1\\\\2\\end{bmatrix}\n", True)
    ]


def test_unclosed_delimiters_are_text_but_a_lone_double_dollar_is_marked() -> None:
    assert find_formulas(r"an \( open and \[ open") == []
    assert find_formulas(r"an \( open and $$ open") == [FoundFormula(15, 17, "", True, True)]


def test_empty_formulas_are_found_empty() -> None:
    text = "a $$$$ b \\(\\) c $$x$$"
    assert [(f.source, f.block, f.unmatched) for f in find_formulas(text)] == [
        ("", True, False),
        ("", False, False),
        ("x", True, False),
    ]


def test_a_latex_line_break_before_the_closer_is_not_the_closer() -> None:
    assert sources(r"\(a \\) b\) c") == [(r"a \\) b", False)]


def test_strip_delimiters() -> None:
    assert strip_delimiters("$$x$$") == ("x", True)
    assert strip_delimiters(r"\(y\)") == ("y", False)
    assert strip_delimiters("$z$") == ("z", False)
    assert strip_delimiters("w") == ("w", False)
