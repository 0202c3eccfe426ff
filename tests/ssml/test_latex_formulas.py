"""The formula corpus: each formula read as a teacher would, shown as Unicode maths."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from ssml.latex import MAX_FORMULA_CHARS, read_formula, split_trailing_punctuation

DATA = Path(__file__).resolve().parent / "data" / "formulas.tsv"
LATEX_MARKS = re.compile(r"[\\$^_{}]")


def _corpus() -> list[tuple[str, str, str, str | None]]:
    rows = []
    for line in DATA.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        rows.append((parts[0], parts[1], parts[2], parts[3] if len(parts) > 3 else None))
    return rows


CORPUS = _corpus()


def test_the_corpus_is_large_and_covers_school_to_university() -> None:
    assert len(CORPUS) >= 150
    categories = {row[0] for row in CORPUS}
    for wanted in (
        "fractions",
        "roots",
        "powers",
        "indices",
        "greek",
        "functions",
        "trig",
        "logs",
        "limits",
        "sums",
        "products",
        "integrals",
        "derivatives",
        "partials",
        "vectors",
        "matrices",
        "sets",
        "logic",
        "inequalities",
        "probability",
        "units",
        "chemistry",
    ):
        assert wanted in categories


@pytest.mark.parametrize(
    ("category", "tex", "spoken", "display"), CORPUS, ids=[r[1] for r in CORPUS]
)
def test_formula_is_read_as_a_teacher_would(
    category: str, tex: str, spoken: str, display: str | None
) -> None:
    formula = read_formula(tex)
    assert formula.spoken == spoken
    if display is not None:
        assert formula.display == display
    assert not LATEX_MARKS.search(formula.spoken)
    assert not LATEX_MARKS.search(formula.display)
    assert formula.warnings == ()


MALFORMED = [
    r"\frac{1}{",
    r"\frac{",
    r"x^",
    r"x_",
    r"\sqrt",
    r"{{{x",
    r"x}}}",
    r"\left( x",
    r"x \right)",
    r"\begin{bmatrix} 1 & 2",
    r"\end{bmatrix}",
    r"\foo{x} + \bar",
    r"\unknowncommand",
    r"a & b \\ c",
    r"\def\x{\x} \x",
    r"\newcommand{\y}[1]{#1 #1} \y{\y{\y{\y{\y{\y{\y{\y{\y{\y{z}}}}}}}}}}",
    "\\text{unclosed",
    r"\\\\\\",
    r"^^^___",
    r"$x$",
]


@pytest.mark.parametrize("tex", MALFORMED)
def test_malformed_formulas_are_read_as_well_as_possible(tex: str) -> None:
    formula = read_formula(tex)
    assert not LATEX_MARKS.search(formula.spoken)
    assert not LATEX_MARKS.search(formula.display)


def test_malformed_formulas_warn() -> None:
    assert read_formula(r"\frac{1}{").warnings
    assert read_formula(r"\foo{x}").warnings == ("unknown command \\foo",)
    assert read_formula(r"\frac{1}{").spoken == "1"
    recursive = read_formula(r"\def\x{\x} \x")
    assert any("macro" in w or "nested too deeply" in w for w in recursive.warnings)


def test_macros_are_expanded() -> None:
    assert read_formula(r"\def\R{\mathbb{R}} x \in \R").spoken == "x is in the real numbers"
    assert read_formula(r"\newcommand{\sq}[1]{#1^2} \sq{y}").spoken == "y squared"


def test_long_flat_formulas_are_fast_and_capped() -> None:
    long_sum = " + ".join(f"x_{{{k}}}" for k in range(300))
    started = time.monotonic()
    formula = read_formula(long_sum)
    assert time.monotonic() - started < 1.0
    assert formula.spoken.startswith("x 0 plus x 1 plus")
    assert len(formula.spoken) <= 1600
    huge = read_formula("x+" * MAX_FORMULA_CHARS)
    assert huge.spoken == "a formula too long to read aloud"
    assert huge.warnings


def test_a_formula_past_its_cpu_budget_stops_with_a_warning() -> None:
    long_sum = " + ".join(f"x_{{{k}}}" for k in range(300))
    stopped = read_formula(long_sum, time_budget_s=0)
    assert "the formula took too long to read; the rest is left out" in stopped.warnings
    assert not stopped.spoken.startswith("x 0 plus x 1 plus")  # a stall alone never does this


def test_deep_nesting_does_not_crash() -> None:
    formula = read_formula("{" * 500 + "x" + "}" * 500)
    assert formula.warnings
    assert not LATEX_MARKS.search(formula.spoken)
    nested = read_formula(r"\frac{" * 100 + "1" + "}{2}" * 100)
    assert not LATEX_MARKS.search(nested.spoken)


def test_trailing_sentence_punctuation_is_split_off() -> None:
    assert split_trailing_punctuation("x = 1.") == ("x = 1", ".")
    assert split_trailing_punctuation(r"\end{bmatrix},\quad") == (r"\end{bmatrix}", ",")
    assert split_trailing_punctuation("x") == ("x", "")


def test_aligned_blocks_read_row_by_row() -> None:
    formula = read_formula(
        r"\begin{aligned} \frac{d}{dx} C & = 0 && \textrm{for any constant $C$} \\ "
        r"\frac{d}{dx} x^n & = n x^{n-1} && \textrm{for } n \neq 0 \end{aligned}"
    )
    assert formula.spoken == (
        "d by d x of C equals 0, for any constant C; "
        "d by d x of x to the n equals n x to the power n minus 1, for n is not equal to 0"
    )
    assert formula.display == "d/dx C = 0  for any constant C; d/dx xⁿ = nxⁿ⁻¹  for n ≠ 0"


def test_bmatrix_over_several_lines() -> None:
    formula = read_formula(
        "\\mathbf{A}^\\top =\n\\begin{bmatrix}\n    a_{11} & a_{21} & \\dots  & a_{m1} \\\\\n"
        "    \\vdots & \\vdots & \\ddots  & \\vdots \\\\\n    a_{1n} & a_{2n} & \\dots  & a_{mn}\n"
        "\\end{bmatrix}"
    )
    assert formula.spoken == (
        "A transpose equals the matrix with rows: a 1 1, a 2 1, and so on, a m 1; and so on; "
        "a 1 n, a 2 n, and so on, a m n"
    )
    assert formula.display == "𝐀ᵀ = [a₁₁ a₂₁ … aₘ₁; ⋮ ⋮ ⋱ ⋮; a₁ₙ a₂ₙ … aₘₙ]"


def test_mathml_converted_formula_reads() -> None:
    formula = read_formula(r"\frac{1}{\sqrt{x}} ≤ {y}^{2}")
    assert formula.spoken == "1 over the square root of x is less than or equal to y squared"
