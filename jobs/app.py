"""The Celery application, its queues and its reliability settings.

Reliability (../shared/reference/rate-limit-and-celery.md §2): late acks with
reject-on-worker-lost (a killed worker's message comes back), prefetch 1 (a worker holds
only what it runs, so urgent work is never stuck behind another worker's buffer), hard
time limits well below the broker's visibility timeout (a slow task is never handed out
twice while it runs), no result backend (PostgreSQL is the source of truth), JSON only.
Retries do not use broker countdowns: a segment that meets a transient error goes back
to the database backlog with a ``not_before_ms`` (see :func:`jobs.claims.defer_segment`).

Queues: ``narrate.control`` (feeder and reaper, consumed by every worker first), then one
queue per priority class, polled in order (``queue_order_strategy=priority``), so a free
worker slot always takes urgent work before normal before bulk.
"""

from __future__ import annotations

from celery import Celery

from jobs.priority import Priority
from narrate.settings import Settings

CONTROL_QUEUE = "narrate.control"
#: a segment task may wait for the provider throttle (5 min at most) and then synthesize
SEGMENT_TIME_LIMIT_S = 20 * 60
STITCH_TIME_LIMIT_S = 60 * 60
#: above every time limit, so a running task is never redelivered while it runs
VISIBILITY_TIMEOUT_S = 2 * 60 * 60


def queue_for(priority: Priority) -> str:
    """The broker queue of a priority class."""
    return f"narrate.{priority.label}"


app = Celery("narrate", include=["jobs.tasks"])
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    result_serializer="json",
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    task_acks_on_failure_or_timeout=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    task_time_limit=SEGMENT_TIME_LIMIT_S,
    task_soft_time_limit=SEGMENT_TIME_LIMIT_S - 60,
    task_default_queue=queue_for(Priority.NORMAL),
    broker_transport_options={
        "visibility_timeout": VISIBILITY_TIMEOUT_S,
        "queue_order_strategy": "priority",
    },
    broker_connection_retry_on_startup=True,
    broker_connection_max_retries=None,
    worker_cancel_long_running_tasks_on_connection_loss=True,
    worker_soft_shutdown_timeout=20.0,
    worker_hijack_root_logger=False,
    task_annotations={
        "narrate.stitch_chapter": {
            "time_limit": STITCH_TIME_LIMIT_S,
            "soft_time_limit": STITCH_TIME_LIMIT_S - 60,
        },
        "narrate.run_bulletin": {
            "time_limit": STITCH_TIME_LIMIT_S,
            "soft_time_limit": STITCH_TIME_LIMIT_S - 60,
        },
    },
)


def configure_app(settings: Settings) -> Celery:
    """Point the app at the configured broker and set beat's schedule (distributed mode)."""
    if settings.broker_url:
        app.conf.broker_url = settings.broker_url
    app.conf.beat_schedule = {
        "feed": {
            "task": "narrate.feed",
            "schedule": settings.feed_interval_s,
            "options": {"queue": CONTROL_QUEUE, "expires": settings.feed_interval_s * 5},
        },
        "reap": {
            "task": "narrate.reap",
            "schedule": settings.reap_interval_s,
            "options": {"queue": CONTROL_QUEUE, "expires": settings.reap_interval_s * 4},
        },
        # bulletin schedules: due slots are claimed once, whoever checks (jobs.schedules)
        "schedules": {
            "task": "narrate.check_schedules",
            "schedule": 60.0,
            "options": {"queue": CONTROL_QUEUE, "expires": 120},
        },
    }
    return app
