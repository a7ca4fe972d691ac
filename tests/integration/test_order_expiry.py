"""`manage.py expire_orders` as its own process, on orders this process committed.

Their `order.placed` is never handled here (no_charge_requests), so they reach expiry
without a payment: expiry asks the provider by the key the payment would have all the same.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.inventory.models import StockMovement
from apps.orders.models import Order, OrderStatus
from apps.payments.models import Payment, PaymentStatus
from ecommerce.outbox.models import OutboxMessage
from tests.catalog.factories import make_product
from tests.catalog.helpers import assert_ledger_matches, stock_of
from tests.integration.helpers import history, place, placed_order
from tests.integration.processes import ROOT, SandboxServer

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

TIMEOUT_SECONDS = 900


def expire_orders(env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", "expire_orders"],
        cwd=ROOT,
        env={**env, "ORDER_PAYMENT_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def created_ago(order: Order, seconds: int) -> None:
    """Backdate an order's placement, and its hold with it."""
    created = timezone.now() - timedelta(seconds=seconds)
    Order.objects.filter(pk=order.pk).update(
        created_at=created, expires_at=created + timedelta(seconds=TIMEOUT_SECONDS)
    )


def test_an_unpaid_order_past_the_timeout_expires_once_and_its_stock_returns_once(
    process_env: dict[str, str], client: APIClient, no_charge_requests: None
) -> None:
    product = make_product(sku="p", stock=5)
    stale = placed_order(place(client, "p", 2))
    fresh = placed_order(place(client, "p", 1))
    created_ago(stale, TIMEOUT_SECONDS + 1)
    created_ago(fresh, TIMEOUT_SECONDS - 60)

    first = expire_orders(process_env)
    second = expire_orders(process_env)

    assert (first, second) == (
        "expired 1 order(s), 0 paid, 0 declined, 0 deferred",
        "expired 0 order(s), 0 paid, 0 declined, 0 deferred",
    )
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert (stale.status, fresh.status) == (OrderStatus.EXPIRED, OrderStatus.PENDING_PAYMENT)
    assert history(stale) == [("", "pending_payment"), ("pending_payment", "expired")]
    assert list(
        StockMovement.objects.filter(reference=f"order:{stale.public_id}")
        .order_by("pk")
        .values_list("delta", "reason")
    ) == [(-2, "order"), (2, "expiry")]
    assert stock_of(product.variant.pk) == 4
    assert_ledger_matches(product.variant.pk)
    # Opened by expiry to ask the provider under its key, never charged; the fresh order
    # was not asked about.
    payment = Payment.objects.get(order=stale)
    assert (payment.status, payment.attempts) == (PaymentStatus.PENDING, 0)
    assert payment.idempotency_key == f"order-{stale.public_id}"
    assert not Payment.objects.filter(order=fresh).exists()
    # Expired once: one message for each handler of the topic (notifications, the voucher).
    handlers = list(
        OutboxMessage.objects.filter(topic="order.expired").values_list("task_name", flat=True)
    )
    assert sorted(handlers) == sorted(set(handlers))
    assert "checkout.release_voucher_use" in handlers


def test_an_order_is_not_expired_while_the_provider_cannot_be_asked(
    process_env: dict[str, str],
    sandbox: SandboxServer,
    client: APIClient,
    no_charge_requests: None,
) -> None:
    product = make_product(sku="p", stock=5)
    order = placed_order(place(client, "p", 2))
    created_ago(order, TIMEOUT_SECONDS + 1)
    sandbox.stop()

    while_down = expire_orders(process_env)

    assert while_down == "expired 0 order(s), 0 paid, 0 declined, 1 deferred"
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING_PAYMENT
    assert stock_of(product.variant.pk) == 3

    sandbox.start()  # up again, and it never charged this order
    assert expire_orders(process_env) == "expired 1 order(s), 0 paid, 0 declined, 0 deferred"
    order.refresh_from_db()
    assert order.status == OrderStatus.EXPIRED
    assert stock_of(product.variant.pk) == 5
    assert_ledger_matches(product.variant.pk)
