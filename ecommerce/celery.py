"""The Celery application; tasks are discovered in each app's `tasks.py`, all of them
built on the project's base task (ecommerce.tasks.Task)."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import setup_logging

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ecommerce.settings")

# Every task, `@shared_task` ones included, is an ecommerce.tasks.Task: transient
# infrastructure errors retried, outbox deliveries marked completed on success.
app = Celery("ecommerce", task_cls="ecommerce.tasks:Task")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Task metrics, heartbeats and tracing hooks connect to Celery's signals on import.
from ecommerce.observability import celery as _observability  # noqa: E402, F401


@setup_logging.connect
def _use_django_logging(**_kwargs: Any) -> None:
    """Keep Celery from installing its own handlers: Django's LOGGING (structlog) applies."""
    from logging.config import dictConfig

    from django.conf import settings

    dictConfig(settings.LOGGING)
