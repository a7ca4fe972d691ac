"""Expiry asks the provider first: an overdue order is expired only when the provider has no
charge under its payment's key; a charge it made pays or fails the order instead, and an
order the provider cannot be asked about (or whose charge is in flight) is left for later."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone
from prometheus_client import REGISTRY

from apps.catalog.models import Product
from apps.inventory.models import StockMovement
from apps.orders import services as orders_services
from apps.orders.models import Order, OrderEvent, OrderStatus
from apps.payments import services as payments_services
from apps.payments.exceptions import PaymentDeclined
from apps.payments.gateway import get_gateway
from apps.payments.models import Payment, PaymentStatus
from apps.payments.services import expire_overdue_orders
from ecommerce.resilience.locks import distributed_lock
from tests.catalog.factories import make_product
from tests.catalog.helpers import assert_ledger_matches, stock_of
from tests.users.factories import UserFactory

pytestmark = pytest.mark.django_db

NOTHING = {"expired": 0, "paid": 0, "declined": 0, "deferred": 0}


@pytest.fixture
def lamp() -> Product:
    return make_product(sku="lamp", stock=10, price="12.50")


@pytest.fixture
def unopened(lamp: Product, django_capture_on_commit_callbacks: Any) -> Any:
    """Place an order `placed_ago` seconds ago whose `order.placed` never reached payments:
    it has no payment."""

    def make(*, placed_ago: float, token: str = "tok_success") -> Order:
        with django_capture_on_commit_callbacks(execute=False):
            order, _ = orders_services.place_order(
                user=UserFactory(),
                lines=[orders_services.OrderLine("lamp", 2)],
                payment_token=token,
            )
        when = timezone.now() - timedelta(seconds=placed_ago)
        # Its hold runs from its placement: backdated with it.
        Order.objects.filter(pk=order.pk).update(
            created_at=when,
            expires_at=when + timedelta(seconds=settings.ORDER_PAYMENT_TIMEOUT_SECONDS),
        )
        return Order.objects.get(pk=order.pk)

    return make


@pytest.fixture
def place(unopened: Any) -> Any:
    """Place an order `placed_ago` seconds ago and open its payment, whose charge never runs."""

    def make(*, placed_ago: float, token: str = "tok_success") -> Payment:
        order = unopened(placed_ago=placed_ago, token=token)
        return payments_services.open_payment(order_id=order.pk)

    return make


def overdue() -> float:
    return settings.ORDER_PAYMENT_TIMEOUT_SECONDS + 1


def charge_at_provider(payment: Payment) -> Any:
    return get_gateway().charge(
        amount=payment.amount,
        currency=payment.currency,
        token=payment.token,
        idempotency_key=payment.idempotency_key,
    )


def order_of(payment: Payment) -> Order:
    return Order.objects.get(pk=payment.order_id)


def deferred_count() -> float:
    labels = {"sweep": "orders_expiry", "outcome": "deferred"}
    return REGISTRY.get_sample_value("ecommerce_payment_sweep_total", labels) or 0.0


def test_an_overdue_order_without_a_charge_expires_once_and_its_stock_returns(place, lamp):
    stale = place(placed_ago=overdue())
    fresh = place(placed_ago=overdue() - 120)

    assert expire_overdue_orders() == {**NOTHING, "expired": 1}
    assert expire_overdue_orders() == NOTHING

    assert order_of(stale).status == OrderStatus.EXPIRED
    assert order_of(fresh).status == OrderStatus.PENDING_PAYMENT
    assert list(
        StockMovement.objects.filter(reference=f"order:{order_of(stale).public_id}")
        .order_by("pk")
        .values_list("delta", "reason")
    ) == [(-2, "order"), (2, "expiry")]
    assert stock_of(lamp.variant.pk) == 8
    assert_ledger_matches(lamp.variant.pk)


def test_an_overdue_order_the_provider_charged_is_paid_not_expired(place, lamp):
    payment = place(placed_ago=overdue())
    charge = charge_at_provider(payment)

    assert expire_overdue_orders() == {**NOTHING, "paid": 1}

    assert order_of(payment).status == OrderStatus.PAID
    payment.refresh_from_db()
    assert (payment.status, payment.provider_charge_id) == (
        PaymentStatus.SUCCEEDED,
        charge.charge_id,
    )
    assert stock_of(lamp.variant.pk) == 8
    assert not OrderEvent.objects.filter(order_id=payment.order_id, to_status="expired").exists()


def test_an_overdue_order_whose_charge_was_declined_fails(place, lamp):
    payment = place(placed_ago=overdue(), token="tok_insufficient_funds")
    with pytest.raises(PaymentDeclined):
        charge_at_provider(payment)

    assert expire_overdue_orders() == {**NOTHING, "declined": 1}

    assert order_of(payment).status == OrderStatus.PAYMENT_FAILED
    payment.refresh_from_db()
    assert (payment.status, payment.decline_code) == (PaymentStatus.DECLINED, "insufficient_funds")
    assert stock_of(lamp.variant.pk) == 10


def test_an_unreachable_provider_leaves_the_order_for_the_next_run(
    place, lamp, settings, closed_port
):
    settings.PAYMENT_PROVIDER_URL = f"http://127.0.0.1:{closed_port}"
    settings.PAYMENT_PROVIDER_CONNECT_TIMEOUT_SECONDS = 0.2
    payment = place(placed_ago=overdue())
    before = deferred_count()

    assert expire_overdue_orders() == {**NOTHING, "deferred": 1}

    assert deferred_count() == before + 1
    assert order_of(payment).status == OrderStatus.PENDING_PAYMENT
    assert stock_of(lamp.variant.pk) == 8
    settings.PAYMENT_PROVIDER_URL = ""  # back: the next run expires it
    assert expire_overdue_orders() == {**NOTHING, "expired": 1}
    assert order_of(payment).status == OrderStatus.EXPIRED


def test_an_order_whose_charge_is_in_flight_is_left_to_that_charge(place):
    payment = place(placed_ago=overdue())

    with distributed_lock(f"order:{payment.order_id}:charge", ttl_seconds=10):
        assert expire_overdue_orders() == {**NOTHING, "deferred": 1}

    assert order_of(payment).status == OrderStatus.PENDING_PAYMENT


def test_the_command_expires_every_batch_and_prints_the_counts(place, lamp, settings):
    settings.ORDER_EXPIRY_BATCH_SIZE = 2
    for _ in range(3):
        place(placed_ago=overdue())
    charge_at_provider(place(placed_ago=overdue()))
    out = StringIO()

    call_command("expire_orders", stdout=out)

    assert out.getvalue() == "expired 3 order(s), 1 paid, 0 declined, 0 deferred\n"
    assert stock_of(lamp.variant.pk) == 8


def test_an_overdue_order_without_a_payment_is_asked_about_by_its_key_then_expired(unopened, lamp):
    order = unopened(placed_ago=overdue())

    assert expire_overdue_orders() == {**NOTHING, "expired": 1}

    assert Order.objects.get(pk=order.pk).status == OrderStatus.EXPIRED
    assert stock_of(lamp.variant.pk) == 10
    assert_ledger_matches(lamp.variant.pk)
    # Opened to be asked about under its key, never charged.
    payment = Payment.objects.get(order=order)
    assert (payment.idempotency_key, payment.status, payment.attempts) == (
        f"order-{order.public_id}",
        PaymentStatus.PENDING,
        0,
    )
    assert get_gateway().find_charge(idempotency_key=payment.idempotency_key) is None


def test_an_overdue_order_without_a_payment_the_provider_charged_is_paid_not_expired(
    unopened, lamp
):
    order = unopened(placed_ago=overdue())
    charge = get_gateway().charge(
        amount=order.total,
        currency=order.currency,
        token="tok_success",
        idempotency_key=Payment.key_for(order.public_id),
    )

    assert expire_overdue_orders() == {**NOTHING, "paid": 1}

    assert Order.objects.get(pk=order.pk).status == OrderStatus.PAID
    payment = Payment.objects.get(order=order)
    assert (payment.status, payment.provider_charge_id) == (
        PaymentStatus.SUCCEEDED,
        charge.charge_id,
    )
    assert stock_of(lamp.variant.pk) == 8


def test_an_overdue_order_without_a_payment_is_not_expired_while_the_provider_is_unreachable(
    unopened, lamp, settings, closed_port
):
    settings.PAYMENT_PROVIDER_URL = f"http://127.0.0.1:{closed_port}"
    settings.PAYMENT_PROVIDER_CONNECT_TIMEOUT_SECONDS = 0.2
    order = unopened(placed_ago=overdue())

    assert expire_overdue_orders() == {**NOTHING, "deferred": 1}

    assert Order.objects.get(pk=order.pk).status == OrderStatus.PENDING_PAYMENT
    assert stock_of(lamp.variant.pk) == 8
