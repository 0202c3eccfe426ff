"""The Celery application. Reliability settings follow ../shared/reference notes:
late acks, reject on worker loss, prefetch 1, JSON only."""

from __future__ import annotations

from celery import Celery

from narrate.settings import Settings

app = Celery("narrate", include=["jobs.tasks"])
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    result_serializer="json",
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    task_time_limit=30 * 60,
    task_soft_time_limit=25 * 60,
    broker_transport_options={"visibility_timeout": 2 * 60 * 60},
    broker_connection_retry_on_startup=True,
)


def configure_app(settings: Settings) -> Celery:
    """Point the app at the configured broker (distributed mode)."""
    if settings.broker_url:
        app.conf.broker_url = settings.broker_url
    return app
