"""The Celery application; tasks are discovered in each app's `tasks.py`."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import setup_logging

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ecommerce.settings")

app = Celery("ecommerce")
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
