"""Real espeak-ng synthesis of formulas and aliases gives sane caption word times."""

from __future__ import annotations

from ssml.annotate import annotate
from ssml.document import Chapter, Document
from ssml.lexicon import parse_simple
from ssml.segment import SegmentPolicy, segment_chapter

PARAGRAPHS = (
    "By Pythagoras, $x^2 + y^2 = z^2$ holds for every right triangle.",
    "It cost $5 on 16 March 2024, said Dr. Nguyen, who likes tomato soup.",
    r"The area is $\int_0^1 x\,dx$ and ends with $\frac{1}{2}$.",
)


def test_caption_words_are_timed_where_they_are_spoken() -> None:
    from renderer.engine import SynthesisRequest
    from renderer.espeak import EspeakEngine
    from renderer.timing import align_words, tokenize

    document = annotate(
        Document((Chapter("One", PARAGRAPHS),), format="text"),
        lexicon=parse_simple("Nguyen = win\ntomato = /təˈmɑːtoʊ/\n"),
    )
    engine = EspeakEngine()
    for segment in segment_chapter(document.chapters[0], SegmentPolicy(1500)):
        result = engine.synthesize(SynthesisRequest(ssml=segment.ssml, voice="en-us"))
        words = align_words(segment.text, result.marks, result.duration_ms)
        # every display word is present, in order
        assert [w.text for w in words] == [segment.text[a:b] for a, b in tokenize(segment.text)]
        starts = [w.start_ms for w in words]
        assert starts == sorted(starts)
        assert all(0 <= w.start_ms <= w.end_ms <= result.duration_ms for w in words)
        by_text = {w.text: w for w in words}
        # the formula takes the time of its spoken alias ("x squared plus y squared equals
        # z squared" is long), and the word after it starts after it
        formula_ms = by_text["z²"].end_ms - by_text["x²"].start_ms
        assert formula_ms > 2000
        assert by_text["holds"].start_ms >= by_text["z²"].end_ms
        # an alias is timed on its display word, not on the word after it
        assert by_text["$5"].end_ms - by_text["$5"].start_ms > 300
        assert by_text["on"].start_ms >= by_text["$5"].end_ms
        assert by_text["March"].start_ms < by_text["2024,"].start_ms
        assert by_text["soup."].start_ms > by_text["tomato"].start_ms
        assert by_text["∫₀¹"].start_ms < by_text["and"].start_ms < by_text["½."].start_ms
