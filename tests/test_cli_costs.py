"""What an edit will cost, before it runs: ``plan`` and ``estimate`` count what is new
against what is rendered, and ``render`` says it before it starts."""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_cli import SAMPLE, narrate


def test_an_edit_is_priced_before_it_is_rendered(env: dict[str, str], tmp_path: Path) -> None:
    first = narrate(env, "render", SAMPLE, "--out", tmp_path / "one")
    assert first.returncode == 0, first.stderr
    assert "against what is rendered: 10 of 10 segments new" in first.stderr
    edited = tmp_path / "edited.md"
    edited.write_text(SAMPLE.read_text() + "\n\nA closing line was added to the story.\n")

    planned = narrate(env, "plan", edited, "--json")
    assert planned.returncode == 0, planned.stderr
    cost = json.loads(planned.stdout)["cost"]
    assert (cost["segments_new"], cost["chapters_changed"], cost["chapters"]) == (1, 1, 3)
    assert cost["characters_new"] == len("A closing line was added to the story.")
    assert [c["segments_new"] for c in cost["per_chapter"]] == [0, 0, 1]
    # another voice has rendered nothing yet
    other = json.loads(narrate(env, "plan", edited, "--json", "--voice", "en-gb").stdout)
    assert other["cost"]["segments_new"] == other["cost"]["segments"]

    estimated = json.loads(narrate(env, "estimate", edited, "--engine", "espeak", "--json").stdout)
    assert (estimated["new"]["segments"], estimated["new"]["chapters_to_stitch"]) == (1, 1)
    priced = narrate(env, "estimate", edited, "--engine", "cosyvoice", "--json")
    assert priced.returncode == 0, priced.stderr  # no key needed to price
    assert json.loads(priced.stdout)["new"]["billed_characters"] > 0

    second = narrate(env, "render", edited, "--out", tmp_path / "two")
    assert second.returncode == 0, second.stderr
    assert "against what is rendered: 1 of 11 segments new" in second.stderr
    assert "1 of 3 chapters to stitch" in second.stderr
