"""The ``cosyvoice`` engine: Alibaba Model Studio CosyVoice over its duplex WebSocket API.

Models cosyvoice-v3-flash (default), -v3-plus, -v2, -v3.5-flash and -v3.5-plus; the
settings and what is refused before any request are in
:mod:`renderer.cosyvoice.options`, the configuration (key, region, URL) in
:mod:`renderer.cosyvoice.config`, the client (and why it is ours, not the SDK) in
:mod:`renderer.cosyvoice.client`, the error map in :mod:`renderer.cosyvoice.errors`.

One segment is one task: ``run-task``, the segment's sentences as ``continue-task``
messages, ``finish-task`` (reference §2.1). The engine holds a permit of the shared
:class:`~renderer.engine.RequestGate` from right before each ``run-task`` until the
service answers it (the 3 requests/s limit counts task submissions, §5.3), and pauses
the gate when the service answers "throttled".

Segment size policy (``max_segment_chars``, default 1000 characters of text,
``NARRATE_COSYVOICE_SEGMENT_CHARS`` to change it within 200-10000):

* Requests per character: the rate limit counts tasks, not characters, and one task
  carries a whole segment fed sentence by sentence. At 1000 characters a segment is
  about a minute of English (about 3-4 minutes of Chinese), so one account's 3 tasks/s
  would need well over 100 workers synthesizing in parallel before the limit bites;
  at 100-character segments a handful of workers hit it and wait. Each task also pays a
  fixed cost (the first packet arrives 200-800 ms after the text, §2.5).
* Cost of a retry: a task that fails is retried whole, so the characters and time spent
  on its finished sentences are spent again. Expected waste is about half a segment per
  failure; at 1000 characters (2000 billed for Chinese) that is a small, bounded price,
  and captions and stitching are per segment anyway.
* Hard limits stay far away: 20,000 billed characters per message and 200,000 per task
  (§5.1); sentences are sent separately, and very long ones are cut (see
  :mod:`renderer.cosyvoice.text`) to avoid the service's 33.44 s per-sentence cap.

``check`` runs every local check before a job is created: the voice/model rules and
every option (:meth:`CosyVoiceEngine.check_request`), and that ``DASHSCOPE_API_KEY`` is
set; ``synthesize`` runs the same checks before sending anything.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from renderer.cosyvoice.billing import load_prices
from renderer.cosyvoice.client import CosyVoiceClient
from renderer.cosyvoice.config import DEFAULT_SEGMENT_CHARS, ServiceConfig, from_env
from renderer.cosyvoice.models import DEFAULT_VOICE, SYSTEM_VOICES
from renderer.cosyvoice.options import TaskSettings, resolve
from renderer.cosyvoice.result import assemble
from renderer.cosyvoice.text import TaskPlan, plan_task
from renderer.engine import (
    Engine,
    EngineSetup,
    EngineSpec,
    PriceList,
    RequestGate,
    SynthesisRequest,
    SynthesisResult,
    Voice,
)
from ssml.dialects import COSYVOICE


def _create(setup: EngineSetup) -> Engine:
    return CosyVoiceEngine(setup.gate)


#: the engine's declaration (see renderer.engines); the segment size is the default of
#: NARRATE_COSYVOICE_SEGMENT_CHARS, which an instance's config may change
#: CosyVoice's system voices are Alibaba Cloud's: their use follows the account's terms
VOICE_LICENCE = "Alibaba Cloud Model Studio terms of service (your account's)"

SPEC = EngineSpec(
    name="cosyvoice",
    display_name="CosyVoice",
    factory=_create,
    dialect=COSYVOICE,
    max_segment_chars=DEFAULT_SEGMENT_CHARS,
    billing=True,
    rate_limit_account="cosyvoice",
)


class CosyVoiceEngine:
    spec = SPEC
    name = SPEC.name
    ssml_dialect = SPEC.dialect.name
    default_voice = DEFAULT_VOICE

    def __init__(self, gate: RequestGate | None = None, config: ServiceConfig | None = None):
        self.config = config or from_env()
        self.max_segment_chars = self.config.segment_chars
        self.client = CosyVoiceClient(self.config, gate)

    def voices(self) -> list[Voice]:
        """The system voices narrate knows (cloned voices: ``narrate voices list``)."""
        return [
            Voice(id=voice, name=f"{name} [{family}]", languages=languages, licence=VOICE_LICENCE)
            for voice, (family, name, languages) in SYSTEM_VOICES.items()
        ]

    def complete(self, request: SynthesisRequest) -> SynthesisRequest:
        """The request with its model made explicit (``NARRATE_COSYVOICE_MODEL`` or the
        default when none is given: another model is other audio, so it is part of the
        segment's content hash), checked locally (voice, model, options, prosody; no key
        needed, so estimates can use it)."""
        settings = self.check_request(
            model=request.model,
            voice=request.voice,
            rate=request.rate,
            pitch=request.pitch,
            volume=request.volume,
            options=request.options,
        )
        return replace(request, model=settings.model)

    def check(self, request: SynthesisRequest) -> None:
        """The voice, model, options and prosody (:meth:`check_request`) and the API key."""
        self.complete(request)
        self.config.require_key()

    def billed_chars(self, request: SynthesisRequest) -> int | None:
        """As the service counts them: the text said (aliases expanded, tags not
        counted), a Chinese character counting 2."""
        return self.plan(request)[1].billed

    def price_list(self, request: SynthesisRequest, prices: Path | None) -> PriceList | None:
        """The model's price per 10,000 billed characters: from ``prices`` (``--prices``),
        else ``NARRATE_COSYVOICE_PRICES``, else the published list prices."""
        model = request.model or self.config.default_model
        return load_prices(prices, os.environ).price_list(model, self.config.region)

    def check_request(
        self,
        *,
        model: str | None,
        voice: str,
        rate: float = 1.0,
        pitch: float = 1.0,
        volume: float = 1.0,
        options: Sequence[tuple[str, str]] = (),
    ) -> TaskSettings:
        """Every local check of a request; the settings a task would be started with."""
        return resolve(
            model=model or self.config.default_model,
            voice=voice,
            rate=rate,
            pitch=pitch,
            volume=volume,
            options=options,
            region=self.config.region,
        )

    def plan(self, request: SynthesisRequest) -> tuple[TaskSettings, TaskPlan]:
        settings = self.check_request(
            model=request.model,
            voice=request.voice,
            rate=request.rate,
            pitch=request.pitch,
            volume=request.volume,
            options=request.options,
        )
        return settings, plan_task(request.ssml, ssml_setting=settings.ssml, rate=settings.rate)

    def synthesize(self, request: SynthesisRequest) -> SynthesisResult:
        settings, plan = self.plan(request)
        self.config.require_key()
        outcome = self.client.run(
            settings.model,
            settings.parameters(ssml_mode=plan.ssml_mode, language_hint=plan.language),
            plan.messages,
        )
        return assemble(plan, settings, outcome)
