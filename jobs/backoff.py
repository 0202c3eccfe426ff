"""Retry delays: capped exponential backoff with full jitter (pure; randomness passed in)."""

from __future__ import annotations

import random


def backoff_s(
    retries: int,
    *,
    base_s: float = 1.0,
    cap_s: float = 60.0,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before retry number ``retries + 1``: uniform in [0, min(cap, base*2^n)]."""
    ceiling = min(cap_s, base_s * (2 ** max(0, retries)))
    return (rng or random).uniform(0, ceiling)
