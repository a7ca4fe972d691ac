"""The payment lifecycle across real processes: orders placed here are charged by a Celery
worker through the sandbox process, whose signed events reach the web app under gunicorn.

- A charge that needs the customer's action: the order says so with the sandbox's redirect
  URL; the customer confirms there; the provider's event pays the order.
- The same, abandoned: the order expires with its stock hold and the waiting charge is
  voided by the worker.
- Capture at fulfilment: a worker opening payments with PAYMENT_CAPTURE_MODE=fulfilment
  authorizes; fulfilling part of the order makes the worker capture what shipped, the
  rest released and back in stock.
Each ends with one state and `check_money_ledger` passing.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from apps.catalog.models import Product
from apps.orders import services as orders_services
from apps.orders.models import Order, OrderStatus
from apps.payments import services as payments_services
from apps.payments.models import MoneyMovement, Payment, PaymentStatus, ProviderEvent
from tests.catalog.factories import make_product
from tests.catalog.helpers import stock_of
from tests.integration.helpers import (
    place,
    placed_order,
    task_outcomes,
    wait_for_status,
    wait_until,
)
from tests.integration.processes import Broker, SandboxServer, Workers
from tests.servers import GunicornServer
from tests.users.factories import UserFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SECRET = "whsec_lifecycle_only"


@pytest.fixture(scope="module")
def web(process_env: dict[str, str], integration_dir: Path) -> Iterator[GunicornServer]:
    """The web app under gunicorn, receiving the sandbox's webhooks (what it publishes runs
    in the web process: no broker, nothing queued for the workers of other tests)."""
    env = {
        **process_env,
        "PAYMENT_WEBHOOK_SECRET": SECRET,
        "CELERY_BROKER_URL": "",
        "RATE_LIMIT_ENABLED": "0",
    }
    server = GunicornServer(workers=2, env=env, log_path=integration_dir / "lifecycle-web.log")
    yield server
    server.stop()


@pytest.fixture
def provider(sandbox: SandboxServer, web: GunicornServer, settings: Any) -> SandboxServer:
    settings.PAYMENT_WEBHOOK_SECRET = SECRET
    sandbox.configure(webhook_url=f"{web.url}/api/payments/webhooks/sandbox", webhook_secret=SECRET)
    return sandbox


@pytest.fixture
def lamp() -> Product:
    return make_product(sku="lamp", stock=10, price="12.50")


def stored(event_type: str) -> list[ProviderEvent]:
    return list(ProviderEvent.objects.filter(type=event_type).order_by("pk"))


def kinds(order: Order) -> list[tuple[str, Decimal]]:
    rows = MoneyMovement.objects.filter(order=order).order_by("pk")
    return list(rows.values_list("kind", "amount"))


def assert_ledger_passes() -> None:
    call_command("check_money_ledger", "--grace-seconds", "0", stdout=StringIO())


def test_action_required_then_completed_by_the_customer_pays_the_order(
    provider: SandboxServer,
    workers: Workers,
    publishing: Broker,
    client: APIClient,
    lamp: Product,
) -> None:
    worker = workers.running()
    order = placed_order(place(client, "lamp", 2, token="tok_action_required"))

    wait_for_status(order, OrderStatus.ACTION_REQUIRED, worker=worker)
    body = client.get(f"/api/orders/{order.public_id}").json()
    next_action = body["next_action"]
    assert body["status"] == "action_required"
    assert next_action["type"] == "redirect"
    assert next_action["url"].startswith(f"{provider.url}/v1/charges/ch_")
    page = provider.http.get(next_action["url"])
    assert 'value="confirm"' in page.text
    # The customer confirms on the provider's page; its event reaches the web app.
    assert provider.http.post(next_action["url"], data={"action": "confirm"}).status_code == 200

    (event,) = wait_until(lambda: stored("charge.action_completed"), what="the action's event")
    order.refresh_from_db()
    payment = Payment.objects.get(order=order)
    assert event.outcome == "paid"
    assert (order.status, order.amount_paid, order.next_action) == (
        OrderStatus.PAID,
        Decimal("25.00"),
        None,
    )
    assert payment.status == PaymentStatus.SUCCEEDED
    assert kinds(order) == [("capture", Decimal("25.00"))]
    assert provider.charges()["total"] == 1
    assert client.get(f"/api/orders/{order.public_id}").json()["next_action"] is None
    assert_ledger_passes()


def test_action_required_then_abandoned_expires_with_the_hold_and_voids_the_charge(
    provider: SandboxServer,
    workers: Workers,
    publishing: Broker,
    client: APIClient,
    lamp: Product,
) -> None:
    worker = workers.running()
    mark = len(worker.log())
    order = placed_order(place(client, "lamp", 2, token="tok_action_required"))
    wait_for_status(order, OrderStatus.ACTION_REQUIRED, worker=worker)
    assert stock_of(lamp.variants.get().pk) == 8
    # The charge task has returned, so it no longer holds the order's charge lock (the
    # order turns action_required before the lock is released): the sweep is not deferred.
    wait_until(
        lambda: task_outcomes(worker, since=mark) == ["action_required"],
        what="the charge task done",
        worker=worker,
    )

    # Nobody comes back: the expiry sweep (here, past the hold) asks the provider first.
    counts = payments_services.expire_overdue_orders(now=order.expires_at + timedelta(seconds=1))

    assert counts["expired"] == 1
    payment = Payment.objects.get(order=order)
    wait_until(
        lambda: Payment.objects.filter(pk=payment.pk, status=PaymentStatus.VOIDED).exists(),
        what="the worker voiding the waiting charge",
        worker=worker,
    )
    (event,) = wait_until(lambda: stored("charge.voided"), what="the void's event")
    order.refresh_from_db()
    # The worker's answer or the provider's event records the void, whichever lands first;
    # the other finds it done.
    assert event.outcome in ("already_recorded", "voided")
    assert (order.status, order.amount_paid) == (OrderStatus.EXPIRED, Decimal(0))
    assert stock_of(lamp.variants.get().pk) == 10
    assert kinds(order) == []
    charge = provider.charge_for(payment.idempotency_key)
    assert charge is not None
    assert charge["status"] == "voided"
    late = provider.http.post(f"/v1/charges/{charge['id']}/action", data={"action": "confirm"})
    assert (late.status_code, late.json()["error"]) == (400, "action_not_pending")
    assert_ledger_passes()


@pytest.mark.parametrize(
    ("fault", "recorded_by_event"),
    [
        pytest.param({"webhook_delay_seconds": 3.0}, "already_recorded", id="answer-first"),
        pytest.param({"respond_after_commit_delay_ms": 3000}, "captured", id="event-first"),
    ],
)
def test_capture_at_fulfilment_captures_what_shipped(
    provider: SandboxServer,
    workers: Workers,
    publishing: Broker,
    client: APIClient,
    lamp: Product,
    fault: dict[str, Any],
    recorded_by_event: str,
) -> None:
    """Whichever of the worker's answer and the provider's event lands first records the
    capture; the other finds it done, and the ledger holds one capture either way."""
    # A read timeout longer than the answer's delay: the worker waits for it, not retries.
    worker = workers.running(
        PAYMENT_CAPTURE_MODE="fulfilment", PAYMENT_PROVIDER_READ_TIMEOUT_SECONDS="5"
    )
    order = placed_order(place(client, "lamp", 3))

    wait_for_status(order, OrderStatus.AUTHORIZED, worker=worker)
    payment = Payment.objects.get(order=order)
    assert (payment.capture_mode, payment.status) == ("fulfilment", PaymentStatus.AUTHORIZED)
    assert client.get(f"/api/orders/{order.public_id}").json()["amount_paid"] == "0.00"
    wait_until(lambda: stored("charge.authorized"), what="the authorization's event")

    # Staff ship two of the three lamps; the worker captures on `order.fulfilled`.
    provider.configure(**fault)
    orders_services.fulfil_order(order_id=order.pk, by=UserFactory(), shipped={"lamp": 2})

    wait_until(
        lambda: Payment.objects.filter(pk=payment.pk, status=PaymentStatus.SUCCEEDED).exists(),
        what="the worker's capture",
        worker=worker,
    )
    (event,) = wait_until(lambda: stored("charge.captured"), what="the capture's event")
    order.refresh_from_db()
    assert event.outcome == recorded_by_event
    assert (order.status, order.amount_paid) == (OrderStatus.FULFILLED, Decimal("25.00"))
    assert kinds(order) == [
        ("authorization", Decimal("37.50")),
        ("capture", Decimal("25.00")),
        ("void", Decimal("12.50")),
    ]
    assert stock_of(lamp.variants.get().pk) == 8  # the unshipped lamp is back
    charge = provider.charge_for(payment.idempotency_key)
    assert charge is not None
    assert (charge["status"], charge["amount_captured"]) == ("succeeded", "25.00")
    assert provider.charges()["total"] == 1
    assert_ledger_passes()
