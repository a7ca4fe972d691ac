"""Provider webhooks raced for real: the sandbox process sends signed events from its own
thread to the web app under gunicorn, while this process charges and refunds through the
payment services (the charge task's code) over HTTP.

Each test arranges when the webhook arrives relative to the charge's own answer (before,
after, instead of it, twice, out of order, never) and checks that exactly one correct
state remains: the order paid once, one succeeded payment, one capture in the money
ledger, one stored event per provider event, and `check_money_ledger` passing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from apps.catalog.models import Product
from apps.orders import events as order_events
from apps.orders import services as orders_services
from apps.orders.models import Order, OrderEvent, OrderStatus
from apps.payments import services as payments_services
from apps.payments.exceptions import ProviderUnavailable
from apps.payments.models import MoneyMovement, Payment, PaymentStatus, ProviderEvent
from ecommerce.outbox import registry
from ecommerce.outbox.models import OutboxMessage
from tests.catalog.factories import make_product
from tests.integration.helpers import place as place_over_api
from tests.integration.helpers import placed_order, wait_for_status
from tests.integration.processes import CeleryWorker, SandboxServer
from tests.servers import GunicornServer
from tests.users.factories import UserFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SECRET = "whsec_integration_only"
TOTAL = Decimal("25.00")


@pytest.fixture(scope="module")
def web(process_env: dict[str, str], integration_dir: Path) -> Iterator[GunicornServer]:
    """The web app under gunicorn, on this test database, sharing the webhook secret.

    No broker: what its services publish runs in the web process (eager), so nothing is
    left queued for the workers of other tests.
    """
    env = {
        **process_env,
        "PAYMENT_WEBHOOK_SECRET": SECRET,
        "CELERY_BROKER_URL": "",
        "RATE_LIMIT_ENABLED": "0",
    }
    server = GunicornServer(workers=2, env=env, log_path=integration_dir / "webhooks-web.log")
    yield server
    server.stop()


@pytest.fixture
def no_charge_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    """Orders placed now queue no charge (the test charges them); other handlers stay, so
    a refund the orders app claims is still done by payments, on commit."""
    charging = {order_events.ORDER_PLACED, payments_services.CHARGE_REQUESTED}
    kept = {topic: h for topic, h in registry._handlers.items() if topic not in charging}
    monkeypatch.setattr(registry, "_handlers", kept)


@pytest.fixture
def provider(
    sandbox: SandboxServer,
    web: GunicornServer,
    shared_cache: None,
    no_charge_requests: None,
    settings: Any,
) -> SandboxServer:
    """The sandbox, sending its webhooks to the web app; this process pays through it."""
    settings.PAYMENT_PROVIDER_URL = sandbox.url
    settings.PAYMENT_PROVIDER_READ_TIMEOUT_SECONDS = 5.0
    settings.PAYMENT_WEBHOOK_SECRET = SECRET
    sandbox.configure(webhook_url=f"{web.url}/api/payments/webhooks/sandbox", webhook_secret=SECRET)
    return sandbox


@pytest.fixture
def lamp() -> Product:
    return make_product(sku="lamp", stock=50, price="12.50")


def place(lamp: Product) -> Order:
    order, _ = orders_services.place_order(
        user=UserFactory(),
        lines=[orders_services.OrderLine("lamp", 2)],
        payment_token="tok_success",
    )
    payments_services.open_payment(order_id=order.pk)
    return order


def wait_until(check: Callable[[], Any], *, what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def in_thread(call: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    """Run `call` in a thread with its own database connection; its result lands in the list."""
    result: list[Any] = []

    def run() -> None:
        try:
            result.append(call())
        except Exception as exc:
            result.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


def webhooks(sandbox: SandboxServer) -> dict[str, Any]:
    return dict(sandbox.http.get("/_sandbox/stats").json()["webhooks"])


def stored(event_type: str) -> list[ProviderEvent]:
    return list(ProviderEvent.objects.filter(type=event_type).order_by("pk"))


def assert_paid_once(order: Order, sandbox: SandboxServer) -> None:
    """One correct state: paid once, one succeeded payment, one capture, the ledger agrees."""
    order.refresh_from_db()
    payment = Payment.objects.get(order=order)
    assert order.status == OrderStatus.PAID
    assert payment.status == PaymentStatus.SUCCEEDED
    charge = sandbox.charge_for(payment.idempotency_key)
    assert charge is not None
    assert payment.provider_charge_id == charge["id"]
    assert sandbox.charges()["total"] == 1
    assert list(MoneyMovement.objects.filter(order=order).values_list("kind", "amount")) == [
        ("capture", TOTAL)
    ]
    transitions = list(
        OrderEvent.objects.filter(order=order).values_list("from_status", "to_status")
    )
    assert transitions.count((OrderStatus.PENDING_PAYMENT, OrderStatus.PAID)) == 1


def assert_ledger_passes() -> None:
    out = StringIO()
    call_command("check_money_ledger", "--grace-seconds", "0", stdout=out)


def test_a_webhook_before_the_charges_answer_pays_the_order_once(
    provider: SandboxServer, lamp: Product
) -> None:
    order = place(lamp)
    # The charge commits at the provider, its webhook leaves at once, its answer waits.
    provider.configure(respond_after_commit_delay_ms=2500)

    thread, result = in_thread(lambda: payments_services.charge_payment(order_id=order.pk))
    events = wait_until(lambda: stored("charge.succeeded"), what="the charge webhook")

    assert thread.is_alive(), "the charge's answer came before its webhook"
    assert events[0].outcome == "paid"
    thread.join(timeout=20)
    assert result == ["succeeded"]
    assert_paid_once(order, provider)
    assert len(stored("charge.succeeded")) == 1
    assert_ledger_passes()


def test_a_webhook_after_the_charges_answer_changes_nothing(
    provider: SandboxServer, lamp: Product
) -> None:
    order = place(lamp)
    # Held back 3 s: the charge's answer is recorded long before the webhook arrives.
    provider.configure(webhook_delay_seconds=3.0)

    assert payments_services.charge_payment(order_id=order.pk) == "succeeded"
    assert stored("charge.succeeded") == []
    events = wait_until(lambda: stored("charge.succeeded"), what="the charge webhook")

    assert events[0].outcome == "already_recorded"
    assert_paid_once(order, provider)
    assert_ledger_passes()


def test_a_webhook_instead_of_a_lost_answer_pays_the_order_and_the_retry_does_nothing(
    provider: SandboxServer, lamp: Product, settings: Any
) -> None:
    order = place(lamp)
    settings.PAYMENT_PROVIDER_READ_TIMEOUT_SECONDS = 0.5
    provider.configure(respond_after_commit_delay_ms=3000)

    with pytest.raises(ProviderUnavailable):
        payments_services.charge_payment(order_id=order.pk)
    events = wait_until(lambda: stored("charge.succeeded"), what="the charge webhook")
    provider.configure(respond_after_commit_delay_ms=0)

    assert events[0].outcome == "paid"
    # The task's retry finds the order paid: no second call, nothing recorded twice.
    assert payments_services.charge_payment(order_id=order.pk) == "noop"
    assert_paid_once(order, provider)
    assert_ledger_passes()


def test_a_webhook_delivered_twice_is_stored_and_applied_once(
    provider: SandboxServer, lamp: Product
) -> None:
    order = place(lamp)
    provider.configure(webhook_duplicate=True)

    assert payments_services.charge_payment(order_id=order.pk) == "succeeded"
    wait_until(lambda: webhooks(provider)["delivered"] == 2, what="both deliveries")

    log = webhooks(provider)["log"]
    assert [entry["status"] for entry in log] == [200, 200]
    assert log[0]["event"] == log[1]["event"]
    events = stored("charge.succeeded")
    assert [e.event_id for e in events] == [log[0]["event"]]
    # The charge's answer and its webhook raced: either recorded it, the other found it done.
    assert events[0].outcome in ("paid", "already_recorded")
    assert_paid_once(order, provider)
    assert_ledger_passes()


def test_webhooks_out_of_order_leave_one_refunded_order(
    provider: SandboxServer, lamp: Product
) -> None:
    order = place(lamp)
    # Each event waits for the next: the refund's event goes before the charge's.
    provider.configure(webhook_reorder=True)
    assert payments_services.charge_payment(order_id=order.pk) == "succeeded"

    # Staff refund; payments refunds on commit (this process runs the handler).
    orders_services.refund_order(order_id=order.pk, by=UserFactory(), reason="customer asked")
    wait_until(lambda: webhooks(provider)["delivered"] == 2, what="both deliveries")

    log = webhooks(provider)["log"]
    assert [entry["type"] for entry in log] == ["refund.succeeded", "charge.succeeded"]
    order.refresh_from_db()
    payment = Payment.objects.get(order=order)
    assert order.status == OrderStatus.REFUNDED
    assert payment.status == PaymentStatus.REFUNDED
    assert stored("charge.succeeded")[0].outcome == "already_recorded"
    assert stored("refund.succeeded")[0].outcome in ("refunded", "already_recorded")
    assert sorted(MoneyMovement.objects.filter(order=order).values_list("kind", "amount")) == [
        ("capture", TOTAL),
        ("refund", TOTAL),
    ]
    charge = provider.charge_for(payment.idempotency_key)
    assert charge is not None
    assert Decimal(charge["amount_refunded"]) == TOTAL
    assert provider.charges()["total"] == 1
    assert_ledger_passes()


def test_dropped_webhooks_and_a_lost_answer_are_healed_by_reconciliation(
    provider: SandboxServer, lamp: Product, settings: Any
) -> None:
    order = place(lamp)
    settings.PAYMENT_PROVIDER_READ_TIMEOUT_SECONDS = 0.5
    provider.configure(webhook_drop=True, respond_after_commit_delay_ms=1500)

    with pytest.raises(ProviderUnavailable):
        payments_services.charge_payment(order_id=order.pk)
    provider.configure(respond_after_commit_delay_ms=0)
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING_PAYMENT

    later = timezone.now() + timedelta(seconds=settings.PAYMENT_RECONCILE_AFTER_SECONDS + 1)
    counts = payments_services.reconcile_payments(now=later)

    assert counts["paid"] == 1
    assert webhooks(provider)["dropped"] == 1
    assert webhooks(provider)["delivered"] == 0
    assert not ProviderEvent.objects.exists()
    assert_paid_once(order, provider)
    assert_ledger_passes()


def test_the_charge_worker_and_the_webhook_racing_leave_one_paid_order(
    live_celery: CeleryWorker, sandbox: SandboxServer, web: GunicornServer, client: APIClient
) -> None:
    """The real path: the order is placed over the API, a Celery worker charges it, and the
    provider's answer outlasts the worker's read timeout while its webhook goes at once."""
    sandbox.configure(
        webhook_url=f"{web.url}/api/payments/webhooks/sandbox",
        webhook_secret=SECRET,
        respond_after_commit_delay_ms=1500,
    )
    make_product(sku="p", stock=5, price="12.50")

    order = placed_order(place_over_api(client, "p", 2))

    wait_for_status(order, OrderStatus.PAID, worker=live_celery)
    (event,) = wait_until(lambda: stored("charge.succeeded"), what="the charge webhook")
    placed = OutboxMessage.objects.get(topic="order.placed", task_name="payments.charge_payment")
    wait_until(
        lambda: OutboxMessage.objects.filter(pk=placed.pk, completed_at__isnull=False).exists(),
        what="the worker's charge task done",
    )
    assert event.outcome in ("paid", "already_recorded")
    assert_paid_once(order, sandbox)
    assert len(stored("charge.succeeded")) == 1
    assert_ledger_passes()


def test_a_webhook_for_an_order_cancelled_while_its_charge_was_lost_refunds_it(
    provider: SandboxServer, lamp: Product, settings: Any
) -> None:
    """Compensation through the webhook: the charge's answer is lost, the customer cancels,
    then the provider's event reports the charge; the money goes back at once."""
    order = place(lamp)
    settings.PAYMENT_PROVIDER_READ_TIMEOUT_SECONDS = 0.5
    # The answer is lost (0.5 s read timeout, answered after 1.5 s); the event is held back
    # 5 s, so the cancellation comes first with seconds to spare. The refund's own event is
    # held 5 s too.
    provider.configure(webhook_delay_seconds=5.0, respond_after_commit_delay_ms=1500)

    with pytest.raises(ProviderUnavailable):
        payments_services.charge_payment(order_id=order.pk)
    orders_services.cancel_order(order_id=order.pk, by=order.user, reason="changed my mind")
    (event,) = wait_until(lambda: stored("charge.succeeded"), what="the charge webhook")
    wait_until(lambda: stored("refund.succeeded"), what="the refund webhook")

    assert event.outcome == "late_charge"
    order.refresh_from_db()
    payment = Payment.objects.get(order=order)
    assert order.status == OrderStatus.CANCELLED
    assert payment.status == PaymentStatus.REFUNDED
    assert stored("refund.succeeded")[0].outcome == "already_recorded"
    assert sorted(MoneyMovement.objects.filter(order=order).values_list("kind", "amount")) == [
        ("capture", TOTAL),
        ("refund", TOTAL),
    ]
    charge = provider.charge_for(payment.idempotency_key)
    assert charge is not None
    assert Decimal(charge["amount_refunded"]) == TOTAL
    assert provider.charges()["total"] == 1
    assert_ledger_passes()
