"""The voice enrollment API client: clone, design, list, query, update, delete (§8).

REST, ``POST {host}/api/v1/services/audio/tts/customization`` with
``{"model": "voice-enrollment", "input": {"action": ..., ...}, "parameters": {}}``
(§8.1). Success is ``{"output", "usage", "request_id"}``; an error is HTTP 4xx/5xx with
``{"code", "message", "request_id"}``, mapped by :func:`renderer.cosyvoice.errors.service_error`.
Management calls are free and limited to 10 requests/s (§5.3); these are one-off
commands, so no throttle is used. The standard library's ``urllib`` is enough here.

Rules checked before sending (§8.2): the prefix (``[a-z0-9]{1,9}``: the overlap of the
two documented rules), the target model, cloning only where it is offered (Beijing;
v3.5 only in Beijing, and the v3 models did not clone in Singapore), voice design on
the v3 and v3.5 models, a prompt of at most 500 characters and a preview of at most 200.
The ``url`` of a clone sample must be a public http(s) URL: the service downloads it;
it does not accept uploads.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from renderer.cosyvoice.config import ServiceConfig
from renderer.cosyvoice.errors import (
    CosyVoiceRejectedError,
    CosyVoiceServiceError,
    CosyVoiceUsageError,
    service_error,
)
from renderer.cosyvoice.models import LANGUAGES, MODELS, PREFIX_RE, Model

STATUSES = {
    "DEPLOYING": "being prepared; check again in a few seconds",
    "OK": "ready to use",
    "UNDEPLOYED": "rejected by the service (bad sample or prompt); delete it and try again",
}
VOICE_PROMPT_MAX = 500
PREVIEW_TEXT_MAX = 200


@dataclass(frozen=True)
class VoiceInfo:
    voice_id: str
    status: str
    target_model: str | None = None
    created: str | None = None
    modified: str | None = None
    resource_link: str | None = None


Transport = Callable[[str, bytes, dict[str, str], float], tuple[int, bytes]]


def _urllib_transport(
    url: str, body: bytes, headers: dict[str, str], timeout: float
) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), bytes(exc.read() or b"")


def check_prefix(prefix: str) -> None:
    if not PREFIX_RE.match(prefix):
        raise CosyVoiceUsageError(
            f"voice prefix {prefix!r} is not allowed",
            hint="use 1 to 9 lower-case letters or digits (e.g. --prefix narrator1)",
        )


def check_target(model_name: str, region: str, *, design: bool) -> Model:
    model = MODELS.get(model_name)
    if model is None:
        raise CosyVoiceUsageError(
            f"{model_name!r} is not a CosyVoice model",
            hint=f"use --target-model with one of {', '.join(MODELS)}",
        )
    if design and not model.design:
        with_it = ", ".join(m.name for m in MODELS.values() if m.design)
        raise CosyVoiceUsageError(
            f"{model_name} has no voice design", hint=f"design voices for one of {with_it}"
        )
    regions = model.regions if design else model.clone_regions
    if region not in regions:
        raise CosyVoiceUsageError(
            f"{'designing' if design else 'cloning'} voices for {model_name} is not offered "
            f"in the {region} region",
            hint="set NARRATE_COSYVOICE_REGION=beijing with a Beijing API key",
        )
    return model


class EnrollmentClient:
    def __init__(self, config: ServiceConfig, transport: Transport = _urllib_transport) -> None:
        self.config = config
        self._transport = transport

    def _call(self, action: str, **fields: Any) -> dict[str, Any]:
        body = {
            "model": "voice-enrollment",
            "input": {"action": action, **{k: v for k, v in fields.items() if v is not None}},
            "parameters": {},
        }
        headers = {**self.config.headers(), "Content-Type": "application/json"}
        url = self.config.http_url
        try:
            status, raw = self._transport(
                url, json.dumps(body).encode(), headers, self.config.timeout_s
            )
        except (OSError, TimeoutError) as exc:
            raise CosyVoiceServiceError(
                f"cannot reach the CosyVoice voice API at {url}: {exc}",
                hint="check the network and NARRATE_COSYVOICE_URL, then run the command again",
            ) from None
        try:
            data = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            data = {}
        if status != 200 or not isinstance(data, dict) or "output" not in data:
            code = data.get("code") if isinstance(data, dict) else None
            message = str(data.get("message", "")) if isinstance(data, dict) else ""
            request_id = data.get("request_id") if isinstance(data, dict) else None
            if code is None and status >= 500:
                code = "InternalError"
            error = service_error(code, message or f"HTTP {status}", None)
            if request_id:
                error.message += f" (request {request_id})"
            if isinstance(error, CosyVoiceRejectedError) and status >= 500:
                raise CosyVoiceServiceError(error.message, hint=error.hint) from None
            raise error
        output = data["output"]
        return output if isinstance(output, dict) else {}

    def clone(
        self, *, target_model: str, prefix: str, url: str, language: str | None = None
    ) -> str:
        check_prefix(prefix)
        check_target(target_model, self.config.region, design=False)
        if not url.startswith(("http://", "https://")):
            raise CosyVoiceUsageError(
                f"{url!r} is not a public http(s) URL",
                hint="the service downloads the sample itself: upload it somewhere public "
                "(e.g. an OSS bucket with public-read or a signed URL) and pass that URL",
            )
        output = self._call(
            "create_voice",
            target_model=target_model,
            prefix=prefix,
            url=url,
            language_hints=[_language(language)] if language else None,
        )
        return str(output["voice_id"])

    def design(
        self,
        *,
        target_model: str,
        prefix: str,
        prompt: str,
        preview_text: str,
        language: str | None = None,
    ) -> tuple[str, bytes | None]:
        """A designed voice's id and its preview audio (WAV bytes, when sent)."""
        import base64

        check_prefix(prefix)
        check_target(target_model, self.config.region, design=True)
        if not prompt.strip() or len(prompt) > VOICE_PROMPT_MAX:
            raise CosyVoiceUsageError(
                f"the voice description has {len(prompt)} characters",
                hint=f"describe the voice in 1 to {VOICE_PROMPT_MAX} characters, in Chinese "
                "or English",
            )
        if len(preview_text) > PREVIEW_TEXT_MAX:
            raise CosyVoiceUsageError(
                f"the preview text has {len(preview_text)} characters",
                hint=f"give at most {PREVIEW_TEXT_MAX}",
            )
        output = self._call(
            "create_voice",
            target_model=target_model,
            prefix=prefix,
            voice_prompt=prompt,
            preview_text=preview_text,
            language_hints=[_language(language)] if language else None,
        )
        preview = output.get("preview_audio")
        audio = None
        if isinstance(preview, dict) and isinstance(preview.get("data"), str):
            audio = base64.b64decode(preview["data"])
        return str(output["voice_id"]), audio

    def list(self, *, prefix: str | None = None, page_size: int = 100) -> list[VoiceInfo]:
        found: list[VoiceInfo] = []
        page = 0
        while True:
            output = self._call("list_voice", prefix=prefix, page_index=page, page_size=page_size)
            rows = output.get("voice_list") or []
            for row in rows:
                found.append(
                    VoiceInfo(
                        str(row.get("voice_id")),
                        str(row.get("status")),
                        created=row.get("gmt_create"),
                        modified=row.get("gmt_modified"),
                    )
                )
            if len(rows) < page_size:
                return found
            page += 1

    def query(self, voice_id: str) -> VoiceInfo:
        output = self._call("query_voice", voice_id=voice_id)
        return VoiceInfo(
            str(output.get("voice_id") or voice_id),
            str(output.get("status")),
            target_model=output.get("target_model"),
            created=output.get("gmt_create"),
            modified=output.get("gmt_modified"),
            resource_link=output.get("resource_link"),
        )

    def delete(self, voice_id: str) -> None:
        self._call("delete_voice", voice_id=voice_id)


def _language(language: str) -> str:
    if language not in LANGUAGES:
        raise CosyVoiceUsageError(
            f"--language {language} is not one the service takes",
            hint=f"give one of {', '.join(LANGUAGES)}",
        )
    return language
