"""CosyVoice configuration from the environment (read when the engine is created).

=============================  =========================================================
variable                       meaning
=============================  =========================================================
``DASHSCOPE_API_KEY``          the Model Studio API key (required to synthesize or
                               manage voices; never logged, stored or shown)
``NARRATE_COSYVOICE_REGION``   ``beijing`` (default, like the SDK) or ``singapore``;
                               keys are per region (reference §1.1)
``NARRATE_COSYVOICE_WORKSPACE`` a workspace id: use the workspace-dedicated host
                               ``{id}.cn-beijing.maas.aliyuncs.com`` (or
                               ``ap-southeast-1``) and send ``X-DashScope-WorkSpace``
``NARRATE_COSYVOICE_URL``      override the WebSocket URL (e.g. the simulator:
                               ``ws://127.0.0.1:8765/api-ws/v1/inference``); the
                               enrollment API is then on the same host and port
``NARRATE_COSYVOICE_MODEL``    the model when ``--model`` is not given
                               (default ``cosyvoice-v3-flash``)
``NARRATE_COSYVOICE_TIMEOUT_S`` seconds to wait for any answer (default 30)
``NARRATE_COSYVOICE_SEGMENT_CHARS`` segment size (default 1000; 200-10000)
``NARRATE_COSYVOICE_PRICES``   a JSON price table for ``narrate estimate``
=============================  =========================================================

The account id given to the request gate is ``cosyvoice/<12 hex>``: a sha256 of key,
region and host, so the raw key never reaches a file name or a log.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from renderer.cosyvoice.errors import CosyVoiceConfigError
from renderer.cosyvoice.models import (
    DEFAULT_MODEL,
    ENROLLMENT_PATH,
    MODELS,
    REGIONS,
    WS_PATH,
    normalize_region,
)

DEFAULT_TIMEOUT_S = 30.0
DEFAULT_SEGMENT_CHARS = 1000
SEGMENT_CHARS_RANGE = (200, 10_000)


@dataclass(frozen=True)
class ServiceConfig:
    region: str
    ws_url: str
    http_url: str  # the enrollment endpoint
    workspace: str | None = None
    default_model: str = DEFAULT_MODEL
    timeout_s: float = DEFAULT_TIMEOUT_S
    segment_chars: int = DEFAULT_SEGMENT_CHARS
    #: the API key; excluded from repr so it never lands in a log or traceback
    api_key: str | None = field(default=None, repr=False)

    def require_key(self) -> str:
        if not self.api_key:
            raise CosyVoiceConfigError(
                "DASHSCOPE_API_KEY is not set",
                hint="create an API key in the Model Studio console for the region "
                f"{self.region} and export DASHSCOPE_API_KEY=...",
            )
        return self.api_key

    @property
    def account(self) -> str:
        """The rate-limit account id: the same key on the same service shares one budget."""
        host = urlsplit(self.ws_url).netloc
        digest = hashlib.sha256(f"{self.api_key or ''}|{self.region}|{host}".encode())
        return f"cosyvoice/{digest.hexdigest()[:12]}"

    def headers(self) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.require_key()}", "user-agent": "narrate"}
        if self.workspace:
            headers["X-DashScope-WorkSpace"] = self.workspace
        return headers


def endpoint_urls(region: str, workspace: str | None) -> tuple[str, str]:
    """``(websocket url, enrollment url)`` of a region, on the workspace host if given."""
    legacy, region_id = REGIONS[region]
    host = f"{workspace}.{region_id}.maas.aliyuncs.com" if workspace else legacy
    return f"wss://{host}{WS_PATH}", f"https://{host}{ENROLLMENT_PATH}"


def enrollment_url_for(ws_url: str) -> str:
    """The enrollment endpoint on the host and port of a WebSocket URL (§8.1)."""
    parts = urlsplit(ws_url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, ENROLLMENT_PATH, "", ""))


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise CosyVoiceConfigError(f"{name} must be a positive number of seconds, not {raw!r}")
    return value


def from_env(env: Mapping[str, str] | None = None) -> ServiceConfig:
    """The configuration from ``env`` (default: the process environment)."""
    env = os.environ if env is None else env
    raw_region = env.get("NARRATE_COSYVOICE_REGION") or "beijing"
    region = normalize_region(raw_region)
    if region is None:
        raise CosyVoiceConfigError(
            f"NARRATE_COSYVOICE_REGION {raw_region!r} is not a CosyVoice region",
            hint="use beijing or singapore",
        )
    workspace = (env.get("NARRATE_COSYVOICE_WORKSPACE") or "").strip() or None
    if workspace is not None and not workspace.replace("-", "").isalnum():
        raise CosyVoiceConfigError(
            f"NARRATE_COSYVOICE_WORKSPACE {workspace!r} is not a workspace id",
            hint="copy the id (letters and digits) from the Model Studio console",
        )
    ws_url, http_url = endpoint_urls(region, workspace)
    override = (env.get("NARRATE_COSYVOICE_URL") or "").strip()
    if override:
        if urlsplit(override).scheme not in ("ws", "wss") or not urlsplit(override).netloc:
            raise CosyVoiceConfigError(
                f"NARRATE_COSYVOICE_URL {override!r} is not a ws:// or wss:// URL",
                hint="e.g. ws://127.0.0.1:8765/api-ws/v1/inference for the simulator",
            )
        ws_url, http_url = override, enrollment_url_for(override)
    model = env.get("NARRATE_COSYVOICE_MODEL") or DEFAULT_MODEL
    if model not in MODELS:
        raise CosyVoiceConfigError(
            f"NARRATE_COSYVOICE_MODEL {model!r} is not a CosyVoice model",
            hint=f"choose one of {', '.join(MODELS)}",
        )
    raw_chars = env.get("NARRATE_COSYVOICE_SEGMENT_CHARS")
    segment_chars = DEFAULT_SEGMENT_CHARS
    if raw_chars:
        low, high = SEGMENT_CHARS_RANGE
        if not raw_chars.isdigit() or not low <= int(raw_chars) <= high:
            raise CosyVoiceConfigError(
                f"NARRATE_COSYVOICE_SEGMENT_CHARS {raw_chars!r} is out of range",
                hint=f"give a whole number of characters from {low} to {high}",
            )
        segment_chars = int(raw_chars)
    return ServiceConfig(
        region=region,
        ws_url=ws_url,
        http_url=http_url,
        workspace=workspace,
        default_model=model,
        timeout_s=_float(env, "NARRATE_COSYVOICE_TIMEOUT_S", DEFAULT_TIMEOUT_S),
        segment_chars=segment_chars,
        api_key=(env.get("DASHSCOPE_API_KEY") or "").strip() or None,
    )
