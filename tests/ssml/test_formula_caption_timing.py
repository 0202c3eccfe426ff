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
    from renderer.timing import TimedWord, align_words, tokenize

    document = annotate(
        Document((Chapter("One", PARAGRAPHS),), format="text"),
        lexicon=parse_simple("Nguyen = win\ntomato = /təˈmɑːtoʊ/\n"),
    )
    engine = EspeakEngine()
    by_text: dict[tuple[int, str], TimedWord] = {}
    for segment in segment_chapter(document.chapters[0], SegmentPolicy(1500)):
        result = engine.synthesize(SynthesisRequest(ssml=segment.ssml, voice="en-us"))
        words = align_words(segment.text, result.marks, result.duration_ms)
        # every display word is present, in order
        assert [w.text for w in words] == [segment.text[a:b] for a, b in tokenize(segment.text)]
        starts = [w.start_ms for w in words]
        assert starts == sorted(starts)
        assert all(0 <= w.start_ms <= w.end_ms <= result.duration_ms for w in words)
        by_text.update({(segment.index, w.text): w for w in words})
    place = {key[1]: key for key in by_text}  # a word's segment

    def at(text: str) -> tuple[int, int]:
        """(segment, start) of ``text``: comparable across segments of the chapter."""
        return place[text][0], by_text[place[text]].start_ms

    def end(text: str) -> tuple[int, int]:
        return place[text][0], by_text[place[text]].end_ms

    # the formula takes the time of its spoken alias ("x squared plus y squared equals
    # z squared" is long), and the word after it starts after it
    assert place["z²"][0] == place["x²"][0]
    assert end("z²")[1] - at("x²")[1] > 2000
    assert at("holds") >= end("z²")
    # an alias is timed on its display word, not on the word after it
    assert end("$5")[1] - at("$5")[1] > 300
    assert at("on") >= end("$5")
    assert at("March") < at("2024,")
    assert at("soup.") > at("tomato")
    assert at("∫₀¹") < at("and") < at("½.")
