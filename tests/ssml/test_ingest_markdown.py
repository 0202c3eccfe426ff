"""Tests for Markdown ingest (CommonMark + footnotes + tables + math + d2l-book markup)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from narrate.errors import EmptyDocumentError, MalformedDocumentError
from ssml.annotate import annotate
from ssml.annotations import formulas_of
from ssml.document import Document
from ssml.ingest import load
from ssml.ingest.markdown import strip_d2l, unwrap_highlights

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"


def md(tmp_path: Path, text: str, name: str = "doc.md") -> Document:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return load(path)


def corpus_file(corpus: Path, name: str) -> Path:
    path = corpus / name
    assert path.exists(), f"{name} is missing from the shared corpus"
    return path


# --- structure ------------------------------------------------------------------------


def test_h1_and_h2_start_chapters_deeper_headings_are_paragraphs(tmp_path: Path) -> None:
    doc = md(tmp_path, "# One\n\nA.\n\n### Sub\n\nB.\n\n## Two\n\nC.\n\n#### Deep\n")
    assert doc.format == "markdown"
    assert [(c.title, c.paragraphs) for c in doc.chapters] == [
        ("One", ("A.", "Sub", "B.")),
        ("Two", ("C.", "Deep")),
    ]
    assert [c.source for c in doc.chapters] == ["line 1", "line 9"]


def test_setext_headings(tmp_path: Path) -> None:
    doc = md(tmp_path, "First\n=====\n\nBody one.\n\nSecond\n------\n\nBody two.\n")
    assert [c.title for c in doc.chapters] == ["First", "Second"]


def test_text_before_first_heading_is_introduction(tmp_path: Path) -> None:
    doc = md(tmp_path, "Opening words.\n\n# Chapter I\n\nBody.\n# Chapter II\n\nMore.\n")
    assert [c.title for c in doc.chapters] == ["Introduction", "Chapter I", "Chapter II"]
    assert doc.chapters[0].paragraphs == ("Opening words.",)
    assert doc.title is None


def test_text_before_first_heading_uses_front_matter_title(tmp_path: Path) -> None:
    doc = md(tmp_path, "---\ntitle: My Notes\nauthor: me\n---\nOpening.\n\n## Part\n\nBody.\n")
    assert doc.title == "My Notes"
    assert [c.title for c in doc.chapters] == ["My Notes", "Part"]
    assert doc.chapters[0].paragraphs == ("Opening.",)


def test_no_introduction_without_text(tmp_path: Path) -> None:
    doc = md(tmp_path, "\n\n<!-- comment -->\n\n# Only\n\nBody.\n")
    assert [c.title for c in doc.chapters] == ["Only"]


def test_heading_directly_followed_by_heading_is_merged(tmp_path: Path) -> None:
    doc = md(tmp_path, "# Linear Algebra\n## Scalars\n\nBody.\n\n## Vectors\n\nMore.\n")
    assert [c.title for c in doc.chapters] == ["Scalars", "Vectors"]
    assert doc.chapters[0].heading == "Linear Algebra. Scalars"
    assert doc.chapters[0].paragraphs == ("Body.",)
    assert doc.title == "Linear Algebra"


def test_trailing_empty_heading_is_dropped(tmp_path: Path) -> None:
    doc = md(tmp_path, "# A\n\nBody.\n\n# B\n")
    assert [c.title for c in doc.chapters] == ["A"]


def test_headings_are_spoken(tmp_path: Path) -> None:
    doc = md(tmp_path, "# Chapter IV: The Sphinx\n\nx\n\n# XII\n\ny\n\n# Scalars\n\nz\n")
    assert [c.heading for c in doc.chapters] == ["Chapter 4: The Sphinx", "Chapter 12", "Scalars"]


# --- blocks and inlines ---------------------------------------------------------------

BLOCKS = """\
# Blocks

Para with *emphasis*, __strong__, ~~struck~~, a [link](http://x.org "t") and `inline code`.

- item one
- item **two**
  - nested item
1. numbered

> A quoted
> paragraph.
>
> Second quote paragraph.

| Name | Value |
|------|-------|
| a    | 1     |
| b    |       |

```python
print("fenced code")
```

    indented code

<div>
an html block
</div>

![an image](pic.png)

Image ![alt text](pic.png) inside text.

Text with inline <b>html</b> and a marker<sup>2</sup>.<br>Broken<br/>line.
"""


def test_blocks_and_inlines(tmp_path: Path) -> None:
    doc = md(tmp_path, BLOCKS)
    assert doc.chapters[0].paragraphs == (
        "Para with emphasis, strong, struck, a link and inline code.",
        "item one",
        "item two",
        "nested item",
        "numbered",
        "A quoted paragraph.",
        "Second quote paragraph.",
        "Name, Value",
        "a, 1",
        "b",
        "Image inside text.",
        "Text with inline html and a marker. Broken line.",
    )


def test_footnotes_removed(tmp_path: Path) -> None:
    text = "# A\n\nA claim[^1] and another[^note].\n\n[^1]: First note.\n[^note]: Second.\n"
    doc = md(tmp_path, text)
    assert doc.chapters[0].paragraphs == ("A claim and another.",)


def test_math_is_kept_as_latex_with_unambiguous_delimiters(tmp_path: Path) -> None:
    text = (
        "# M\n\nInline $x_1 * y_2$ and $\\frac{a}{b}$ here.\n\n"
        "$$\n\\begin{bmatrix}1 \\\\ 2\\end{bmatrix}\n$$\n\nAnd $$a^2$$ inline.\n"
    )
    doc = md(tmp_path, text)
    assert doc.chapters[0].paragraphs == (
        "Inline \\(x_1 * y_2\\) and \\(\\frac{a}{b}\\) here.",
        "\\[ \\begin{bmatrix}1 \\\\ 2\\end{bmatrix} \\]",
        "And \\[a^2\\] inline.",
    )


def test_prices_are_not_maths(tmp_path: Path) -> None:
    doc = md(tmp_path, "# M\n\nIt costs $5 and $10 today. Prices: $5, $10 and $20.\n")
    assert doc.chapters[0].paragraphs == ("It costs $5 and $10 today. Prices: $5, $10 and $20.",)


def test_unclosed_math_does_not_crash(tmp_path: Path) -> None:
    doc = md(tmp_path, "# M\n\nCosts $5 and $$ more.\n\n$$\nunclosed\n")
    assert doc.chapters[0].paragraphs == ("Costs $5 and more.", "unclosed")
    assert doc.warnings == (
        "line 3: '$$' opens no formula (no closing '$$', or nothing between) and was left "
        "out of the text; write \\$ for a dollar sign",
        "line 5: '$$' opens no formula (no closing '$$', or nothing between) and was left "
        "out of the text; write \\$ for a dollar sign",
    )


def test_normalisation_is_applied(tmp_path: Path) -> None:
    doc = md(tmp_path, "# “Quoted” title\n\nHe said\u2060—no\u00a0…\n")
    assert doc.chapters[0].title == '"Quoted" title'
    assert doc.chapters[0].paragraphs == ("He said — no ...",)


def test_only_code_is_empty(tmp_path: Path) -> None:
    with pytest.raises(EmptyDocumentError):
        md(tmp_path, "```\ncode only\n```\n")


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "x.md"
    path.write_bytes(b"# Title\n\nna\xefve\n")
    with pytest.raises(MalformedDocumentError, match="byte offset 11"):
        load(path)


# --- d2l-book markup ------------------------------------------------------------------

D2L = """\
# Calculus
:label:`sec_calculus`

Archimedes inscribed polygons
(:numref:`fig_circle_area`). See also :numref:`sec_linear-algebra`.

![Polygons.](../img/polygon-circle.svg)
:label:`fig_circle_area`

[**The *derivative* of $f$ is**]

(**$$f'(x) = \\lim_{h \\rightarrow 0} \\frac{f(x+h) - f(x)}{h}.$$**)
:eqlabel:`eq_derivative`

We (**keep
the axes**) and [**the $\\ell_2$ *norm***] as in :eqref:`eq_derivative`.
Read :citet:`Strang.1993` and :citet:`Petersen.Pedersen.ea.2008`.

:begin_tab:`mxnet`
MXNet-only prose.
:end_tab:

:begin_tab:`pytorch`
[Discussions](https://discuss.d2l.ai/t/31)
:end_tab:

## Exercises

1. Prove it.
"""


def test_d2l_markup(tmp_path: Path) -> None:
    doc = md(tmp_path, D2L)
    assert [c.title for c in doc.chapters] == ["Calculus", "Exercises"]
    assert doc.chapters[0].paragraphs == (
        "Archimedes inscribed polygons (the figure). See also the section.",
        "The derivative of \\(f\\) is",
        "\\[f'(x) = \\lim_{h \\rightarrow 0} \\frac{f(x+h) - f(x)}{h}.\\]",
        "We keep the axes and the \\(\\ell_2\\) norm as in the equation. "
        "Read Strang 1993 and Petersen, Pedersen et al. 2008.",
    )
    assert doc.chapters[1].source == "line 27"


def test_highlight_markers_left_alone_outside_d2l(tmp_path: Path) -> None:
    doc = md(tmp_path, "# A\n\nSee (**this**) and [**that**](http://x).\n")
    assert doc.chapters[0].paragraphs == ("See (this) and that.",)


def test_strip_d2l_keeps_unclosed_tab_content() -> None:
    lines, origin = strip_d2l([":begin_tab:`x`", "text", ":label:`a`", "more"])
    assert lines == ["text", "more"]
    assert origin == [1, 3]


def test_unwrap_highlights_does_not_cross_paragraphs() -> None:
    assert unwrap_highlights("(**a\n\nb**)") == "(**a\n\nb**)"
    assert unwrap_highlights("x (**a\nb**) y") == "x a\nb y"


def test_unwrap_highlights_leaves_links_alone() -> None:
    assert unwrap_highlights("[**bold link**](http://x) and [**hi**]") == (
        "[**bold link**](http://x) and hi"
    )
    assert unwrap_highlights("[**the $\\ell_2$ *norm***]") == "the $\\ell_2$ *norm*"


def test_hostile_d2l_input_is_linear() -> None:
    start = time.perf_counter()
    unwrap_highlights("(**" * 200_000 + "[**" * 200_000)
    strip_d2l([":begin_tab:`x`"] * 100_000)
    assert time.perf_counter() - start < 1


@pytest.mark.parametrize("name", ["d2l-en_linear-algebra.md", "d2l-en_calculus.md"])
def test_d2l_corpus(name: str, corpus: Path) -> None:
    doc = load(corpus_file(corpus, name))
    text = "\n".join(p for c in doc.chapters for p in c.blocks)
    for marker in (":label:", ":eqlabel:", ":numref:", ":begin_tab:", ":end_tab:", "(**", "**]"):
        assert marker not in text
    assert "Discussions" not in text
    assert "\\(" in text and "\\[" in text  # math kept as LaTeX for the annotation stage
    assert doc.chapters[-1].title == "Exercises"


def test_d2l_linear_algebra_chapters(corpus: Path) -> None:
    doc = load(corpus_file(corpus, "d2l-en_linear-algebra.md"))
    assert doc.title == "Linear Algebra"
    titles = [c.title for c in doc.chapters]
    assert titles[:4] == ["Linear Algebra", "Scalars", "Vectors", "Matrices"]
    assert len(titles) == 14
    assert doc.chapters[0].paragraphs[0].startswith("By now, we can load datasets into tensors")
    assert doc.chapters[1].paragraphs[-1].startswith("Scalars are implemented as tensors")
    assert doc.chapters[1].source == "line 14"


# --- the Time Machine manuscript ------------------------------------------------------


def test_time_machine_markdown(corpus: Path) -> None:
    doc = load(corpus_file(corpus, "h-g-wells_the-time-machine.md"))
    roman = ["I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII"]
    assert [c.title for c in doc.chapters] == [f"Chapter {r}" for r in roman] + ["Epilogue"]
    assert [c.heading for c in doc.chapters] == [f"Chapter {n}" for n in range(1, 13)] + [
        "Epilogue"
    ]
    assert sum(len(c.paragraphs) for c in doc.chapters) == 308
    text = "\n".join(p for c in doc.chapters for p in c.paragraphs)
    assert "[^1]" not in text
    assert "\u2060" not in text and "\u200a" not in text and "*" not in text
    assert "It may be, of course, that the floor did not slope" not in text  # footnote body
    assert "this way — marking the points" in doc.chapters[0].paragraphs[0]


# --- maths delimiters -------------------------------------------------------------------

LATEX_LEAKS = re.compile(r"[\\{}^]")
EVERY_DELIMITER = r"""# The \(x^2\) rule

Inline \(a^2 + b^2\) and display \[\int_0^1 x^2 \, dx\] in one paragraph.

Dollars $c^2$ and $$\frac{d}{dx} e^x$$ too, at $5 a piece.

\[
\frac{a}{b}
- c
\]

\[\sqrt{2}\]

$$
\sum_{i=1}^{n} i
$$

- a list item with \(\alpha_1\)
> a quote with \(\beta^{2}\)

| formula | value |
|---|---|
| \(\gamma_{k}\) | 1 |
"""


def plan_json(tmp_path: Path, text: str) -> dict[str, Any]:
    path = tmp_path / "lesson.md"
    path.write_text(text, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "narrate", "plan", "--json", str(path)],
        env={**os.environ, "NARRATE_HOME": str(tmp_path / "home")},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    plan: dict[str, Any] = json.loads(result.stdout)
    return plan


def test_every_delimiter_is_spoken_through_plan(tmp_path: Path) -> None:
    plan = plan_json(tmp_path, EVERY_DELIMITER)
    segments = [s for c in plan["chapters"] for s in c["segments"]]
    spoken = [f["spoken"] for s in segments for f in s["formulas"]]
    assert spoken == [
        "x squared",
        "a squared plus b squared",
        "the integral from 0 to 1 of x squared d x",
        "c squared",
        "d by d x of e to the x",
        "a over b minus c",
        "the square root of 2",
        "the sum from i equals 1 to n of i",
        "alpha 1",
        "beta squared",
        "gamma k",
    ]
    assert plan["chapters"][0]["title"] == "The x² rule"
    for segment in segments:
        assert not LATEX_LEAKS.search(segment["ssml"]), segment["ssml"]
        assert not LATEX_LEAKS.search(segment["text"]), segment["text"]
        assert "dollar dollar" not in segment["ssml"]
    assert "∫₀¹ x² dx" in segments[1]["text"]
    assert "five dollars" in segments[1]["ssml"] or "five dollars" in segments[2]["ssml"]
    assert plan["warnings"] == []


def test_empty_and_unmatched_double_dollars_are_left_out_with_a_warning(tmp_path: Path) -> None:
    plan = plan_json(
        tmp_path, "# M\n\nEmpty $$$$ here, $$ $$ there and \\(\\) too.\n\nA lone $$ sign.\n\n$$$$\n"
    )
    texts = [s["text"] for c in plan["chapters"] for s in c["segments"]]
    ssml = "".join(s["ssml"] for c in plan["chapters"] for s in c["segments"])
    assert "\n\n".join(texts) == "M\n\nEmpty here, there and too.\n\nA lone sign."
    assert "$" not in ssml and "dollar" not in ssml
    assert plan["warnings"] == [
        "line 3: '$$$$' opens no formula (no closing '$$', or nothing between) and was left "
        "out of the text; write \\$ for a dollar sign",
        "line 3: an empty formula was left out of the text",
        "line 3: an empty formula was left out of the text",
        "line 5: '$$' opens no formula (no closing '$$', or nothing between) and was left "
        "out of the text; write \\$ for a dollar sign",
        "line 7: an empty formula was left out of the text",
    ]


def annotated(tmp_path: Path, text: str) -> Document:
    return annotate(md(tmp_path, text))


def test_escaped_delimiters_and_code_stay_literal_text(tmp_path: Path) -> None:
    doc = annotated(
        tmp_path,
        "# M\n\nEscaped \\\\(not maths\\\\) and \\\\[nor this\\\\], `\\(code\\)`, C:\\\\dir, "
        "a \\$ sign and \\$\\$.\n",
    )
    assert doc.chapters[0].paragraphs == (
        "Escaped \\(not maths\\) and \\[nor this\\], \\(code\\), C:\\dir, a $ sign and $$.",
    )
    assert formulas_of(doc.chapters[0].annotations[1]) == ()
    assert doc.warnings == ()


def test_bracket_blocks_need_their_closer_before_a_blank_line(tmp_path: Path) -> None:
    doc = annotated(tmp_path, "# M\n\n\\[\nx\n\n\\]\n\nthen \\[y\n\\] and \\[z\\] w\n")
    assert doc.chapters[0].paragraphs == ("[ x", "]", "then y and z w")
    spoken = [f.spoken for a in doc.chapters[0].annotations for f in formulas_of(a)]
    assert spoken == ["y", "z"]


def test_markdown_titles_show_formulas_and_single_backslashes(tmp_path: Path) -> None:
    doc = annotated(tmp_path, "---\ntitle: A \\ B\n---\n\n# Why \\(e^{i\\pi}\\) works\n\nText.\n")
    assert doc.title == "A \\ B"
    assert [c.title for c in doc.chapters] == ["Why e⁽iπ⁾ works"]


def test_many_unclosed_openers_are_linear(tmp_path: Path) -> None:
    """A $$ or \\[ block that opens nothing is known at once, not by scanning the rest.

    Scanning made this quadratic (minutes); the issue plans 1M characters in 15 s, so a
    fifth of that many characters gets a fifth of the time.
    """
    count = 20_000
    hostile = "$$ a\n\n" * count + "\\[ b\n\n" * count + "x \\( y " * count
    started = time.thread_time()
    doc = md(tmp_path, "# M\n\n" + hostile + "\n")
    assert time.thread_time() - started < 3.0
    paragraphs = doc.chapters[0].paragraphs
    assert paragraphs == ("a",) * count + ("[ b",) * count + (("x ( y " * count).strip(),)
    assert len(doc.warnings) == count
