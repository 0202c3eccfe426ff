"""The one error tree of narrate.

Every error narrate raises on purpose derives from :class:`NarrateError` and belongs to
one of two families:

* :class:`RetryableError` - transient trouble (timeouts, disconnects, throttling, 5xx).
  A task seeing one retries with capped exponential backoff.
* :class:`FatalError` - retrying cannot help (bad input, unknown voice, auth). The
  segment or job fails at once with the message, which tells the user what to do.

``exit_code`` is what the CLI exits with when the error reaches it:
1 = the job failed, 2 = bad usage or bad input.
"""

from __future__ import annotations


class NarrateError(Exception):
    """Root of every narrate error."""

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class RetryableError(NarrateError):
    """Transient failure: the same request may succeed later."""


class FatalError(NarrateError):
    """Permanent failure: retrying the same request cannot succeed."""


# --- bad input (exit 2) -------------------------------------------------------------


class InputError(FatalError):
    """The document given to narrate cannot be used."""

    exit_code = 2


class UnsupportedFormatError(InputError):
    """The input's format is not one narrate reads."""


class EmptyDocumentError(InputError):
    """The input holds no text to speak."""


class DocumentTooLargeError(InputError):
    """The input (or a member of an archive) exceeds a safety cap."""


class MalformedDocumentError(InputError):
    """The input is broken: invalid encoding, corrupt archive, unparsable markup."""


class UsageError(FatalError):
    """An option or configuration value is wrong."""

    exit_code = 2


class ConfigurationError(UsageError):
    """The environment-provided configuration is wrong."""


# --- engine failures --------------------------------------------------------------


class EngineError(NarrateError):
    """Base for failures reported by a synthesis engine."""


class VoiceNotFoundError(FatalError):
    """The requested voice does not exist for the engine."""

    exit_code = 2


class SynthesisFailedError(FatalError):
    """The engine could not synthesize a segment and will not on a retry."""


class EngineUnavailableError(RetryableError):
    """The engine could not be reached or timed out."""


class ProviderThrottledError(EngineUnavailableError):
    """The provider answered "too many requests": every worker pauses, the request waits."""


# --- provider throttle ------------------------------------------------------------


class ThrottleBusyError(RetryableError):
    """No permit to call the provider came within the throttle's longest wait."""


class ThrottleUnavailableError(RetryableError):
    """The shared throttle (Redis) cannot be reached: no provider request is sent."""


# --- audio / jobs -----------------------------------------------------------------


class AudioToolError(FatalError):
    """ffmpeg (or another audio tool) failed."""


class JobNotFoundError(FatalError):
    """No job has the given id."""

    exit_code = 2


class JobFailedError(FatalError):
    """A job ended with failed segments."""
