"""Sending work to the broker: segment and stitch messages on their job's priority queue.

Messages carry ids only. A send that fails (broker down) is logged, not raised: the
database already says the work is queued, and the reaper sends it again once the broker
is back (:mod:`jobs.reaper`), so nothing is lost.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from jobs.app import app, queue_for
from jobs.priority import Priority, Work

log = logging.getLogger(__name__)

SEGMENT_TASK = "narrate.synthesize_segment"
STITCH_TASK = "narrate.stitch_chapter"
BULLETIN_TASK = "narrate.run_bulletin"


def send_segments(releases: Iterable[Work]) -> int:
    """Send one message per segment; returns how many were sent."""
    return sum(_send(SEGMENT_TASK, work.item_id, work.priority) for work in releases)


def send_stitches(chapters: Iterable[Work]) -> int:
    """Send one message per chapter stitch; returns how many were sent."""
    return sum(_send(STITCH_TASK, work.item_id, work.priority) for work in chapters)


def send_bulletins(runs: Iterable[Work]) -> int:
    """Send one message per claimed schedule slot (on the urgent queue)."""
    return sum(_send(BULLETIN_TASK, work.item_id, work.priority) for work in runs)


def _send(task: str, item_id: int, priority: Priority) -> bool:
    try:
        app.send_task(task, args=[item_id], queue=queue_for(priority), ignore_result=True)
    except Exception as exc:  # kombu raises many types; the reaper re-sends
        log.warning("could not send %s(%s) to the broker (%s); the reaper will", task, item_id, exc)
        return False
    return True
