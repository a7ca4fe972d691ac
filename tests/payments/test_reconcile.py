"""Reconciling payments in doubt: a charge the provider made is recorded, a missing one is
requested again, a declined one fails the order, and recent or unattempted payments wait."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from apps.catalog.models import Product
from apps.orders import services as orders_services
from apps.orders.models import Order, OrderStatus
from apps.payments.exceptions import PaymentDeclined
from apps.payments.gateway import InProcessSandboxGateway, get_gateway
from apps.payments.models import Payment
from apps.payments.services import CHARGE_REQUESTED, reconcile_payments
from ecommerce.outbox.models import OutboxMessage
from tests.catalog.factories import make_product
from tests.users.factories import UserFactory

pytestmark = pytest.mark.django_db

NOTHING = {"paid": 0, "declined": 0, "requeued": 0}


@pytest.fixture
def lamp() -> Product:
    return make_product(sku="lamp", stock=10, price="12.50")


@pytest.fixture
def place(lamp: Product, django_capture_on_commit_callbacks: Any) -> Any:
    """Place an order whose charge never runs: nothing is dispatched on commit."""

    def make(token: str = "tok_success", quantity: int = 2) -> Payment:
        with django_capture_on_commit_callbacks(execute=False):
            order, _ = orders_services.place_order(
                user=UserFactory(),
                lines=[orders_services.OrderLine("lamp", quantity)],
                payment_token=token,
            )
        return Payment.objects.get(order=order)

    return make


def attempted(payment: Payment, *, seconds_ago: float) -> Payment:
    """Record one charge attempt `seconds_ago`, as a worker lost before the answer would."""
    Payment.objects.filter(pk=payment.pk).update(
        attempts=1, last_attempt_at=timezone.now() - timedelta(seconds=seconds_ago)
    )
    payment.refresh_from_db()
    return payment


def in_doubt(payment: Payment) -> Payment:
    return attempted(payment, seconds_ago=settings.PAYMENT_RECONCILE_AFTER_SECONDS + 60)


def charge_at_provider(payment: Payment) -> Any:
    return get_gateway().charge(
        amount=payment.amount,
        currency=payment.currency,
        token=payment.token,
        idempotency_key=payment.idempotency_key,
    )


def charge_requests(payment: Payment) -> int:
    return OutboxMessage.objects.filter(
        topic=CHARGE_REQUESTED, payload__order_id=payment.order_id
    ).count()


def test_a_charge_the_provider_made_is_recorded_and_pays_the_order(place):
    # given: the provider charged, but its answer never arrived
    payment = place()
    charge = charge_at_provider(payment)
    payment = in_doubt(payment)

    # when
    outcome = reconcile_payments()

    # then
    assert outcome == {**NOTHING, "paid": 1}
    assert Order.objects.get(pk=payment.order_id).status == OrderStatus.PAID
    payment.refresh_from_db()
    assert (payment.status, payment.provider_charge_id) == ("succeeded", charge.charge_id)
    gateway = get_gateway()
    assert isinstance(gateway, InProcessSandboxGateway)
    listed = gateway.provider.list_charges(idempotency_key=payment.idempotency_key)
    assert [c["id"] for c in listed.body["data"]] == [charge.charge_id]
    assert charge_at_provider(payment).charge_id == charge.charge_id
    assert charge_requests(payment) == 0


def test_no_charge_at_the_provider_requests_the_charge_again(place, lamp):
    # given: the attempt never reached the provider
    payment = in_doubt(place())

    # when
    outcome = reconcile_payments()

    # then
    assert outcome == {**NOTHING, "requeued": 1}
    assert charge_requests(payment) == 1
    assert Order.objects.get(pk=payment.order_id).status == OrderStatus.PENDING_PAYMENT
    payment.refresh_from_db()
    assert (payment.status, payment.provider_charge_id) == ("pending", "")
    assert Product.objects.get(pk=lamp.pk).stock == 8


def test_a_declined_charge_found_fails_the_order_and_returns_the_stock(place, lamp):
    # given
    payment = place(token="tok_card_declined")
    with pytest.raises(PaymentDeclined) as declined:
        charge_at_provider(payment)
    payment = in_doubt(payment)
    assert Product.objects.get(pk=lamp.pk).stock == 8

    # when
    outcome = reconcile_payments()

    # then
    assert outcome == {**NOTHING, "declined": 1}
    assert Order.objects.get(pk=payment.order_id).status == OrderStatus.PAYMENT_FAILED
    payment.refresh_from_db()
    assert (payment.status, payment.decline_code, payment.provider_charge_id) == (
        "declined",
        "card_declined",
        declined.value.charge_id,
    )
    assert Product.objects.get(pk=lamp.pk).stock == 10
    assert charge_requests(payment) == 0


def test_recent_and_unattempted_payments_are_left_alone(place, lamp):
    # given: one attempt still within the threshold, one payment never attempted
    recent = attempted(place(), seconds_ago=settings.PAYMENT_RECONCILE_AFTER_SECONDS - 60)
    never = place()
    Payment.objects.filter(pk=never.pk).update(last_attempt_at=timezone.now() - timedelta(days=1))
    before = list(Payment.objects.order_by("pk").values())

    # when
    outcome = reconcile_payments()

    # then
    assert outcome == NOTHING
    assert list(Payment.objects.order_by("pk").values()) == before
    assert (charge_requests(recent), charge_requests(never)) == (0, 0)
    assert set(
        Order.objects.filter(pk__in=[recent.order_id, never.order_id]).values_list(
            "status", flat=True
        )
    ) == {OrderStatus.PENDING_PAYMENT}
    assert Product.objects.get(pk=lamp.pk).stock == 6


def test_the_command_prints_the_counts(place):
    # given
    charge_at_provider(paid := place())
    in_doubt(paid)
    in_doubt(place())
    out = StringIO()

    # when
    call_command("reconcile_payments", stdout=out)

    # then
    assert out.getvalue() == "1 paid, 0 declined, 1 requeued\n"
