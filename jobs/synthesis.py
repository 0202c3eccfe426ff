"""Synthesis: a claimed segment's audio and word timings, made once and stored under its
content hash."""

from __future__ import annotations

from collections.abc import Callable

from jobs.claims import Claim, FollowUp, claim_segment, complete_segment
from jobs.clock import clock_ms
from jobs.db import Factory
from jobs.storage import Storage
from renderer.engine import Engine
from renderer.timing import align_words


def render_claimed(
    storage: Storage, engine_for: Callable[[str], Engine], claim: Claim
) -> tuple[bool, int | None]:
    """Make the claimed segment's audio unless storage has it: ``(reused, billed chars)``.

    Writes are idempotent (content-addressed names, temp file + rename). Engine errors
    propagate to the caller, which decides between retrying and failing.
    """
    if storage.has_segment(claim.content_hash):
        return True, None
    engine = engine_for(claim.voicing.engine)
    result = engine.synthesize(claim.voicing.request(claim.ssml))
    words = align_words(claim.text, result.marks, result.duration_ms)
    storage.save_segment(claim.content_hash, result.pcm, result.sample_rate_hz, words)
    return False, result.billed_chars


def synthesize_segment(
    factory: Factory,
    storage: Storage,
    engine_for: Callable[[str], Engine],
    segment_id: int,
    *,
    now_ms: int = 0,
    lease_ms: int = 10 * 60 * 1000,
) -> FollowUp:
    """Claim, render and complete one segment in one call (engine errors propagate and leave
    the segment running until its lease ends; tasks handle them, see :mod:`jobs.tasks`)."""
    now_ms = now_ms or clock_ms()
    claim = claim_segment(factory, segment_id, now_ms, lease_ms)
    if claim is None:
        return FollowUp("skipped")
    reused, billed = render_claimed(storage, engine_for, claim)
    return complete_segment(factory, segment_id, clock_ms(), reused=reused, billed_chars=billed)
