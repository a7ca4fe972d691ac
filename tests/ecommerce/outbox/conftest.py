"""Outbox test fixtures: handlers of test topics, recorded runs, after-commit execution."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ecommerce.outbox import registry
from tests.ecommerce.outbox import tasks

TOPIC = "test.happened"


@pytest.fixture
def handlers(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Register test handlers for TOPIC (only for this test): `handlers(task, ...)`."""
    monkeypatch.setattr(registry, "_handlers", {})

    def register(*task_names: str, queue: str | None = None) -> None:
        for name in task_names:
            registry.register(TOPIC, task=name, queue=queue)

    return register


@pytest.fixture(autouse=True)
def runs() -> Iterator[list[Any]]:
    tasks.runs.clear()
    tasks.failures_left.clear()
    yield tasks.runs
    tasks.runs.clear()
    tasks.failures_left.clear()


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks: Any) -> Callable[[], Any]:
    """`with on_commit():` runs the callbacks registered inside as the commit would."""
    return lambda: django_capture_on_commit_callbacks(execute=True)
