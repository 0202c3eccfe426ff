"""The engine Protocol: the one interface every synthesis engine implements."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class Voice:
    """A voice an engine offers."""

    id: str  # what --voice takes
    name: str
    languages: tuple[str, ...] = ()
    gender: str | None = None


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


@runtime_checkable
class Engine(Protocol):
    """A synthesis engine. Implementations raise errors from :mod:`narrate.errors`."""

    name: str
    #: the voice used when the user names none
    default_voice: str
    #: the SSML dialect it accepts (see ssml.build.DIALECTS)
    ssml_dialect: str
    #: the most characters of text one segment may hold for this engine
    max_segment_chars: int

    def synthesize(self, request: SynthesisRequest) -> SynthesisResult: ...

    def voices(self) -> list[Voice]: ...

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
