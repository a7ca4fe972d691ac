"""The payments side of `order.placed`: the order arrives without a payment, its handler opens
one from what the order stores and charges it, and any number of deliveries open one payment
and make one charge. The provider is the sandbox in-process (embedded mode)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from apps.catalog.models import Product
from apps.orders import services as orders_services
from apps.orders.models import Order, OrderStatus
from apps.payments import services as payments_services
from apps.payments.gateway import InProcessSandboxGateway, get_gateway
from apps.payments.models import Payment, PaymentStatus
from apps.payments.tasks import charge_payment_task
from ecommerce.outbox.models import OutboxMessage
from tests.catalog.factories import make_product
from tests.catalog.helpers import stock_of
from tests.users.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def lamp() -> Product:
    return make_product(sku="lamp", stock=10, price="12.50")


@pytest.fixture
def place(lamp: Product) -> Any:
    """Place an order; its `order.placed` stays in the outbox (nothing runs on commit)."""

    def make(token: str = "tok_success", quantity: int = 2) -> Order:
        order, _ = orders_services.place_order(
            user=UserFactory(),
            lines=[orders_services.OrderLine("lamp", quantity)],
            payment_token=token,
        )
        return order

    return make


def provider_charges(order: Order) -> list[dict[str, Any]]:
    gateway = get_gateway()
    assert isinstance(gateway, InProcessSandboxGateway)
    key = Payment.key_for(order.public_id)
    return list(gateway.provider.list_charges(idempotency_key=key).body["data"])


def deliver_order_placed(order: Order) -> Any:
    """Run the payments handler of the order's `order.placed` row, as a worker would."""
    message = OutboxMessage.objects.get(topic="order.placed", task_name="payments.charge_payment")
    assert message.payload == {"order_id": order.pk}
    return charge_payment_task.apply(kwargs=message.payload).get()


def test_a_placed_order_has_no_payment_until_its_handler_opens_and_charges_it(place, lamp):
    order = place(quantity=3)
    assert not Payment.objects.filter(order=order).exists()

    assert deliver_order_placed(order) == "succeeded"

    payment = Payment.objects.get(order=order)
    assert (payment.amount, payment.currency, payment.token) == (
        Decimal("37.50"),
        "EUR",
        "tok_success",
    )
    assert payment.idempotency_key == f"order-{order.public_id}"
    assert (payment.status, payment.attempts) == (PaymentStatus.SUCCEEDED, 1)
    assert [c["id"] for c in provider_charges(order)] == [payment.provider_charge_id]
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PAID
    assert stock_of(lamp.variant.pk) == 7


def test_a_second_delivery_of_order_placed_opens_nothing_and_charges_nothing(place):
    order = place()

    first = deliver_order_placed(order)
    second = deliver_order_placed(order)

    assert (first, second) == ("succeeded", "noop")
    payment = Payment.objects.get(order=order)
    assert (payment.status, payment.attempts) == (PaymentStatus.SUCCEEDED, 1)
    assert len(provider_charges(order)) == 1


def test_a_declined_card_read_from_the_order_fails_it_and_returns_the_stock(place, lamp):
    order = place(token="tok_card_declined")

    assert deliver_order_placed(order) == "declined"

    payment = Payment.objects.get(order=order)
    assert (payment.status, payment.decline_code) == (PaymentStatus.DECLINED, "card_declined")
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PAYMENT_FAILED
    assert stock_of(lamp.variant.pk) == 10


def test_opening_twice_gives_the_one_payment(place):
    order = place()

    first = payments_services.open_payment(order_id=order.pk)
    second = payments_services.open_payment(order_id=order.pk)

    assert first is not None
    assert second is not None
    assert first.pk == second.pk
    assert Payment.objects.filter(order=order).count() == 1
    assert (second.status, second.attempts) == (PaymentStatus.PENDING, 0)


def test_an_order_cancelled_before_its_handler_ran_gets_no_payment_and_no_charge(place, lamp):
    order = place()
    orders_services.cancel_order(order_id=order.pk, by=None)

    assert deliver_order_placed(order) == "noop"

    assert payments_services.open_payment(order_id=order.pk) is None
    assert not Payment.objects.filter(order=order).exists()
    assert provider_charges(order) == []
    assert Order.objects.get(pk=order.pk).status == OrderStatus.CANCELLED
    assert stock_of(lamp.variant.pk) == 10


def test_a_staff_retry_of_an_order_without_a_payment_opens_and_charges_it(place):
    order = place()
    assert orders_services.request_payment_retry(order_id=order.pk)
    retry = OutboxMessage.objects.get(topic="order.payment_retry_requested")

    assert charge_payment_task.apply(kwargs=retry.payload).get() == "succeeded"

    assert Payment.objects.get(order=order).status == PaymentStatus.SUCCEEDED
    assert len(provider_charges(order)) == 1
