"""The annotation stage: raw block text in, display text plus annotations out.

``annotate(document, dialect=..., lexicon=..., latex=...)`` runs between ingest and
segmentation and is pure. For every block (chapter heading or paragraph) it:

1. **Reads formulas** (:mod:`ssml.latex`): ``$...$``, ``$$...$$``, ``\\(...\\)``,
   ``\\[...\\]`` (``$`` is not searched in Markdown, whose parser already marked its
   maths with ``\\(...\\)`` and ``\\[...\\]`` and doubled every literal backslash; the
   doubling is undone here, in the text and in chapter and document titles, where
   formulas are shown in their caption form too). Each formula is replaced in the text
   by its caption form (``x² + y²``) and annotated with a :class:`~ssml.annotations.Sub`
   whose alias is the spoken form and whose ``formula`` keeps source, display and
   spoken text. Sentence punctuation written inside a formula (``$$x = 1.$$``) is moved
   after it. Each formula gets one CPU budget (:data:`ssml.latex.TIME_BUDGET_S`) that
   starts when it is found and covers splitting off that punctuation, parsing, speech,
   caption text and its alias. An empty formula (``$$$$``, ``\\(\\)``) or a ``$$`` that
   opens none is taken out of the text with a warning, never read as "dollar dollar".
   With ``latex="passthrough"`` and the ``cosyvoice`` dialect, formulas in Chinese
   blocks are sent as LaTeX instead (the alias is ``$source$``), for CosyVoice models
   that read LaTeX in Chinese text themselves (reference section 7). Anything that
   cannot be read well is recorded in :attr:`Document.warnings`.
2. **Applies the lexicon** (:mod:`ssml.lexicon`) outside formulas.
3. **Normalises numbers, dates, times, money, units and abbreviations** in English
   blocks (:mod:`ssml.verbalize`) outside formulas and lexicon entries.
4. **Tells languages apart**: the document's main language is its declared language
   (HTML/EPUB), else the script of most of its text; a block written in another script
   (Chinese in an English book, English in a Chinese one) gets a
   :class:`~ssml.annotations.Lang` annotation, which espeak voices with ``<voice
   xml:lang>``. The document's ``language`` is set when it had none.
5. For an SSML input document, checks its markup against ``dialect`` first and raises
   :class:`~ssml.dialects.UnsupportedMarkupError` (exit code 2) with the line and
   column of every problem.

The text content of every block changes only where a formula's LaTeX is replaced by its
caption form; captions index into the annotated text.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import replace

from ssml.annotations import Annotation, Lang, SpanSet, Sub, is_leaf, shift, sort_key
from ssml.dialects import check, dialect_for, script_language
from ssml.document import Document
from ssml.latex import TIME_BUDGET_S, Budget, read_formula, split_trailing_punctuation
from ssml.latex.budget import gc_paused
from ssml.latex.find import FoundFormula, find_formulas
from ssml.lexicon import Lexicon
from ssml.verbalize import verbalize

LATEX_MODES = ("speak", "passthrough")


def annotate(
    document: Document,
    *,
    dialect: str = "espeak",
    lexicon: Lexicon | None = None,
    latex: str = "speak",
    normalize: bool = True,
) -> Document:
    """Annotate every block of ``document`` (see the module docstring)."""
    dialect_for(dialect)  # an unknown dialect is a ValueError
    if latex not in LATEX_MODES:
        raise ValueError(f"latex must be one of {LATEX_MODES}, not {latex!r}")
    if document.ssml_source is not None:
        check(
            document.ssml_source, dialect, source=True, name=document.title or "the SSML document"
        )
    main = _main_language(document)
    warnings: list[str] = list(document.warnings)
    escaped = document.format == "markdown"
    chapters = []
    for number, chapter in enumerate(document.chapters, start=1):
        blocks: list[str] = []
        annotations: list[tuple[Annotation, ...]] = []
        for k, block in enumerate(chapter.blocks):
            text, found = annotate_block(
                block,
                chapter.block_annotations(k),
                dialect=dialect,
                lexicon=lexicon,
                latex=latex,
                normalize=normalize,
                dollars=not escaped,
                escaped=escaped,
                main_language=main,
                warnings=warnings,
                where=f"chapter {number} ({chapter.title})",
            )
            blocks.append(text)
            annotations.append(found)
        heading = blocks[0] if chapter.heading else ""
        paragraphs = tuple(blocks[1:] if chapter.heading else blocks)
        chapters.append(
            replace(
                chapter,
                title=_title(chapter.title, escaped),
                heading=heading,
                paragraphs=paragraphs,
                annotations=tuple(annotations),
            )
        )
    title = _title(document.title, escaped) if document.title is not None else None
    return replace(
        document,
        chapters=tuple(chapters),
        title=title,
        warnings=tuple(warnings),
        language=document.language or main,
    )


def _title(title: str, escaped: bool) -> str:
    """A title as shown: formulas in caption form, Markdown's doubled backslashes single."""
    if not escaped and "$" not in title and "\\" not in title:
        return title
    shown, _annotations = _formulas(title, [], not escaped, False, None, "", escaped)
    return shown


def annotate_block(
    text: str,
    existing: tuple[Annotation, ...] = (),
    *,
    dialect: str = "espeak",
    lexicon: Lexicon | None = None,
    latex: str = "speak",
    normalize: bool = True,
    dollars: bool = True,
    escaped: bool = False,
    main_language: str | None = None,
    warnings: list[str] | None = None,
    where: str = "",
) -> tuple[str, tuple[Annotation, ...]]:
    """One block: its display text and its annotations (see the module docstring).

    ``escaped``: the block comes from Markdown ingest (formulas as ``\\(...\\)`` and
    ``\\[...\\]``, literal backslashes doubled).
    """
    language = script_language(text)
    passthrough = latex == "passthrough" and dialect_for(dialect).reads_latex and language == "zh"
    text, annotations = _formulas(
        text, list(existing), dollars, passthrough, warnings, where, escaped
    )
    if lexicon is not None:
        annotations += lexicon.find(text, _taken(annotations))
    if normalize and language == "en":
        annotations += verbalize(text, _taken(annotations))
    if main_language and language and language != main_language and text.strip():
        annotations.append(Lang(0, len(text), language))
    return text, tuple(sorted(annotations, key=sort_key))


def _taken(annotations: list[Annotation]) -> list[tuple[int, int]]:
    return [(a.start, a.end) for a in annotations if is_leaf(a)]


def _formulas(
    text: str,
    annotations: list[Annotation],
    dollars: bool,
    passthrough: bool,
    warnings: list[str] | None,
    where: str,
    escaped: bool = False,
) -> tuple[str, list[Annotation]]:
    found = find_formulas(text, dollars=dollars)
    if not found and not (escaped and "\\" in text):
        return text, annotations
    taken = SpanSet((a.start, a.end) for a in annotations if is_leaf(a))
    out: list[str] = []
    added: list[Annotation] = []
    moves: list[tuple[int, int]] = []  # (position in the old text, shift from there on)
    done = 0
    length = 0  # of the new text so far

    def keep(end: int) -> None:
        """Copy ``text[done:end]`` (undoing Markdown's doubled backslashes)."""
        nonlocal length
        gap = text[done:end]
        if escaped and "\\" in gap:
            pieces = gap.split("\\\\")
            position = done  # in the old text
            for piece in pieces[:-1]:
                out.append(piece + "\\")
                length += len(piece) + 1
                position += len(piece) + 2
                moves.append((position, length - position))
            out.append(pieces[-1])
            length += len(pieces[-1])
        else:
            out.append(gap)
            length += len(gap)

    for match in found:
        if taken.overlaps(match.start, match.end):
            continue
        keep(match.start)
        start = length
        if match.unmatched or not match.source.strip():
            dropped = _drop(text, match, warnings, where)
            done = match.end + dropped
            moves.append((done, length - done))
            continue
        budget = Budget(TIME_BUDGET_S)  # the formula's one budget, from here to its alias
        with gc_paused():
            source, punctuation = split_trailing_punctuation(match.source)
            formula = read_formula(source, block=match.block, budget=budget)
            shown = formula.display
            out.append(shown + punctuation)
            alias = f"${source}$" if passthrough else formula.spoken
            origin = "latex-passthrough" if passthrough else "formula"
            added.append(Sub(start, start + len(shown), alias, formula=formula, origin=origin))
        if warnings is not None:
            warnings.extend(f"{where}: formula {source[:60]!r}: {w}" for w in formula.warnings)
        length += len(shown) + len(punctuation)
        done = match.end
        moves.append((done, length - done))
    keep(len(text))
    moved = [_move(a, moves) for a in annotations]
    return "".join(out), [a for a in moved if a is not None] + added


def _drop(text: str, match: FoundFormula, warnings: list[str] | None, where: str) -> int:
    """Warn about an empty or unmatched delimiter; how many spaces after it go with it."""
    if warnings is not None:
        written = text[match.start : match.end][:20]
        what = (
            f"a {written!r} that opens no formula (no closing {written!r})"
            if match.unmatched
            else f"an empty formula {written!r}"
        )
        warnings.append(f"{where}: {what} was left out of the text")
    before = text[match.start - 1 : match.start]
    after = text[match.end : match.end + 1]
    return 1 if after == " " and (before in ("", " ") or match.start == 0) else 0


def _move(annotation: Annotation, moves: list[tuple[int, int]]) -> Annotation | None:
    """Shift an annotation made on the text before formulas were replaced."""
    k = bisect_right(moves, (annotation.start, float("inf")))
    return shift(annotation, moves[k - 1][1] if k else 0)


def _main_language(document: Document) -> str | None:
    if document.language:
        return document.language.lower().split("-")[0]
    counts: dict[str, int] = {}
    for chapter in document.chapters:
        for block in chapter.blocks:
            language = script_language(block)
            if language:  # a Han character carries about as much as three letters
                weight = sum(3 if "\u3400" <= ch <= "\u9fff" else 1 for ch in block if ch.isalpha())
                counts[language] = counts.get(language, 0) + weight
    return max(counts, key=lambda k: counts[k]) if counts else None


__all__ = ["LATEX_MODES", "annotate", "annotate_block"]
