#!/usr/bin/env python3
"""Benchmark: reading formulas of every worst-case shape, and planning a 1M-character lesson.

    .venv/bin/python bench/latex.py [--repeat N] [--chars N] [--skip-plan]

Part 1, formulas. For every shape of :mod:`ssml.latex.worst` (deep nesting of each
construct, chains that nest without braces, long flat rows, repeated macros, very long
tokens) and several depths or sizes up to the 4000-character cap, the whole read of one
formula in a sentence is timed: finding it, splitting off punctuation, parsing, speech,
caption text and the segment's SSML with its alias. The figure is the worst of
``--repeat`` runs, in milliseconds of this thread's CPU time with the garbage collector
paused (as the reader runs). The issue's budget is 250 ms per formula. The reference,
measured in the same run, is a flat sum of the same length (``x_{0} + x_{1} + ...``):
the last column is the shape's cost per character over the reference's, at the largest
size (when that is 1000 characters or more), so "about linear" reads as a small constant.

Part 2, a lesson of ``--chars`` characters (1,000,000) built from the d2l corpus lessons
(calculus, linear algebra) mixed with hostile formulas of every shape at depths 30-200,
planned by ``narrate plan`` in a subprocess (CPU time of the child), in two layouts: as
written (many chapters and paragraphs) and as one paragraph of one chapter. The
reference is ``narrate plan`` on the same number of characters of plain prose (The Time
Machine, no formulas), timed in the same run; the issue's target is 15 s.
"""

from __future__ import annotations

import argparse
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ssml.annotate import annotate_block  # noqa: E402
from ssml.build import build_blocks  # noqa: E402
from ssml.latex.budget import gc_paused  # noqa: E402
from ssml.latex.find import find_formulas  # noqa: E402
from ssml.latex.worst import CHAINS, FLAT, WRAPPERS, capped, nested  # noqa: E402

CORPUS = REPO.parent / "shared" / "corpus"
BUDGET_MS = 250.0
PLAN_TARGET_S = 15.0
DEPTHS = (1, 10, 40, 100, 400)
COUNTS = (1, 10, 100, 1000, 4000)
SIZES = (1, 10, 100, 400, 900)


def read_ms(source: str, repeat: int) -> float:
    """Worst CPU milliseconds of the whole read of ``source`` in a sentence."""
    text = f"Note \\({source}\\) here."
    worst = 0.0
    for _ in range(repeat):
        with gc_paused():
            started = time.thread_time()
            find_formulas(text)
            shown, annotations = annotate_block(text)
            build_blocks([(shown, annotations)], pause_ms=500)
            worst = max(worst, time.thread_time() - started)
    return worst * 1000


def _nest(construct: str, depth: int) -> str:
    return nested([construct] * depth)


def _chain(prefix: str, count: int) -> str:
    return CHAINS[prefix] * count + "x"


def formula_table(repeat: int) -> float:
    """Print the per-shape table; return the worst milliseconds seen."""
    reference = capped(FLAT["sum"](900))
    reference_ms_per_char = read_ms(reference, repeat) / len(reference)
    rows: list[tuple[str, str, list[tuple[str, float]], float | None]] = []
    groups: list[tuple[str, tuple[int, ...], dict[str, Callable[[int], str]]]] = [
        ("nested", DEPTHS, {k: partial(_nest, k) for k in WRAPPERS}),
        ("chain", COUNTS, {k: partial(_chain, k) for k in CHAINS}),
        ("flat", SIZES, dict(FLAT)),
    ]
    worst = 0.0
    for group, sizes, makers in groups:
        for name, make in sorted(makers.items()):
            cells = []
            source = ""
            for size in sizes:
                source = capped(make(size))
                ms = read_ms(source, repeat)
                worst = max(worst, ms)
                cells.append((f"{size}", ms))
            per_char = read_ms(source, repeat) / len(source) if len(source) >= 1000 else None
            ratio = per_char / reference_ms_per_char if per_char is not None else None
            rows.append((group, name, cells, ratio))
    print("Part 1: worst CPU ms of one formula's whole read (find, parse, speech, caption, SSML)")
    print(f"reference: flat sum of {len(reference)} chars, {reference_ms_per_char:.4f} ms/char")
    print(f"{'shape':28s} {'sizes (depth, count or units) -> ms':60s} per-char vs ref")
    for group, name, cells, ratio in rows:
        shown = "  ".join(f"{size:>4s}:{ms:6.1f}" for size, ms in cells)
        relative = f"{ratio:6.2f}x" if ratio is not None else "     - (short)"
        print(f"{group + ' ' + name:28s} {shown:60s} {relative}")
    print(
        f"worst of all: {worst:.1f} ms (budget {BUDGET_MS:.0f} ms: {worst / BUDGET_MS:.2f} of it)"
    )
    return worst


def hostile_formulas() -> str:
    """One paragraph of formulas of every shape, at depths 30-200."""
    formulas = [nested([k] * depth) for k in WRAPPERS for depth in (30, 200)]
    formulas += [CHAINS[k] * 500 + "x" for k in CHAINS]
    formulas += [FLAT[k](300) for k in FLAT]
    return " ".join(f"Then \\({capped(f)}\\) holds." for f in formulas)


def lesson(chars: int) -> str:
    """Corpus lessons and hostile formulas, repeated to ``chars`` characters."""
    parts = [
        (CORPUS / "d2l-en_calculus.md").read_text(encoding="utf-8"),
        (CORPUS / "d2l-en_linear-algebra.md").read_text(encoding="utf-8"),
        "## Hostile formulas\n\n" + hostile_formulas() + "\n",
    ]
    text = "\n\n".join(parts) + "\n\n"
    return (text * (chars // len(text) + 1))[:chars]


def one_paragraph(text: str) -> str:
    """The same text as one paragraph of one chapter (headings, code and roles dropped)."""
    text = re.sub(r"```.*?```", " ", text, flags=re.S)
    lines = (line.strip() for line in text.splitlines())
    body = " ".join(line for line in lines if line and not line.startswith(("#", ":", "|")))
    return "# One\n\n" + body + "\n"


def plan_cpu_s(path: Path) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of ``narrate plan PATH`` in a subprocess."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "narrate", "plan", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"narrate plan {path} failed: {result.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall


def plan_table(chars: int) -> None:
    prose = (CORPUS / "h-g-wells_the-time-machine.md").read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        text = lesson(chars)
        inputs = {
            "plain prose (reference)": (prose * (chars // len(prose) + 1))[:chars],
            "lesson as written": text,
            "lesson as one paragraph": one_paragraph(text),
        }
        print(f"\nPart 2: narrate plan on {chars:,} characters (CPU s of the subprocess)")
        reference = 0.0
        for name, content in inputs.items():
            path = folder / (re.sub(r"\W+", "-", name) + ".md")
            path.write_text(content, encoding="utf-8")
            cpu, wall = plan_cpu_s(path)
            reference = reference or cpu
            print(
                f"{name:26s} {len(content):>9,} chars  CPU {cpu:6.2f} s  wall {wall:6.2f} s  "
                f"{cpu / reference:5.2f}x reference  (target {PLAN_TARGET_S:.0f} s)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per cell (worst is kept)")
    parser.add_argument("--chars", type=int, default=1_000_000, help="size of the lesson")
    parser.add_argument("--skip-plan", action="store_true", help="only the formula table")
    args = parser.parse_args()
    formula_table(args.repeat)
    if not args.skip_plan:
        plan_table(args.chars)


if __name__ == "__main__":
    main()
