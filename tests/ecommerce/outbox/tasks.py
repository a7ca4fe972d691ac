"""Celery tasks that only the outbox tests register as handlers, recording each run."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.db import OperationalError

from ecommerce.tasks import outbox_message_id

# (task name, payload value, outbox message id, Celery retries) per run, in order.
runs: list[tuple[str, Any, int | None, int]] = []
# Failures still to raise, by task name.
failures_left: dict[str, int] = {}


def _record(task: Any, value: Any) -> None:
    runs.append((task.name, value, outbox_message_id(task.request), task.request.retries))


@shared_task(bind=True, name="tests.outbox.record")
def record_task(self: Any, value: Any) -> str:
    _record(self, value)
    return "recorded"


@shared_task(bind=True, name="tests.outbox.also_record")
def also_record_task(self: Any, value: Any) -> str:
    _record(self, value)
    return "recorded"


@shared_task(bind=True, name="tests.outbox.fail_first")
def fail_first_task(self: Any, value: Any) -> str:
    """Raises ValueError while `failures_left` says so, then records."""
    _record(self, value)
    if failures_left.get(self.name, 0) > 0:
        failures_left[self.name] -= 1
        raise ValueError("boom")
    return "recorded"


@shared_task(bind=True, name="tests.outbox.database_down_first")
def database_down_first_task(self: Any, value: Any) -> str:
    """Raises OperationalError while `failures_left` says so, then records."""
    _record(self, value)
    if failures_left.get(self.name, 0) > 0:
        failures_left[self.name] -= 1
        raise OperationalError("server closed the connection unexpectedly")
    return "recorded"


@shared_task(bind=True, name="tests.outbox.retry_once", max_retries=3)
def retry_once_task(self: Any, value: Any) -> str:
    """Asks Celery for one retry of its own (as tasks do for provider errors)."""
    _record(self, value)
    if self.request.retries == 0:
        raise self.retry(countdown=5)
    return "recorded"
