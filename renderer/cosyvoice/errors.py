"""CosyVoice errors: every documented service code mapped to retryable or fatal.

The classes refine :mod:`narrate.errors` (no new families): a task retries on
:class:`~narrate.errors.RetryableError` and fails the segment at once on
:class:`~narrate.errors.FatalError`. Messages name the service's code and the task id
(never the API key) and say what to do.

Map (reference §5.4, §2.3, §1.2, §8.2):

==========================================  =================  ================================
service answer                              class              why / what to do
==========================================  =================  ================================
Throttling, Throttling.RateQuota,           Throttled          retry after a pause of the
Throttling.BurstRate,                       (retryable)        shared throttle
Throttling.Concurrency, LimitRequests,
HTTP 429 at the handshake
Throttling.AllocationQuota                  Throttled          clears slowly: a few retries,
                                                               then raise the quota
InternalError, ServiceUnavailable,          ServiceError       server side; retry
GatewayTimeout, RequestTimeOut, HTTP 5xx    (retryable)
socket dropped before task-finished,        ServiceError       retry with a new connection
no answer within the timeout                (retryable)
CLIENT_ERROR "request timeout after 23 s"   ServiceError       our text gap; a re-run works
audio shorter than its text (truncated)     Truncated          retry; persistent truncation
                                            (retryable)        means sentences are too long
Arrearage, PrepaidBillOverdue,              AccountError       top up / buy the product
PostpaidBillOverdue, CommodityNotPurchased  (fatal)
InvalidApiKey, AccessDenied, HTTP 401/403   AuthError (fatal,  fix DASHSCOPE_API_KEY/region
                                            exit 2)
InvalidParameter (418/411/431: voice,       RequestRejected    fix voice/model/option; the
428: instruction, missing model/voice,      (fatal)            message says which
empty text, SSML errors, limits),
DataInspectionFailed, WebSocket close 1007
unknown code                                RequestRejected    fatal unless it looks
                                            or ServiceError    transient (Internal/Timeout/
                                                               Unavailable in the code)
==========================================  =================  ================================
"""

from __future__ import annotations

from dataclasses import dataclass

from narrate.errors import (
    ConfigurationError,
    EngineUnavailableError,
    ProviderThrottledError,
    SynthesisFailedError,
    UsageError,
)

#: how long the shared throttle is paused after a throttling answer
THROTTLE_PAUSE_S = 1.5
ALLOCATION_QUOTA_PAUSE_S = 10.0


class CosyVoiceUsageError(UsageError):
    """A request the service would reject, refused before sending it (exit 2)."""


class CosyVoiceConfigError(ConfigurationError):
    """Missing or wrong CosyVoice configuration: key, region, URL, price table (exit 2)."""


class CosyVoiceAuthError(ConfigurationError):
    """The service refused the API key (exit 2 when it reaches the command line)."""


class CosyVoiceServiceError(EngineUnavailableError):
    """Transient service trouble: 5xx codes, dropped connections, timeouts."""

    def __init__(self, message: str, *, hint: str | None = None, code: str | None = None):
        super().__init__(message, hint=hint)
        self.code = code


class CosyVoiceThrottledError(CosyVoiceServiceError, ProviderThrottledError):
    """The service said "too many requests"; the shared throttle is paused."""

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        code: str | None = None,
        pause_s: float = THROTTLE_PAUSE_S,
    ) -> None:
        super().__init__(message, hint=hint, code=code)
        self.pause_s = pause_s


class CosyVoiceTruncatedError(CosyVoiceServiceError):
    """The audio the service returned is shorter than its text: treated as transient."""


class CosyVoiceSentenceTooLongError(SynthesisFailedError):
    """A sentence the service caps at 33.44 s and narrate cannot cut: retrying cannot help."""


class CosyVoiceRejectedError(SynthesisFailedError):
    """The service rejected the request; the same request will fail again."""

    def __init__(self, message: str, *, hint: str | None = None, code: str | None = None):
        super().__init__(message, hint=hint)
        self.code = code


class CosyVoiceAccountError(CosyVoiceRejectedError):
    """The account cannot be billed (arrears, product not purchased)."""


@dataclass(frozen=True)
class _Rule:
    kind: str  # "throttle", "service", "rejected", "account", "auth"
    hint: str
    pause_s: float = THROTTLE_PAUSE_S


_THROTTLE_HINT = (
    "the account's rate limit (3 new tasks/s) was hit; narrate pauses every worker and "
    "retries. If it keeps happening, another program shares the key"
)
_SERVER_HINT = "a fault on the service side; the segment is retried automatically"
_ACCOUNT_HINT = (
    "the Alibaba Cloud account behind DASHSCOPE_API_KEY cannot be billed: top it up or "
    "buy the CosyVoice product in the Model Studio console, then render again "
    "(finished segments are reused)"
)
_AUTH_HINT = (
    "check DASHSCOPE_API_KEY and that it belongs to the region in "
    "NARRATE_COSYVOICE_REGION (keys are per region: a Beijing key fails in Singapore)"
)

RULES: dict[str, _Rule] = {
    "Throttling": _Rule("throttle", _THROTTLE_HINT),
    "Throttling.RateQuota": _Rule("throttle", _THROTTLE_HINT),
    "Throttling.BurstRate": _Rule(
        "throttle", "traffic ramped up too steeply; narrate pauses and retries"
    ),
    "Throttling.Concurrency": _Rule(
        "throttle", "too many tasks at once for the account; lower NARRATE_WORKERS"
    ),
    "LimitRequests": _Rule("throttle", _THROTTLE_HINT),
    "Throttling.AllocationQuota": _Rule(
        "throttle",
        "the account's allocated quota is used up; it clears slowly. If retries do not "
        "help, raise the quota in the Model Studio console",
        ALLOCATION_QUOTA_PAUSE_S,
    ),
    "InternalError": _Rule("service", _SERVER_HINT),
    "InternalError.Algo": _Rule("service", _SERVER_HINT),
    "ServiceUnavailable": _Rule("service", _SERVER_HINT),
    "GatewayTimeout": _Rule("service", _SERVER_HINT),
    "RequestTimeOut": _Rule("service", _SERVER_HINT),
    "CLIENT_ERROR": _Rule(
        "service",
        "the service waited more than 23 s for text (the worker stalled); retried with a new task",
    ),
    "Arrearage": _Rule("account", _ACCOUNT_HINT),
    "PrepaidBillOverdue": _Rule("account", _ACCOUNT_HINT),
    "PostpaidBillOverdue": _Rule("account", _ACCOUNT_HINT),
    "CommodityNotPurchased": _Rule("account", _ACCOUNT_HINT),
    "InvalidApiKey": _Rule("auth", _AUTH_HINT),
    "AccessDenied": _Rule("auth", _AUTH_HINT),
    "DataInspectionFailed": _Rule(
        "rejected",
        "the service's content-safety check blocked this text; rephrase the segment or "
        "leave it out",
    ),
    "InvalidParameter": _Rule("rejected", "the service rejected a parameter of the request"),
    # enrollment (§8.2)
    "Audio.DecoderError": _Rule(
        "rejected", "the service could not decode the sample: use WAV (16-bit), MP3 or M4A"
    ),
    "Audio.FileSizeExceed": _Rule("rejected", "the sample is over 10 MB: shorten it"),
    "Audio.AudioRateError": _Rule(
        "rejected", "the sample's rate is too low: record at 16 kHz or more"
    ),
    "Audio.AudioSilentError": _Rule(
        "rejected", "the sample is (nearly) silent: record at least 5 s of clear speech"
    ),
}

#: hints by the text of InvalidParameter (and code-less) messages
MESSAGE_HINTS: tuple[tuple[str, str], ...] = (
    (
        "error code: 418",
        "the voice does not exist, does not fit the model (v3 voices on v3 models, *_v2 "
        "voices on cosyvoice-v2, a cloned voice only on its target model), or a cloned "
        "voice is not ready (see `narrate voices status`)",
    ),
    ("error [411]", "the voice belongs to another model: pick a voice made for --model"),
    ("error code: 431", "the cloned voice was made for another model: use its target model"),
    (
        "error code: 428",
        "the instruction is too long or not one the voice accepts: shorten it or drop "
        "--option instruction",
    ),
    ("task can not be null", "a protocol fault in narrate (payload.input missing): report it"),
    ("payload.model", "a protocol fault in narrate (model missing): report it"),
    ("Request voice is invalid", "give a voice with --voice (see `narrate voices list`)"),
    ("Please ensure input text is valid", "the segment's text is empty or not valid UTF-8"),
    (
        "Text request limit violated",
        "SSML mode allows exactly one text message per task; report it",
    ),
    (
        "SSML text is not supported",
        "this voice/model has no SSML: render with --option ssml=off",
    ),
    ("exceed", "the text is over the service's length limit: lower the segment size"),
)


def _hint_for(code: str, message: str, default: str) -> str:
    for needle, hint in MESSAGE_HINTS:
        if needle.lower() in message.lower():
            return hint
    return default


def describe(code: str | None, message: str, task_id: str | None) -> str:
    where = f" (task {task_id})" if task_id else ""
    shown = code or "no code"
    return f"CosyVoice refused the request{where}: {shown}: {message}".rstrip(": ")


def service_error(
    code: str | None, message: str, task_id: str | None
) -> CosyVoiceServiceError | CosyVoiceRejectedError | CosyVoiceAuthError:
    """The narrate error for a ``task-failed`` event or an enrollment error body."""
    rule = RULES.get(code or "")
    text = describe(code, message, task_id)
    if rule is None and _looks_throttled(code, message):
        return CosyVoiceThrottledError(text, hint=_THROTTLE_HINT, code=code)
    if rule is None:
        transient = any(
            w in (code or "") for w in ("Internal", "Timeout", "TimeOut", "Unavailable")
        )
        if transient:
            return CosyVoiceServiceError(text, hint=_SERVER_HINT, code=code)
        return CosyVoiceRejectedError(
            text,
            hint=_hint_for(code or "", message, "an answer narrate does not know; not retried"),
            code=code,
        )
    if rule.kind == "throttle":
        return CosyVoiceThrottledError(text, hint=rule.hint, code=code, pause_s=rule.pause_s)
    if rule.kind == "service":
        return CosyVoiceServiceError(text, hint=rule.hint, code=code)
    if rule.kind == "account":
        return CosyVoiceAccountError(text, hint=rule.hint, code=code)
    if rule.kind == "auth":
        return CosyVoiceAuthError(text, hint=rule.hint)
    return CosyVoiceRejectedError(text, hint=_hint_for(code or "", message, rule.hint), code=code)


def _looks_throttled(code: str | None, message: str) -> bool:
    """An unlisted throttling answer: any ``Throttling*`` code or a rate-limit message."""
    return (code or "").startswith("Throttling") or "rate limit" in message.lower()


def handshake_error(
    status: int, body: str, url: str
) -> CosyVoiceServiceError | CosyVoiceRejectedError | CosyVoiceAuthError:
    """The narrate error for an HTTP status that refused the WebSocket upgrade (§1.2)."""
    detail = body.strip()[:200]
    where = f"CosyVoice at {url} refused the connection: HTTP {status}"
    if detail:
        where += f" ({detail})"
    if status in (401, 403):
        return CosyVoiceAuthError(where, hint=_AUTH_HINT)
    if status == 429:
        return CosyVoiceThrottledError(where, hint=_THROTTLE_HINT, code="HTTP429")
    if status >= 500 or status in (408, 409):
        return CosyVoiceServiceError(where, hint=_SERVER_HINT, code=f"HTTP{status}")
    return CosyVoiceRejectedError(
        where, hint="check NARRATE_COSYVOICE_URL / NARRATE_COSYVOICE_REGION", code=f"HTTP{status}"
    )
