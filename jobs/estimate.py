"""What rendering an input would take, before anything runs (``narrate estimate``).

One plan of the input (:func:`jobs.render.cost_of`: read, annotated and segmented as
``narrate render`` does, no key needed) gives the segments, characters and billed
characters, in all and new against what is rendered. On top of it, from what the engine
declares (never its name):

* an engine that **bills** (``EngineSpec.billing``): the price of its model
  (:meth:`~renderer.engine.Engine.price_list`), and, when the provider limits requests
  (``EngineSpec.rate_limit_account``), the least time that limit allows;
* an engine that **runs here**: the audio length from its measured pace
  (``EngineSpec.chars_per_audio_s``) at the request's rate, the CPU time of synthesis from
  its measured cost (``EngineSpec.cpu_s_per_audio_s``) and of stitching and encoding from
  the output format's (:meth:`~renderer.stitch.AudioFormat.stitch_cpu_s_per_audio_s`), and
  the wall time on the processes a render uses (``NARRATE_WORKERS``), never more processes
  than there are segments.

The arithmetic is pure (:func:`local_time`, :func:`pace_for`); :func:`estimate` only plans.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from jobs.costs import EditCost
from jobs.render import RenderRequest, cost_of
from jobs.throttle import DEFAULT_LIMITS, RateLimit, limits_with_margin
from narrate.errors import UsageError
from narrate.settings import Settings
from renderer.engine import EngineSpec, PriceList
from renderer.engines import get_engine
from renderer.stitch import AudioFormat

DEFAULT_AUDIO = AudioFormat()


@dataclass(frozen=True)
class Pricing:
    """The price of a billed render, and of its part not rendered yet."""

    price_list: PriceList
    price: Decimal
    price_new: Decimal


@dataclass(frozen=True)
class Pace:
    """The least time a provider's request limit allows for ``requests``."""

    requests_per_s: float
    margin_ms: int
    min_s: float
    #: with narrate's safety margin added to each window
    min_paced_s: float


@dataclass(frozen=True)
class ChapterTime:
    index: int
    title: str
    segments: int
    characters: int
    audio_s: float


@dataclass(frozen=True)
class LocalTime:
    """Audio and synthesis time of a render on this machine."""

    chars_per_audio_s: float
    cpu_s_per_audio_s: float
    audio_s: float
    #: synthesis
    cpu_s: float
    #: stitching and encoding the chapters
    stitch_cpu_s: float
    processes: int
    #: the whole book's one encode after the chapters (m4b), on one core
    book_s: float
    #: of all, both on ``processes``, then the book
    wall_s: float
    #: of what is not rendered yet
    new_audio_s: float
    new_cpu_s: float
    chapters: tuple[ChapterTime, ...]


@dataclass(frozen=True)
class Estimate:
    engine: str
    #: the engine's name in messages ("espeak-ng", "CosyVoice")
    display_name: str
    cost: EditCost
    #: an engine that bills
    pricing: Pricing | None
    #: an engine whose provider limits requests
    pace: Pace | None
    #: an engine that runs here
    time: LocalTime | None
    #: what the chapters are written as ("MP3 at 22050 Hz, 128 kbit/s")
    audio_format: str = ""


def pace_for(requests: int, limit: RateLimit) -> Pace:
    """The least time ``limit`` allows for ``requests`` (pure)."""
    per_second = limit.requests / (limit.window_ms / 1000)
    return Pace(
        per_second,
        limit.margin_ms,
        requests / per_second,
        requests * limit.span_s / limit.requests,
    )


def local_time(
    cost: EditCost,
    spec: EngineSpec,
    rate: float,
    workers: int,
    audio: AudioFormat = DEFAULT_AUDIO,
) -> LocalTime:
    """Audio, CPU and wall time of rendering ``cost`` with ``spec``'s engine here into
    ``audio`` (pure)."""
    pace, cpu = spec.chars_per_audio_s, spec.cpu_s_per_audio_s
    if pace is None or cpu is None:
        raise UsageError(
            f"narrate has no measured pace for the {spec.name} engine to estimate from"
        )

    def audio_s(characters: int) -> float:
        return characters / pace / rate

    chapters = tuple(
        ChapterTime(c.index, c.title, c.segments, c.characters, round(audio_s(c.characters), 1))
        for c in cost.per_chapter
    )
    total_cpu_s = audio_s(cost.characters) * cpu
    stitch_cpu_s = audio_s(cost.characters) * audio.stitch_cpu_s_per_audio_s()
    processes = max(1, min(workers, cost.segments))
    book_s = audio_s(cost.characters) * audio.book_s_per_audio_s()
    return LocalTime(
        chars_per_audio_s=pace,
        cpu_s_per_audio_s=cpu,
        audio_s=audio_s(cost.characters),
        cpu_s=total_cpu_s,
        stitch_cpu_s=stitch_cpu_s,
        processes=processes,
        book_s=book_s,
        wall_s=(total_cpu_s + stitch_cpu_s) / processes + book_s,
        new_audio_s=audio_s(cost.characters_new),
        new_cpu_s=audio_s(cost.characters_new) * cpu,
        chapters=chapters,
    )


def estimate(request: RenderRequest, settings: Settings, prices: Path | None = None) -> Estimate:
    """What rendering ``request`` would take (see the module docstring); ``prices`` is a
    price table file for an engine that bills (its own default otherwise)."""
    prepared, cost = cost_of(request, settings)
    engine = get_engine(request.engine)
    spec = engine.spec
    pricing = pace = time = None
    if spec.billing:
        price_list = engine.price_list(prepared.voicing.request(ssml=""), prices)
        if price_list is not None:
            pricing = Pricing(
                price_list,
                price_list.price(cost.billed_characters or 0),
                price_list.price(cost.billed_characters_new or 0),
            )
    else:
        time = local_time(cost, spec, request.rate, settings.workers, request.audio)
    limits = (
        DEFAULT_LIMITS
        if settings.throttle_margin_ms is None
        else limits_with_margin(settings.throttle_margin_ms)
    )
    account = spec.rate_limit_account
    if account is not None and account in limits:
        pace = pace_for(cost.segments, limits[account])
    return Estimate(
        spec.name, spec.display_name, cost, pricing, pace, time, describe(request.audio)
    )


def describe(audio: AudioFormat) -> str:
    """``MP3``, ``MP3 at 44100 Hz, 192 kbit/s``: a format as the user asked for it."""
    parts = [f"{audio.sample_rate_hz} Hz"] if audio.sample_rate_hz else []
    parts += [f"{audio.bitrate_kbps} kbit/s"] if audio.bitrate_kbps else []
    name = audio.container.upper()
    return f"{name} at {', '.join(parts)}" if parts else name
