"""A bulletin's script and its fit to a duration (pure).

The script is an intro, then for each story a line naming its source and title and the
story itself, then an outro. :func:`fit` chooses what is read from an estimate: each
part's spoken length from the voice's measured speaking rate (milliseconds per
character) plus the pauses; whole stories in the selection's order while they fit, then
the next one trimmed at a sentence boundary to fill what is left. After the audio is
made and measured, :func:`pauses_for` spreads what is still missing (or too much) over
the pauses between parts, each within its bounds, so the bulletin lands on its target.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, replace

from ssml.bulletin import Definition
from ssml.news import Item, sentences

#: the pause between two parts of a bulletin, and how far it may be stretched or shrunk
GAP_MS = 900
MIN_GAP_MS = 400
MAX_GAP_MS = 2500
#: the pause between a story's headline line and its text
HEADLINE_GAP_MS = 500


@dataclass(frozen=True)
class Part:
    """One part of the script: ``blocks`` are its paragraphs (spoken in order)."""

    kind: str  # "intro" | "story" | "outro"
    blocks: tuple[str, ...]
    item: Item | None = None
    #: sentences of the story left out to fit
    trimmed: int = 0

    @property
    def chars(self) -> int:
        return sum(len(b) for b in self.blocks)


def template_fields(definition: Definition, now: dt.datetime) -> dict[str, str]:
    """What templates may say: the bulletin's name and the local weekday, date and time."""
    local = now.astimezone(_zone(definition.timezone))
    return {
        "name": definition.name,
        "weekday": local.strftime("%A"),
        "date": f"{local.strftime('%B')} {local.day}, {local.year}",
        "time": local.strftime("%H:%M"),
    }


def _zone(name: str) -> dt.tzinfo:
    import zoneinfo

    return zoneinfo.ZoneInfo(name)


def script(definition: Definition, items: Sequence[Item], now: dt.datetime) -> list[Part]:
    """The whole script for ``items`` (nothing trimmed yet)."""
    fields = template_fields(definition, now)
    parts = [Part("intro", (definition.intro.format(**fields),))]
    for item in items:
        headline = definition.transition.format(**fields, source=item.source, title=item.title)
        title = item.title if item.title and item.title not in headline else ""
        first = " ".join(p for p in (headline, _stop(title)) if p)
        parts.append(Part("story", tuple(b for b in (first, item.text) if b), item))
    parts.append(Part("outro", (definition.outro.format(**fields),)))
    return parts


def _stop(text: str) -> str:
    text = text.strip()
    return text if not text or text[-1] in ".!?…:" else text + "."


@dataclass(frozen=True)
class Estimate:
    ms_per_char: float
    #: silence the audio adds whatever is read (the mastering profile's ends)
    fixed_ms: int = 0

    def part_ms(self, part: Part) -> int:
        headline = HEADLINE_GAP_MS if len(part.blocks) > 1 else 0
        return round(part.chars * self.ms_per_char) + headline

    def total_ms(self, parts: Sequence[Part]) -> int:
        gaps = GAP_MS * max(0, len(parts) - 1)
        return self.fixed_ms + gaps + sum(self.part_ms(p) for p in parts)


def fit(parts: Sequence[Part], target_ms: int, estimate: Estimate) -> list[Part]:
    """The intro, whole stories while they fit, the next one trimmed to fill, the outro."""
    intro, stories, outro = parts[0], list(parts[1:-1]), parts[-1]
    chosen = [intro]
    for story in stories:
        room = target_ms - estimate.total_ms([*chosen, story, outro])
        if room >= 0:
            chosen.append(story)
            continue
        trimmed = trim_story(story, estimate.part_ms(story) + room, estimate)
        if trimmed is not None:
            chosen.append(trimmed)
        break
    return [*chosen, outro]


def trim_story(story: Part, budget_ms: int, estimate: Estimate) -> Part | None:
    """``story`` cut after the sentence that keeps it within ``budget_ms`` (None: not even
    its first sentence fits)."""
    if len(story.blocks) < 2:
        return None
    headline, body = story.blocks[0], story.blocks[1]
    said = sentences(body)
    kept: list[str] = []
    for sentence in said:
        candidate = replace(story, blocks=(headline, " ".join([*kept, sentence])))
        if estimate.part_ms(candidate) > budget_ms:
            break
        kept.append(sentence)
    if not kept:
        return None
    return replace(story, blocks=(headline, " ".join(kept)), trimmed=len(said) - len(kept))


def drop_sentences(parts: Sequence[Part], over_ms: int, estimate: Estimate) -> list[Part]:
    """``parts`` shortened by about ``over_ms``: sentences taken off the last stories (a
    story whose text goes entirely goes with its headline)."""
    out = list(parts)
    index = len(out) - 2  # the last story (the outro stays)
    while over_ms > 0 and index >= 1:
        story = out[index]
        if story.kind != "story":
            index -= 1
            continue
        budget = estimate.part_ms(story) - over_ms
        trimmed = trim_story(story, budget, estimate)
        if trimmed is None:
            over_ms -= estimate.part_ms(story) + GAP_MS
            del out[index]
        else:
            over_ms -= estimate.part_ms(story) - estimate.part_ms(trimmed)
            out[index] = trimmed
        index -= 1
    return out


def pauses_for(gaps: int, missing_ms: int) -> tuple[list[int], int]:
    """The ``gaps`` pauses between parts that add ``missing_ms`` (negative: take away) to
    the default ones, each kept within its bounds; and what they could not absorb."""
    if gaps <= 0:
        return [], missing_ms
    wanted = GAP_MS + missing_ms / gaps
    pause = round(min(max(wanted, MIN_GAP_MS), MAX_GAP_MS))
    left = missing_ms - (pause - GAP_MS) * gaps
    return [pause] * gaps, left
