"""The Celery application; tasks are discovered in each app's `tasks.py`, all of them
built on the project's base task (ecommerce.tasks.Task)."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import celeryd_init, setup_logging

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


@celeryd_init.connect
def _consume_without_a_socket_timeout(conf: Any = None, **_kwargs: Any) -> None:
    """Workers consume with no broker socket timeout (web and beat keep theirs).

    The timeout bounds a publish made while serving a request; on a worker's consuming
    connection it does harm: after Redis was frozen (SIGSTOP) for longer than the timeout,
    the consumer stopped fetching messages for good once Redis was back (kombu 5.7, seen
    in tests/integration/test_outbox_delivery.py). Without it the consumer waits and
    resumes; a task's own publishes then wait for a frozen broker too, holding a worker,
    never a request.
    """
    if conf is None:
        return
    options = dict(conf.broker_transport_options or {})
    options.pop("socket_timeout", None)
    conf.broker_transport_options = options
