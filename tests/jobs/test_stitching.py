"""Splitting a chapter that is too long for one file of its profile (ACX: 120 minutes),
at paragraph starts; pure over the stitch plan (tiny WAVs, a profile with a short cap)."""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

from jobs.stitching import _file_groups, _StitchRow
from renderer.profiles import ACX
from renderer.stitch import StitchPart
from tests.renderer.signals import speechlike, write_wav

RATE = 22050


def _plan(tmp_path: Path, paragraphs: list[int]) -> tuple[list[_StitchRow], list[StitchPart], str]:
    """``paragraphs[i]`` one-second segments in paragraph ``i``."""
    rows, parts, texts = [], [], []
    offset = 0
    for number, count in enumerate(paragraphs):
        sentences = [f"P{number} s{k}." for k in range(count)]
        for k, sentence in enumerate(sentences):
            index = len(rows)
            wav = write_wav(tmp_path / f"{index}.wav", speechlike(1.0, -20, RATE, seed=index), RATE)
            rows.append(
                _StitchRow(index, index, "done", f"h{index}", offset, 0, len(sentence), None)
            )
            parts.append(StitchPart(wav, 0))
            offset += len(sentence) + (1 if k < len(sentences) - 1 else 2)
        texts.append(" ".join(sentences))
    return rows, parts, "\n\n".join(texts)


def test_a_long_chapter_breaks_at_paragraph_starts(tmp_path: Path) -> None:
    rows, parts, text = _plan(tmp_path, [3, 4, 2, 5])
    capped = replace(ACX, mastering=replace(ACX.mastering, max_file_ms=11_000))
    groups = _file_groups(rows, parts, text, capped, RATE)
    # about 7 s of speech fit a file (11 s less 2.75 s of room tone and 1 s to spare):
    # paragraphs 0 and 1 (7 segments) fill the first, paragraphs 2 and 3 the second
    assert groups == [[0, 1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12, 13]]
    assert _file_groups(rows, parts, text, ACX, RATE) == [list(range(14))]


def test_a_paragraph_longer_than_a_file_breaks_between_sentences(tmp_path: Path) -> None:
    rows, parts, text = _plan(tmp_path, [12])
    capped = replace(ACX, mastering=replace(ACX.mastering, max_file_ms=11_000))
    groups = _file_groups(rows, parts, text, capped, RATE)
    assert [len(g) for g in groups] == [7, 5]
    assert list(itertools.chain(*groups)) == list(range(12))
