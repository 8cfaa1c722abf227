"""The Celery application, configured from Herd's settings.

The embedded default runs over SQLite (kombu's SQLAlchemy transport); a
production deployment sets HERD_BROKER_URL to Redis or RabbitMQ.
"""

from __future__ import annotations

from celery import Celery

from controlplane.settings import Settings, get_settings


def make_celery(settings: Settings | None = None) -> Celery:
    settings = settings or get_settings()
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    app = Celery(
        "herd", broker=settings.resolved_broker_url, backend=settings.resolved_result_backend
    )
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        # Tasks re-read their state from the database and are idempotent, so
        # acknowledging late is safe and a killed worker's task runs again.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_time_limit=3600,
        task_soft_time_limit=3300,
        broker_connection_retry_on_startup=True,
        result_expires=86400,
        timezone="UTC",
        include=[
            "provisioning.tasks",
            "provisioning.rollouts",
            "provisioning.billing_tasks",
            "provisioning.moderation_tasks",
        ],
        beat_schedule={
            "reconcile": {"task": "herd.reconcile", "schedule": settings.reconcile_seconds},
            "rollouts": {"task": "herd.advance_rollouts", "schedule": settings.reconcile_seconds},
            # Grace and retention periods are days long: once a minute is plenty.
            "billing": {
                "task": "herd.billing.tick",
                "schedule": max(60.0, settings.reconcile_seconds),
            },
            # Retention is counted in days.
            "storage": {"task": "herd.purge_storage", "schedule": 3600.0},
            # Webhooks bring reports in at once; the pull catches what they
            # missed, well inside any response time agreed.
            "moderation": {"task": "herd.moderation.pull_reports", "schedule": 300.0},
            # Failed moderator grants back off from 5 minutes; a look a minute
            # starts them on time.
            "moderators": {
                "task": "herd.moderation.settle_access",
                "schedule": max(60.0, settings.reconcile_seconds),
            },
        },
    )
    return app


celery_app = make_celery()
