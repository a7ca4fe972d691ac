"""Helpers for tests across processes: publishing to a real broker, waiting, reading logs."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import kombu.pools
from rest_framework.response import Response
from rest_framework.test import APIClient

from apps.orders.models import Order, OrderEvent
from apps.payments.models import Payment
from ecommerce.celery import app
from tests.integration.processes import CeleryWorker

T = TypeVar("T")

PUBLISH_SETTINGS = ("broker_url", "task_always_eager")
# Calls to the provider as the HTTP gateway logs them: an answer, or none (timeout, refused).
PROVIDER_CALL_EVENTS = ("payment_provider.response", "payment_provider.unavailable")


def _drop_broker_connections() -> None:
    """Forget every pooled broker connection, so the next publish uses today's broker_url.

    Celery keeps its connection pool on the app (`app._pool`) and its producer pool on
    `app.amqp`, both built from the broker_url of their first use; kombu keeps the pools
    themselves in process-wide groups keyed by connection. Changing `broker_url` alone
    leaves a publish on the old broker, so all three are reset here, as Celery itself
    does after a fork.
    """
    kombu.pools.reset()
    app._pool = None
    app.amqp._producer_pool = None


@contextmanager
def publishing_to(broker_url: str) -> Iterator[None]:
    """Make this process's Celery app publish to `broker_url` instead of running tasks eagerly.

    The app reads Django's settings live (`CELERY_*`), so what is undone on the way out is
    the app's own overrides (`app.conf.changes`), not values read through it: these may
    come from a `settings` fixture about to be restored too.
    """
    overridden = {
        name: app.conf.changes[name] for name in PUBLISH_SETTINGS if name in app.conf.changes
    }
    app.conf.update(broker_url=broker_url, task_always_eager=False)
    _drop_broker_connections()
    try:
        yield
    finally:
        for name in PUBLISH_SETTINGS:
            app.conf.changes.pop(name, None)
        app.conf.update(overridden)
        _drop_broker_connections()


def wait_until(
    check: Callable[[], T],
    *,
    what: str,
    timeout_seconds: float = 15.0,
    worker: CeleryWorker | None = None,
) -> T:
    """Poll `check` until it returns something truthy, and return that.

    Raises AssertionError naming `what`, with the worker's last log lines, on timeout.
    """
    deadline = time.monotonic() + timeout_seconds
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            log = f"\n--- worker log ---\n{worker.log_tail()}" if worker is not None else ""
            raise AssertionError(f"not within {timeout_seconds}s: {what}{log}")
        time.sleep(0.02)


def place(client: APIClient, sku: str, quantity: int = 1, token: str = "tok_success") -> Response:
    body = {"items": [{"id": sku, "quantity": quantity}], "payment_token": token}
    response: Response = client.post("/api/orders", body)
    return response


def placed_order(response: Response) -> Order:
    assert response.status_code == 201, response.content
    return Order.objects.get(public_id=response.json()["id"])


def wait_for_status(
    order: Order, status: str, *, worker: CeleryWorker, timeout_seconds: float = 15.0
) -> Order:
    def reached() -> Order | None:
        order.refresh_from_db()
        return order if order.status == status else None

    try:
        return wait_until(
            reached,
            what=f"order {order.pk} {status}",
            timeout_seconds=timeout_seconds,
            worker=worker,
        )
    except AssertionError as exc:
        payment = Payment.objects.filter(order=order).values().first()
        raise AssertionError(f"{exc}\n--- order {order.status}, payment {payment}") from None


def history(order: Order) -> list[tuple[str, str]]:
    return list(OrderEvent.objects.filter(order=order).values_list("from_status", "to_status"))


def provider_calls(worker: CeleryWorker, idempotency_key: str, *, since: int = 0) -> list[Any]:
    """The worker's calls to the provider with this idempotency key, as its log tells them."""
    return [
        line
        for line in worker.log(since=since)
        if line.get("event") in PROVIDER_CALL_EVENTS
        and line.get("idempotency_key") == idempotency_key
    ]


def logged(worker: CeleryWorker, event: str, *, since: int = 0, **fields: Any) -> list[Any]:
    """The worker's log lines for `event` whose fields equal `fields`."""
    return [
        line
        for line in worker.log(since=since)
        if line.get("event") == event and all(line.get(k) == v for k, v in fields.items())
    ]


def task_outcomes(worker: CeleryWorker, *, since: int = 0) -> list[str]:
    """What the worker's charge task runs returned, in order ("succeeded", "noop", ...)."""
    outcomes = []
    for line in worker.log(since=since):
        event = str(line.get("event", ""))
        if event.startswith("Task payments.charge_payment[") and " succeeded in " in event:
            outcomes.append(event.rsplit(": ", 1)[-1].strip("'"))
    return outcomes
