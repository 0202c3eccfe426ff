from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from ssml.annotate import annotate
from ssml.annotations import SpanSet
from ssml.build import build_ssml, text_content
from ssml.document import Chapter, Document
from ssml.segment import SegmentPolicy, _role, segment_chapter
from ssml.sentences import ProtectedSpans, split_long, split_sentences
from ssml.slug import slugify


def spans(text: str) -> list[str]:
    return [text[a:b] for a, b in split_sentences(text)]


def test_sentences_respect_abbreviations_initials_and_quotes() -> None:
    text = 'Mr. Smith met H. G. Wells. "Is it?" he asked. It was 3.5 m long! Was it?'
    assert spans(text) == [
        "Mr. Smith met H. G. Wells.",
        '"Is it?" he asked.',
        "It was 3.5 m long!",
        "Was it?",
    ]


def test_chinese_sentences_split_after_full_width_marks() -> None:
    text = "子曰：“学而时习之，不亦说乎？”有朋自远方来。人不知而不愠。"
    assert spans(text) == ["子曰：“学而时习之，不亦说乎？”", "有朋自远方来。", "人不知而不愠。"]


def test_split_long_prefers_clauses_then_spaces() -> None:
    text = "first part, second part that is rather long, and a third part"
    pieces = [text[a:b] for a, b in split_long(text, 0, len(text), 30)]
    assert all(len(p) <= 30 for p in pieces)
    assert pieces[0] == "first part, second part that"[: len(pieces[0])]
    assert " ".join(pieces).replace("  ", " ") == text


def test_segments_cover_the_chapter_in_order_under_the_limit() -> None:
    paragraphs = tuple(
        " ".join(f"Sentence {p}.{i} says something fairly ordinary." for i in range(7))
        for p in range(6)
    )
    chapter = Chapter(title="IV", heading="Chapter 4", paragraphs=paragraphs)
    segments = segment_chapter(chapter, SegmentPolicy(max_chars=200))
    text = chapter.text
    assert segments[0].text == "Chapter 4"
    assert segments[0].pause_after_ms == 1200
    assert all(s.chars <= 200 for s in segments)
    assert [s.index for s in segments] == list(range(len(segments)))
    for segment in segments:
        assert text[segment.char_start : segment.char_end] == segment.text
        assert text_content(segment.ssml) == segment.text + "\n"
    spoken = " ".join(s.text.replace("\n\n", " ") for s in segments)
    assert spoken.split() == text.split()
    assert segments[-1].pause_after_ms == 0


def _with_role(role: int, stem: str) -> str:
    """A short paragraph starting with ``stem`` whose text gives it ``role`` in a pair."""
    return next(t for n in range(100) for t in [f"{stem} {n}."] if _role(t) == role)


def test_short_paragraphs_share_a_segment_with_a_break_when_they_pair() -> None:
    first, second = _with_role(0, "First paragraph"), _with_role(1, "Second paragraph")
    chapter = Chapter(title="One", paragraphs=(first, second))
    (segment,) = segment_chapter(chapter, SegmentPolicy(max_chars=500, paragraph_pause_ms=650))
    root = etree.fromstring(segment.ssml)
    assert [b.get("time") for b in root.iter("break")] == ["650ms"]
    assert segment.text == f"{first}\n\n{second}"
    # the other way round they do not pair: a paragraph is never both first and second
    chapter = Chapter(title="One", paragraphs=(second, first))
    texts = [s.text for s in segment_chapter(chapter, SegmentPolicy(max_chars=500))]
    assert texts == [second, first]


def test_a_segment_never_holds_parts_of_two_paragraphs_unless_both_whole() -> None:
    long = " ".join(f"Sentence number {n} is here." for n in range(30))
    chapter = Chapter(title="One", paragraphs=(long, _with_role(1, "Short one")))
    segments = segment_chapter(chapter, SegmentPolicy(max_chars=200))
    paragraph_two = chapter.text.index("Short one")
    assert all(s.char_end <= paragraph_two - 2 or s.char_start == paragraph_two for s in segments)


_WORDS = st.sampled_from(
    [
        "the",
        "time",
        "traveller",
        "said",
        "it",
        "was",
        "late",
        "and",
        "we",
        "went",
        "home",
        "quickly",
    ]
)
_SENTENCE = st.lists(_WORDS, min_size=2, max_size=12).map(lambda w: " ".join(w).capitalize() + ".")
_PARAGRAPH = st.lists(_SENTENCE, min_size=1, max_size=8).map(" ".join)


def _segment_keys(paragraphs: list[str], max_chars: int) -> list[tuple[str, str]]:
    chapter = Chapter(title="", paragraphs=tuple(paragraphs))
    return [(s.text, s.ssml) for s in segment_chapter(chapter, SegmentPolicy(max_chars))]


@settings(max_examples=300, deadline=None)
@given(
    paragraphs=st.lists(_PARAGRAPH, min_size=1, max_size=12),
    max_chars=st.sampled_from([60, 150, 400, 2000]),
    where=st.integers(min_value=0),
    edit=st.sampled_from(["word", "sentence", "add", "remove"]),
    new=_PARAGRAPH,
)
def test_an_edit_resynthesizes_its_paragraphs_segments_and_one_neighbour_each_side(
    paragraphs: list[str], max_chars: int, where: int, edit: str, new: str
) -> None:
    """The segments an edit makes new (not found among the old ones, as the content hash
    finds them) are those holding the touched paragraph, plus at most one on each side."""
    at = where % len(paragraphs)
    edited = list(paragraphs)
    if edit == "word":
        edited[at] = edited[at].replace(" ", " very ", 1) if " " in edited[at] else "Changed."
    elif edit == "sentence":
        edited[at] = f"{edited[at]} And one more sentence was added."
    elif edit == "add":
        edited.insert(at, new)
    elif len(edited) > 1:
        del edited[at]
    else:
        return
    before = set(_segment_keys(paragraphs, max_chars))
    after = _segment_keys(edited, max_chars)
    fresh = [k for k, key in enumerate(after) if key not in before]
    if not fresh:
        return
    chapter = Chapter(title="", paragraphs=tuple(edited))
    segments = segment_chapter(chapter, SegmentPolicy(max_chars))
    touched = [] if edit == "remove" else [at]
    owners = [_paragraphs_of(chapter, s.char_start, s.char_end) for s in segments]
    holding = [k for k, owned in enumerate(owners) if set(owned) & set(touched)]
    if holding:
        lo, hi = min(holding) - 1, max(holding) + 1
    else:  # a removal: the segments either side of where the paragraph was
        lo, hi = _around(owners, at)
    assert all(lo <= k <= hi for k in fresh), (fresh, holding, edit, at)


def _paragraphs_of(chapter: Chapter, start: int, end: int) -> list[int]:
    """Numbers of the body paragraphs ``[start, end)`` of the chapter text overlaps."""
    out, offset = [], 0
    for number, block in enumerate(chapter.blocks):
        if offset < end and start < offset + len(block):
            out.append(number)
        offset += len(block) + 2
    return out


def _around(owners: list[list[int]], removed_at: int) -> tuple[int, int]:
    """The segment ending just before the removed paragraph's place and the one after."""
    before = [k for k, owned in enumerate(owners) if owned and max(owned) < removed_at]
    after = [k for k, owned in enumerate(owners) if owned and min(owned) >= removed_at]
    return (max(before) if before else 0), (min(after) if after else len(owners))


@pytest.mark.parametrize("dangerous", ["a < b & c > d", "<speak>hi</speak>", "]]> &amp; <!--"])
def test_markup_in_text_is_escaped_and_read_as_text(dangerous: str) -> None:
    ssml = build_ssml([dangerous], pause_ms=500)
    root = etree.fromstring(ssml)
    assert root.tag == "speak"
    assert len(root) == 0  # no element came from the text
    assert text_content(ssml) == dangerous + "\n"


def test_ssml_ends_with_newline_so_espeak_does_not_say_dot() -> None:
    assert build_ssml(["It ended."], pause_ms=0).endswith(".\n</speak>")


@pytest.mark.parametrize(
    ("title", "slug"),
    [("../../x", "x"), ("Chapter IV: The Sphinx", "chapter-iv-the-sphinx"), ("学而篇", "fallback")],
)
def test_slugs_are_safe_file_names(title: str, slug: str) -> None:
    assert slugify(title, fallback="fallback") == slug


# --- the linear helpers agree with the plain scans they replace -------------------------

SPANS = st.lists(
    st.tuples(st.integers(0, 60), st.integers(0, 12)).map(lambda t: (t[0], t[0] + t[1])),
    max_size=12,
)


@settings(max_examples=200, deadline=None)
@given(SPANS, st.integers(-2, 75))
def test_protected_spans_find_the_span_a_point_is_inside(
    spans: list[tuple[int, int]], point: int
) -> None:
    inside = [(a, b) for a, b in sorted(spans) if a < point < b]
    assert ProtectedSpans(spans).containing(point) == (inside[0] if inside else None)


@settings(max_examples=200, deadline=None)
@given(SPANS, st.lists(st.tuples(st.integers(0, 70), st.integers(0, 9)), max_size=12))
def test_span_set_overlaps_as_a_scan_of_every_span(
    taken: list[tuple[int, int]], queries: list[tuple[int, int]]
) -> None:
    spans = SpanSet(taken)
    added: list[tuple[int, int]] = []
    for a, length in queries:
        b = a + length
        expected = any(x < b and a < y for x, y in taken + added)
        assert spans.overlaps(a, b) == expected
        if not expected:
            spans.add(a, b)
            added.append((a, b))


def test_a_long_paragraph_of_formulas_is_cut_between_them() -> None:
    paragraph = " ".join(
        f"Step {k}: so $x_{{{k}}} + y^2 = z_{k}$, e.g. here. Then more." for k in range(600)
    )
    chapter = annotate(Document((Chapter("One", (paragraph,)),), format="text")).chapters[0]
    segments = segment_chapter(chapter, SegmentPolicy(300))
    assert "".join(s.text for s in segments).replace(" ", "") == chapter.text.replace(" ", "")
    assert sum(len(s.formulas) for s in segments) == 600
    for segment in segments:
        assert len(segment.text) <= 300
        assert text_content(segment.ssml) == segment.text + "\n"
        assert segment.text.count("Step") == len(segment.formulas)


def test_breaks_at_a_segments_edges_become_the_pause_between_segments() -> None:
    """The stitch trims every segment to its speech: silence written at a segment's edge
    must reach the stitcher as its pause, or it would be cut away."""
    from ssml.annotations import Break
    from ssml.document import Chapter as DocChapter

    first, second = "Hello there.", "Next paragraph starts. It has a middle pause."
    chapter = DocChapter(
        title="T",
        paragraphs=(first, second),
        annotations=((Break(len(first), 2000),), (Break(0, 1500), Break(29, 300))),
    )
    segments = segment_chapter(chapter, SegmentPolicy(max_chars=30, paragraph_pause_ms=700))
    assert [s.pause_after_ms for s in segments] == [700 + 2000 + 1500, 0, 0]
    assert "2000ms" not in segments[0].ssml and "1500ms" not in segments[1].ssml
    assert '<break time="300ms"/>' in segments[2].ssml, "a break inside a segment stays"
