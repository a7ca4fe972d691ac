"""Refunds and compensation raced for real: the web app under gunicorn, a Celery worker
charging through the sandbox process, staff and buyers over HTTP.

- Two staff refund at once amounts that together exceed the capture: the reservation under
  the payment's row lock lets one through and refuses the other (409), so the provider
  refunds once and the order says what stays paid.
- A buyer cancels while the worker's charge is in flight: the capture lands on a cancelled
  order, which cannot keep it, so it is refunded automatically (a compensation, with its
  reason, announced to the buyer and staff).
Both end with `check_money_ledger` passing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from io import StringIO
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.core.management import call_command
from rest_framework_simplejwt.tokens import AccessToken

from apps.catalog.models import Product
from apps.orders.models import Order, OrderStatus
from apps.payments import events as payment_events
from apps.payments.models import (
    MoneyMovement,
    Payment,
    PaymentStatus,
    Refund,
    RefundOrigin,
    RefundStatus,
)
from ecommerce.api.permissions import Role
from ecommerce.outbox.models import OutboxMessage
from tests.catalog.factories import make_product
from tests.catalog.helpers import stock_of
from tests.integration.helpers import wait_until
from tests.integration.processes import CeleryWorker, SandboxServer, Workers
from tests.roles import restore_role_groups
from tests.servers import GunicornServer
from tests.users.factories import UserFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

TOTAL = Decimal("25.00")  # two lamps at 12.50
# Longer than the charge answer held back below, so the worker waits for it.
WORKER = {"PAYMENT_PROVIDER_READ_TIMEOUT_SECONDS": "5"}


@pytest.fixture(scope="module")
def web(process_env: dict[str, str], integration_dir: Path) -> Iterator[GunicornServer]:
    """The web app under gunicorn on this test database, publishing to the workers' broker."""
    env = {**process_env, "RATE_LIMIT_ENABLED": "0", **WORKER}
    server = GunicornServer(workers=2, env=env, log_path=integration_dir / "refunds-web.log")
    yield server
    server.stop()


@pytest.fixture
def worker(workers: Workers, publishing: Any) -> CeleryWorker:
    return workers.running(**WORKER)


@pytest.fixture
def lamp() -> Product:
    return make_product(sku="lamp", stock=10, price="12.50")


def bearer(user: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {AccessToken.for_user(user)}"}


def place(web: GunicornServer, buyer: Any) -> Order:
    body = {"items": [{"id": "lamp", "quantity": 2}], "payment_token": "tok_success"}
    response = httpx.post(f"{web.url}/api/orders", json=body, headers=bearer(buyer), timeout=10)
    assert response.status_code == 201, response.text
    return Order.objects.get(public_id=response.json()["id"])


def status_of(order: Order) -> str:
    order.refresh_from_db()
    return str(order.status)


def race(*calls: Callable[[], Any]) -> list[Any]:
    """Run each call in its own thread, released together; return results in order."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], Any]) -> Any:
        barrier.wait(timeout=10)
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def assert_ledger_passes() -> None:
    out = StringIO()
    call_command("check_money_ledger", "--grace-seconds", "0", stdout=out)
    assert "0 broken" in out.getvalue(), out.getvalue()


def refunds_at_provider(sandbox: SandboxServer) -> int:
    return int(sandbox.http.get("/_sandbox/stats").json()["refunds"]["succeeded"])


def test_two_refunds_at_once_that_together_exceed_the_capture_refund_one(
    web: GunicornServer, worker: CeleryWorker, sandbox: SandboxServer, lamp: Product
) -> None:
    # given: a paid order (the worker charged it) and two support staff
    restore_role_groups()
    order = place(web, UserFactory(roles=[Role.CUSTOMER]))
    wait_until(lambda: status_of(order) == OrderStatus.PAID, what="order paid", worker=worker)
    staff = [UserFactory(is_staff=True, roles=[Role.SUPPORT]) for _ in range(2)]
    url = f"{web.url}/api/orders/{order.public_id}/refunds"
    sandbox.configure(latency_ms=300)  # both are in flight at the provider at once

    def refund(by: Any, reason: str) -> httpx.Response:
        body = {"amount": "15.00", "reason": reason}
        return httpx.post(url, json=body, headers=bearer(by), timeout=15)

    # when
    answers = race(lambda: refund(staff[0], "first"), lambda: refund(staff[1], "second"))

    # then: one refunded 15.00, the other refused with what is left
    by_status = {answer.status_code: answer for answer in answers}
    assert sorted(by_status) == [201, 409], [a.text for a in answers]
    refused = by_status[409]
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "refund_exceeds_refundable"
    assert "at most 10.00 EUR is left to refund" in refused.json()["detail"]
    assert by_status[201].json()["status"] == "succeeded"
    assert list(Refund.objects.values_list("amount", "status")) == [
        (Decimal("15.00"), RefundStatus.SUCCEEDED)
    ]
    order.refresh_from_db()
    assert (order.status, order.amount_paid) == (OrderStatus.PAID, Decimal("10.00"))
    assert refunds_at_provider(sandbox) == 1
    charge = sandbox.charge_for(Payment.objects.get(order=order).idempotency_key)
    assert charge is not None
    assert charge["amount_refunded"] == "15.00"
    assert_ledger_passes()


def test_a_cancel_while_the_capture_is_in_flight_is_refunded_automatically(
    web: GunicornServer, worker: CeleryWorker, sandbox: SandboxServer, lamp: Product
) -> None:
    # given: the provider takes the money at once but answers the worker 2 s later
    sandbox.configure(respond_after_commit_delay_ms=2000)
    buyer = UserFactory(roles=[Role.CUSTOMER])
    order = place(web, buyer)
    payment = wait_until(
        lambda: Payment.objects.filter(order=order, attempts__gt=0).first(),
        what="the charge under way",
        worker=worker,
    )
    wait_until(
        lambda: sandbox.charge_for(payment.idempotency_key), what="the capture at the provider"
    )

    # when: the buyer cancels before the answer arrives
    cancelled = httpx.post(
        f"{web.url}/api/orders/{order.public_id}/cancel",
        json={"reason": "changed my mind"},
        headers=bearer(buyer),
        timeout=10,
    )

    # then: cancelled, and the capture is refunded in full by the system, with its reason
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == OrderStatus.CANCELLED
    refund = wait_until(
        lambda: Refund.objects.filter(order=order, status=RefundStatus.SUCCEEDED).first(),
        what="the compensation refund",
        worker=worker,
    )
    assert (refund.origin, refund.amount) == (RefundOrigin.COMPENSATION, TOTAL)
    assert refund.reason == "late charge of an order cancelled"
    order.refresh_from_db()
    payment.refresh_from_db()
    assert (order.status, order.amount_paid, payment.status) == (
        OrderStatus.CANCELLED,
        Decimal("0.00"),
        PaymentStatus.REFUNDED,
    )
    assert sorted(MoneyMovement.objects.filter(order=order).values_list("kind", "amount")) == [
        ("capture", TOTAL),
        ("refund", TOTAL),
    ]
    charge = sandbox.charge_for(payment.idempotency_key)
    assert charge is not None
    assert charge["amount_refunded"] == "25.00"
    assert stock_of(lamp.variant.pk) == 10
    assert OutboxMessage.objects.filter(topic=payment_events.PAYMENT_COMPENSATED).exists()
    assert_ledger_passes()
