"""The engine Protocol (the one interface every synthesis engine implements) and
:class:`EngineSpec`, the declaration each engine module makes of itself.

An engine is one module that declares ``SPEC = EngineSpec(...)``: its name, a factory,
the SSML dialect object it takes, its capabilities and limits. The registry
(:mod:`renderer.engines`) is a table of those modules; nothing else in narrate asks an
engine's name what it can do.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Protocol, runtime_checkable

from ssml.dialects import Dialect


@dataclass(frozen=True)
class Voice:
    """A voice an engine offers."""

    id: str  # what --voice takes
    name: str
    languages: tuple[str, ...] = ()
    gender: str | None = None
    #: the rate of the audio it makes, where the engine knows it without synthesizing
    sample_rate_hz: int | None = None
    #: under what terms its audio may be used, as far as narrate knows (None: unknown)
    licence: str | None = None


@dataclass(frozen=True)
class SynthesisRequest:
    """What to speak and how.

    ``ssml`` is a complete ``<speak>`` document valid for the engine. Its text content
    (all text nodes in document order) is the segment text that word marks index into.
    ``rate``, ``pitch`` and ``volume`` are engine-neutral multipliers: 1.0 is the
    voice's default, 2.0 twice as fast / high / loud, 0.5 half.
    ``model`` names the engine's model where it has several (CosyVoice); ``options`` are
    further engine-specific settings as sorted ``(name, value)`` pairs (instruction,
    seed, language hints, ...). Everything here is part of the segment's content hash.
    """

    ssml: str
    voice: str
    rate: float = 1.0
    pitch: float = 1.0
    volume: float = 1.0
    model: str | None = None
    options: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class WordMark:
    """A word the engine reported: character span in the segment text and its times.

    ``end_ms`` is ``None`` when the engine only knows when the word starts.
    """

    char_start: int
    char_end: int
    start_ms: int
    end_ms: int | None = None


@dataclass(frozen=True)
class SynthesisResult:
    """Mono 16-bit little-endian PCM plus the word marks the engine gave."""

    pcm: bytes
    sample_rate_hz: int
    marks: tuple[WordMark, ...]
    #: characters the provider bills for this request (None: not a billed engine)
    billed_chars: int | None = None

    @property
    def sample_count(self) -> int:
        return len(self.pcm) // 2

    @property
    def duration_ms(self) -> int:
        return self.sample_count * 1000 // self.sample_rate_hz


class RequestGate(Protocol):
    """Where an engine asks permission for each request to a rate-limited provider.

    ``jobs`` implements it (a throttle shared by every process that uses one provider
    account); engines only call it, so ``renderer`` never depends on ``jobs``.

    How an engine uses it: everything that can be done before the request is done first
    (connection open, message serialised), then the permit is taken, the request sent,
    and the block left as soon as the provider has answered it (accepted or refused) or
    the request failed. The gate counts the request as arriving at the provider all the
    while, and logs it when the block ends: that moment is after the provider counted it,
    so however late the provider stamps an arrival (a busy process or network between
    them), its count never goes over the limit. Keep the block short: only the round
    trip to the provider's first answer belongs in it.
    """

    def permit(self, account: str) -> AbstractContextManager[None]:
        """Block until one new request to ``account`` may be sent; hold it until the
        provider's first answer (see the class docstring)."""
        ...

    def pause(self, account: str, seconds: float) -> None:
        """The provider answered "throttled": hold every request to ``account`` for a while."""
        ...


class OpenGate:
    """A gate that never waits: for engines without a rate limit, and for tests."""

    def permit(self, account: str) -> AbstractContextManager[None]:
        return nullcontext()

    def pause(self, account: str, seconds: float) -> None:
        return None


def engine_cache_dir(storage_root: Path) -> Path:
    """Where engines keep files they derive once per model, under the storage folder
    (shared by the workers like the audio)."""
    return storage_root / "engines"


@dataclass(frozen=True)
class EngineSetup:
    """What a process gives the engines it creates.

    ``gate`` is asked before each request to a rate-limited provider; ``cache_dir`` is
    where an engine may keep files it derives once and reuses (Piper's patched models),
    None for the default (``NARRATE_STORAGE_DIR``).
    """

    gate: RequestGate = field(default_factory=lambda: OpenGate())
    cache_dir: Path | None = None


@dataclass(frozen=True)
class EngineSpec:
    """What an engine is, declared once in its own module as ``SPEC``.

    The registry (:mod:`renderer.engines`) lists these; the CLI, planning, estimates and
    credits read them instead of switching on engine names.
    """

    #: what ``--engine`` takes
    name: str
    #: the engine's name in credits and messages ("espeak-ng", "Piper")
    display_name: str
    #: makes the process's instance (called once per process and setup)
    factory: Callable[[EngineSetup], Engine]
    #: the SSML dialect object its documents are compiled to
    dialect: Dialect
    #: the most characters of text one segment may hold (an instance may be configured
    #: otherwise: ``Engine.max_segment_chars`` is what counts)
    max_segment_chars: int
    #: whether ``--pitch`` other than 1.0 can be honoured
    pitch: bool = True
    #: whether the engine reports word marks (else words are spread evenly)
    word_marks: bool = True
    #: whether the provider bills characters (``narrate estimate`` prices them)
    billing: bool = False
    #: the family of provider accounts whose rate limit the request gate enforces
    #: (the part of an account id before "/"), None for an engine without one
    rate_limit_account: str | None = None
    #: whether the instance depends on ``EngineSetup.cache_dir``
    uses_cache: bool = False
    #: how to install it when it is an optional extra ("pip install 'narrate[piper]'")
    install_hint: str | None = None
    #: characters of English text its default voice speaks per second at rate 1.0, and
    #: the CPU seconds one process spends per second of audio: what ``narrate estimate``
    #: predicts time from for an engine that runs here (None: not measured)
    chars_per_audio_s: float | None = None
    cpu_s_per_audio_s: float | None = None

    @property
    def uses_gate(self) -> bool:
        return self.rate_limit_account is not None


@dataclass(frozen=True)
class PriceList:
    """What a billing provider charges for the model a request uses: ``per_10k`` in
    ``currency`` per 10,000 billed characters, and where that price comes from."""

    model: str
    currency: str
    per_10k: Decimal
    source: str
    #: the provider region the account bills in, where the provider has regions
    region: str | None = None

    def price(self, billed_chars: int) -> Decimal:
        """The price of ``billed_chars``, to a ten-thousandth of the currency."""
        return (self.per_10k * billed_chars / 10_000).quantize(Decimal("0.0001"), ROUND_HALF_UP)


@runtime_checkable
class Engine(Protocol):
    """A synthesis engine. Implementations raise errors from :mod:`narrate.errors`."""

    #: the declaration of the engine's module (its ``SPEC``)
    spec: EngineSpec
    name: str
    #: the voice used when the user names none
    default_voice: str
    #: the name of the SSML dialect it accepts (``spec.dialect.name``)
    ssml_dialect: str
    #: the most characters of text one segment may hold for this engine
    max_segment_chars: int

    def synthesize(self, request: SynthesisRequest) -> SynthesisResult: ...

    def voices(self) -> list[Voice]: ...

    def complete(self, request: SynthesisRequest) -> SynthesisRequest:
        """The request with every setting that shapes the audio made explicit (what a
        job should store, so that it is part of the segment's content hash); an engine
        whose defaults are fixed returns it unchanged. Checks it as :meth:`check` does."""
        ...

    def billed_chars(self, request: SynthesisRequest) -> int | None:
        """The characters the provider would bill for ``request`` (None: an engine that
        does not bill), counted as the provider counts them, without sending it."""
        ...

    def price_list(self, request: SynthesisRequest, prices: Path | None) -> PriceList | None:
        """The price of ``request``'s model (from the ``prices`` file when given, else the
        engine's configuration, else the provider's list prices); None for an engine that
        does not bill."""
        ...

    def check(self, request: SynthesisRequest) -> None:
        """Refuse, before any synthesis, a request the engine would reject.

        Checks everything knowable locally except the SSML (which may be empty here):
        voice (:class:`~narrate.errors.VoiceNotFoundError`), model, options, prosody
        ranges and credentials (:class:`~narrate.errors.UsageError` family).
        """
        ...


#: engine-neutral prosody ranges: multipliers of the voice's default
RATE_RANGE = (0.5, 2.0)
PITCH_RANGE = (0.5, 2.0)
VOLUME_RANGE = (0.0, 2.0)


def validate_prosody(rate: float, pitch: float, volume: float) -> None:
    """Refuse rate/pitch/volume multipliers outside what every engine supports."""
    from narrate.errors import UsageError

    for name, value, (low, high) in (
        ("rate", rate, RATE_RANGE),
        ("pitch", pitch, PITCH_RANGE),
        ("volume", volume, VOLUME_RANGE),
    ):
        if not low <= value <= high:
            raise UsageError(
                f"--{name} {value} is out of range",
                hint=f"give a multiplier of the voice's default between {low} and {high}"
                f" (1.0 = unchanged)",
            )
