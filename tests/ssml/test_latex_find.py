"""Finding formulas in text without taking prices for maths."""

from __future__ import annotations

import pytest

from ssml.latex.find import find_formulas, strip_delimiters


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


def test_unclosed_delimiters_are_text() -> None:
    assert find_formulas(r"an \( open and $$ open") == []


def test_strip_delimiters() -> None:
    assert strip_delimiters("$$x$$") == ("x", True)
    assert strip_delimiters(r"\(y\)") == ("y", False)
    assert strip_delimiters("$z$") == ("z", False)
    assert strip_delimiters("w") == ("w", False)
