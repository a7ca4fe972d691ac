"""Embedded mode under several gunicorn workers: the in-process payment sandbox is shared.

Without PAYMENT_PROVIDER_URL each web process calls the sandbox's logic in-process. Its
charges live in PAYMENT_SANDBOX_DB, one SQLite file for every local process, so a paid order
whose cancel lands on another worker is refunded. The requests are steered across workers:
a sync worker serves one request at a time, so while one sleeps in /health/slow the other
serves the payment, and the cancel waits in the backlog for the first one to wake. With
":memory:" (a sandbox per process) the same steps fail with charge_not_found, which shows the
cancel did reach the worker that never saw the charge.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from rest_framework_simplejwt.tokens import AccessToken

from apps.orders.models import Order, OrderStatus
from ecommerce.api.permissions import Role
from tests.catalog.factories import make_product
from tests.servers import GunicornServer, project_env
from tests.users.factories import UserFactory

pytestmark = [pytest.mark.slow]

FIRST_SLEEP_SECONDS = 4
SECOND_SLEEP_SECONDS = 8


def shop(tmp_path: Path, sandbox_db: str) -> GunicornServer:
    env = project_env(
        PAYMENT_PROVIDER_URL="",
        PAYMENT_SANDBOX_DB=sandbox_db,
        TEST_SLOW_ENDPOINT_ENABLED="1",
        RATE_LIMIT_ENABLED="0",
        ACCESS_LOG="0",
        OTEL_ENABLED="0",
        METRICS_DIR=str(tmp_path / "metrics"),
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics" / "web"),
        CACHE_KEY_PREFIX=f"embedded-{uuid.uuid4().hex[:8]}",
    )
    env.pop("PAYMENT_SANDBOX_PORT", None)
    return GunicornServer(workers=2, env=env, log_path=tmp_path / "web.log")


@pytest.fixture
def customer(transactional_db: Any) -> str:
    make_product(sku="embedded-mug", price="12.00", stock=10)
    token = AccessToken.for_user(UserFactory(roles=[Role.CUSTOMER]))
    token.set_exp(lifetime=timedelta(minutes=10))
    return str(token)


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(4) as executor:
        yield executor


def occupy(pool: ThreadPoolExecutor, url: str, seconds: int) -> Future[httpx.Response]:
    """Keep one idle worker asleep for `seconds`; returns once a worker has taken it."""
    started = threading.Event()

    def sleep() -> httpx.Response:
        started.set()
        return httpx.get(f"{url}/health/slow", params={"seconds": seconds}, timeout=30)

    future = pool.submit(sleep)
    started.wait(5)
    time.sleep(0.5)  # the request is in a worker, not in the backlog
    return future


def pay_then_cancel_on_the_other_worker(
    url: str, token: str, pool: ThreadPoolExecutor
) -> tuple[httpx.Response, httpx.Response]:
    """Pay on worker B while A sleeps; cancel on A while B sleeps. Both answers."""
    auth = {"Authorization": f"Bearer {token}"}
    first = occupy(pool, url, FIRST_SLEEP_SECONDS)  # worker A
    placed = httpx.post(
        f"{url}/api/orders",
        json={"items": [{"id": "embedded-mug", "quantity": 2}], "payment_token": "tok_success"},
        headers={**auth, "Idempotency-Key": uuid.uuid4().hex},
        timeout=30,
    )  # worker B, which charges it in-process
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["id"]
    assert Order.objects.get(public_id=order_id).status == OrderStatus.PAID
    assert not first.done(), "worker A woke before the order was paid: the steps overlapped"
    second = occupy(pool, url, SECOND_SLEEP_SECONDS)  # worker B, A still asleep
    cancelled = httpx.post(
        f"{url}/api/orders/{order_id}/cancel", json={}, headers=auth, timeout=30
    )  # queued until A wakes: B sleeps longer
    assert not second.done(), "worker B woke before the cancel was answered"
    assert first.result().status_code == 200
    assert second.result().status_code == 200
    return placed, cancelled


def test_a_paid_order_is_refunded_by_the_worker_that_did_not_charge_it(
    tmp_path: Path, customer: str, pool: ThreadPoolExecutor
) -> None:
    server = shop(tmp_path, str(tmp_path / "payment-sandbox.sqlite3"))
    try:
        placed, cancelled = pay_then_cancel_on_the_other_worker(server.url, customer, pool)
        # Many reads after, served by both workers: each sees the refunded order.
        with httpx.Client(base_url=server.url, timeout=30) as client:
            statuses = list(
                pool.map(
                    lambda _: client.get(
                        f"/api/orders/{placed.json()['id']}",
                        headers={"Authorization": f"Bearer {customer}"},
                    ).json()["status"],
                    range(20),
                )
            )
    finally:
        assert server.stop() == 0

    assert cancelled.status_code == 200, cancelled.text
    order = Order.objects.get(public_id=placed.json()["id"])
    assert order.status == OrderStatus.REFUNDED
    assert set(statuses) == {OrderStatus.REFUNDED}
    assert "charge_not_found" not in (tmp_path / "web.log").read_text(errors="replace")


def test_a_sandbox_per_process_loses_the_charge_across_workers(
    tmp_path: Path, customer: str, pool: ThreadPoolExecutor
) -> None:
    """The control: the same steps with a private sandbox per worker do cross workers."""
    server = shop(tmp_path, ":memory:")
    try:
        placed, cancelled = pay_then_cancel_on_the_other_worker(server.url, customer, pool)
    finally:
        assert server.stop() == 0

    order = Order.objects.get(public_id=placed.json()["id"])
    assert order.status != OrderStatus.REFUNDED
    assert "charge_not_found" in cancelled.text + (tmp_path / "web.log").read_text(errors="replace")
