"""What a render will cost against what is rendered: new segments, characters, billed
characters and changed chapters, found by content hash."""

from __future__ import annotations

from pathlib import Path

from jobs.costs import edit_cost
from jobs.planning import Voicing, segment_hash
from jobs.storage import Storage
from renderer.engines import get_engine
from tests.jobs.builders import STUB, planned_chapter


def render_segments(storage: Storage, voicing: Voicing, texts: list[str]) -> None:
    """Store audio for these segments, as a finished render would have."""
    engine = get_engine(voicing.engine)
    for text in texts:
        ssml = f"<speak>{text}</speak>"
        result = engine.synthesize(voicing.request(ssml))
        storage.save_segment(
            segment_hash(voicing, text, ssml), result.pcm, result.sample_rate_hz, []
        )


def test_new_segments_and_changed_chapters_are_what_storage_lacks(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "storage")
    plan = [
        planned_chapter(1, ["Alpha one.", "Alpha two."]),
        planned_chapter(2, ["Beta one.", "Beta two.", "Beta three."]),
    ]
    engine = get_engine("stub")
    nothing = edit_cost(plan, STUB, engine, storage)
    assert (nothing.segments, nothing.segments_new, nothing.chapters_changed) == (5, 5, 2)
    assert (
        nothing.characters
        == nothing.characters_new
        == sum(s.chars for c in plan for s in c.segments)
    )
    assert nothing.billed_characters is None and nothing.billed_characters_new is None

    render_segments(storage, STUB, ["Alpha one.", "Alpha two.", "Beta one.", "Beta three."])
    cost = edit_cost(plan, STUB, engine, storage)
    assert (cost.segments, cost.segments_new, cost.chapters, cost.chapters_changed) == (5, 1, 2, 1)
    assert cost.characters_new == len("Beta two.")
    assert [(c.index, c.segments_new) for c in cost.per_chapter] == [(1, 0), (2, 1)]
    assert cost.summary() == ("1 of 5 segments new (9 of 49 characters), 1 of 2 chapters to stitch")
    # another voice is another sound: nothing of it is rendered
    louder = Voicing("stub", "stub", volume=1.5)
    assert edit_cost(plan, louder, engine, storage).segments_new == 5


def test_a_billed_engine_counts_new_billed_characters_as_its_provider_does(
    tmp_path: Path,
) -> None:
    storage = Storage(tmp_path / "storage")
    plan = [planned_chapter(1, ["Hello there.", "你好。"])]
    voicing = Voicing("cosyvoice", "longanyang", model="cosyvoice-v3-flash")
    cost = edit_cost(plan, voicing, get_engine("cosyvoice"), storage)
    # a Chinese character counts 2 (punctuation 1); the tags are not counted
    assert cost.billed_characters == cost.billed_characters_new == len("Hello there.") + 2 * 2 + 1
    assert "billed characters" in cost.summary()
