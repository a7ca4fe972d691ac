"""The payment sweep: no payment falls between two jobs.

A payment in doubt, or never attempted some time after its order was placed (its charge
message was lost), is settled by asking the provider by idempotency key first: a charge
made is recorded, not repeated; none is charged now, through the task's own service path.
A payment at its attempt cap ends payment_failed with its stock back. Late charges of
unpaid orders are refunded and half-done refunds finished. The provider here is the
sandbox in-process (embedded mode), as in production without PAYMENT_PROVIDER_URL.
"""

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
from apps.orders import services as orders_services
from apps.orders.models import Order, OrderEvent, OrderStatus
from apps.payments import services as payments_services
from apps.payments.exceptions import PaymentDeclined
from apps.payments.gateway import InProcessSandboxGateway, get_gateway
from apps.payments.models import MoneyMovementKind, Payment, PaymentStatus
from apps.payments.services import reconcile_payments
from tests.catalog.factories import make_product
from tests.catalog.helpers import assert_ledger_matches, stock_of
from tests.users.factories import UserFactory

pytestmark = pytest.mark.django_db

NOTHING = {"paid": 0, "declined": 0, "failed": 0, "refunded": 0, "deferred": 0}


@pytest.fixture
def lamp() -> Product:
    return make_product(sku="lamp", stock=10, price="12.50")


@pytest.fixture
def unopened(lamp: Product, django_capture_on_commit_callbacks: Any) -> Any:
    """Place an order whose `order.placed` never reached payments (nothing is dispatched on
    commit: the broker lost it, or no worker took it yet), so it has no payment;
    `placed_ago` backdates it."""

    def make(token: str = "tok_success", quantity: int = 2, placed_ago: float = 0) -> Order:
        with django_capture_on_commit_callbacks(execute=False):
            order, _ = orders_services.place_order(
                user=UserFactory(),
                lines=[orders_services.OrderLine("lamp", quantity)],
                payment_token=token,
            )
        when = timezone.now() - timedelta(seconds=placed_ago)
        Order.objects.filter(pk=order.pk).update(created_at=when, updated_at=when)
        return Order.objects.get(pk=order.pk)

    return make


@pytest.fixture
def place(unopened: Any) -> Any:
    """Place an order and open its payment, whose charge never runs, as when the worker
    that opened it died or the broker lost a retry; `placed_ago` backdates both."""

    def make(token: str = "tok_success", quantity: int = 2, placed_ago: float = 0) -> Payment:
        order = unopened(token=token, quantity=quantity, placed_ago=placed_ago)
        payment = payments_services.open_payment(order_id=order.pk)
        Payment.objects.filter(pk=payment.pk).update(
            created_at=order.created_at, updated_at=order.created_at
        )
        return Payment.objects.get(pk=payment.pk)

    return make


def attempted(payment: Payment, *, seconds_ago: float, attempts: int = 1) -> Payment:
    """Record charge attempts, the last `seconds_ago`, as a worker lost before the answer would."""
    when = timezone.now() - timedelta(seconds=seconds_ago)
    Payment.objects.filter(pk=payment.pk).update(
        attempts=attempts, last_attempt_at=when, updated_at=when
    )
    payment.refresh_from_db()
    return payment


def in_doubt(payment: Payment, attempts: int = 1) -> Payment:
    return attempted(
        payment, seconds_ago=settings.PAYMENT_RECONCILE_AFTER_SECONDS + 60, attempts=attempts
    )


def unattempted_long_ago() -> float:
    return settings.PAYMENT_UNATTEMPTED_AFTER_SECONDS + 5


def charge_at_provider(payment: Payment) -> Any:
    return get_gateway().charge(
        amount=payment.amount,
        currency=payment.currency,
        token=payment.token,
        idempotency_key=payment.idempotency_key,
    )


def provider_charges(payment: Payment) -> list[dict[str, Any]]:
    gateway = get_gateway()
    assert isinstance(gateway, InProcessSandboxGateway)
    body = gateway.provider.list_charges(idempotency_key=payment.idempotency_key).body
    return list(body["data"])


def provider_refunds() -> int:
    gateway = get_gateway()
    assert isinstance(gateway, InProcessSandboxGateway)
    return int(gateway.provider.stats().body["refunds"]["succeeded"])


def status_of(payment: Payment) -> tuple[str, str]:
    payment.refresh_from_db()
    return Order.objects.get(pk=payment.order_id).status, payment.status


def sweep_count(outcome: str) -> float:
    labels = {"sweep": "payments_reconcile", "outcome": outcome}
    return REGISTRY.get_sample_value("ecommerce_payment_sweep_total", labels) or 0.0


def test_a_charge_the_provider_made_is_recorded_and_pays_the_order(place):
    # given: the provider charged, but its answer never arrived
    payment = place()
    charge = charge_at_provider(payment)
    payment = in_doubt(payment)

    # when
    outcome = reconcile_payments()

    # then
    assert outcome == {**NOTHING, "paid": 1}
    assert status_of(payment) == (OrderStatus.PAID, PaymentStatus.SUCCEEDED)
    assert (payment.provider_charge_id, payment.attempts) == (charge.charge_id, 1)
    assert [c["id"] for c in provider_charges(payment)] == [charge.charge_id]


def test_a_payment_in_doubt_with_no_charge_is_charged_now(place, lamp):
    # given: the attempt never reached the provider
    payment = in_doubt(place())

    # when
    outcome = reconcile_payments()

    # then
    assert outcome == {**NOTHING, "paid": 1}
    assert status_of(payment) == (OrderStatus.PAID, PaymentStatus.SUCCEEDED)
    assert payment.attempts == 2
    assert [c["id"] for c in provider_charges(payment)] == [payment.provider_charge_id]
    assert stock_of(lamp.variant.pk) == 8


def test_a_payment_never_attempted_after_its_order_was_placed_is_charged(place, lamp):
    # given: the charge message was lost a while ago
    payment = place(placed_ago=unattempted_long_ago())
    assert (payment.attempts, payment.last_attempt_at) == (0, None)

    # when
    outcome = reconcile_payments()

    # then
    assert outcome == {**NOTHING, "paid": 1}
    assert status_of(payment) == (OrderStatus.PAID, PaymentStatus.SUCCEEDED)
    assert payment.attempts == 1
    assert len(provider_charges(payment)) == 1
    assert stock_of(lamp.variant.pk) == 8


def test_a_never_attempted_payment_the_provider_charged_is_recorded_not_charged_again(place):
    # given: charged under its key (by a run that died before recording its attempt)
    payment = place(placed_ago=unattempted_long_ago())
    charge = charge_at_provider(payment)

    # when
    outcome = reconcile_payments()

    # then
    assert outcome == {**NOTHING, "paid": 1}
    assert status_of(payment) == (OrderStatus.PAID, PaymentStatus.SUCCEEDED)
    assert (payment.provider_charge_id, payment.attempts) == (charge.charge_id, 0)
    assert len(provider_charges(payment)) == 1


def test_an_order_whose_payment_was_never_opened_gets_one_and_is_charged(unopened, lamp):
    # given: placed a while ago, its order.placed lost before payments opened a payment
    order = unopened(placed_ago=unattempted_long_ago())

    # when
    outcome = reconcile_payments()

    # then: opened from the order, the provider asked first (nothing there), charged once
    assert outcome == {**NOTHING, "paid": 1}
    payment = Payment.objects.get(order=order)
    assert (payment.amount, payment.token, payment.idempotency_key) == (
        order.total,
        "tok_success",
        f"order-{order.public_id}",
    )
    assert status_of(payment) == (OrderStatus.PAID, PaymentStatus.SUCCEEDED)
    assert payment.attempts == 1
    assert [c["id"] for c in provider_charges(payment)] == [payment.provider_charge_id]
    assert stock_of(lamp.variant.pk) == 8
    assert reconcile_payments() == NOTHING


def test_an_order_without_a_payment_the_provider_charged_is_recorded_not_charged_again(
    unopened,
):
    # given: a charge under the key its payment would have, and no payment row
    order = unopened(placed_ago=unattempted_long_ago())
    charge = get_gateway().charge(
        amount=order.total,
        currency=order.currency,
        token="tok_success",
        idempotency_key=Payment.key_for(order.public_id),
    )

    # when
    outcome = reconcile_payments()

    # then
    assert outcome == {**NOTHING, "paid": 1}
    payment = Payment.objects.get(order=order)
    assert status_of(payment) == (OrderStatus.PAID, PaymentStatus.SUCCEEDED)
    assert (payment.provider_charge_id, payment.attempts) == (charge.charge_id, 0)
    assert [c["id"] for c in provider_charges(payment)] == [charge.charge_id]


def test_a_recent_order_without_a_payment_is_left_to_its_handler(unopened):
    order = unopened(placed_ago=settings.PAYMENT_UNATTEMPTED_AFTER_SECONDS - 5)

    assert reconcile_payments() == NOTHING

    assert not Payment.objects.filter(order=order).exists()
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PENDING_PAYMENT


def test_a_declined_charge_found_fails_the_order_and_returns_the_stock(place, lamp):
    # given
    payment = place(token="tok_card_declined")
    with pytest.raises(PaymentDeclined) as declined:
        charge_at_provider(payment)
    payment = in_doubt(payment)
    assert stock_of(lamp.variant.pk) == 8

    # when
    outcome = reconcile_payments()

    # then
    assert outcome == {**NOTHING, "declined": 1}
    assert status_of(payment) == (OrderStatus.PAYMENT_FAILED, PaymentStatus.DECLINED)
    assert (payment.decline_code, payment.provider_charge_id) == (
        "card_declined",
        declined.value.charge_id,
    )
    assert stock_of(lamp.variant.pk) == 10
    assert_ledger_matches(lamp.variant.pk)


def test_a_payment_at_its_attempt_cap_fails_without_a_fresh_count(place, lamp, settings):
    # given: a card the provider always fails on, attempted as often as allowed
    settings.PAYMENT_MAX_ATTEMPTS_PER_PAYMENT = 3
    payment = in_doubt(place(token="tok_processing_error"), attempts=3)

    # when
    outcome = reconcile_payments()

    # then: no further charge, the order ends and its stock is back
    assert outcome == {**NOTHING, "failed": 1}
    assert status_of(payment) == (OrderStatus.PAYMENT_FAILED, PaymentStatus.FAILED)
    assert payment.attempts == 3
    assert payment.last_error == "gave up after 3 provider attempts"
    assert provider_charges(payment) == []
    assert stock_of(lamp.variant.pk) == 10
    assert_ledger_matches(lamp.variant.pk)
    assert reconcile_payments() == NOTHING


def test_the_last_allowed_attempt_failing_ends_the_order(place, lamp, settings):
    settings.PAYMENT_MAX_ATTEMPTS_PER_PAYMENT = 3
    payment = in_doubt(place(token="tok_processing_error"), attempts=2)

    outcome = reconcile_payments()

    assert outcome == {**NOTHING, "failed": 1}
    assert status_of(payment) == (OrderStatus.PAYMENT_FAILED, PaymentStatus.FAILED)
    assert payment.attempts == 3
    assert stock_of(lamp.variant.pk) == 10


def test_recent_payments_are_left_alone(place, lamp):
    # given: an attempt within the threshold, and an order placed moments ago
    recent = attempted(place(), seconds_ago=settings.PAYMENT_RECONCILE_AFTER_SECONDS - 60)
    young = place(placed_ago=settings.PAYMENT_UNATTEMPTED_AFTER_SECONDS - 20)
    before = list(Payment.objects.order_by("pk").values())

    # when
    outcome = reconcile_payments()

    # then
    assert outcome == NOTHING
    assert list(Payment.objects.order_by("pk").values()) == before
    assert (provider_charges(recent), provider_charges(young)) == ([], [])
    assert stock_of(lamp.variant.pk) == 6


def test_an_unreachable_provider_defers_and_changes_nothing(place, settings, closed_port):
    settings.PAYMENT_PROVIDER_URL = f"http://127.0.0.1:{closed_port}"
    settings.PAYMENT_PROVIDER_CONNECT_TIMEOUT_SECONDS = 0.2
    payment = place(placed_ago=unattempted_long_ago())
    deferred_before = sweep_count("deferred")

    outcome = reconcile_payments()

    assert outcome == {**NOTHING, "deferred": 1}
    assert sweep_count("deferred") == deferred_before + 1
    assert status_of(payment) == (OrderStatus.PENDING_PAYMENT, PaymentStatus.PENDING)
    assert payment.attempts == 0  # only asked (find_charge): no charge was attempted


def test_a_late_charge_of_an_expired_order_whose_refund_failed_is_refunded(place, lamp):
    # given: the order expired while its charge succeeded, and the refund never happened
    payment = place()
    charge = charge_at_provider(payment)
    assert orders_services.expire_order(order_id=payment.order_id)
    long_ago = timezone.now() - timedelta(seconds=settings.PAYMENT_RECONCILE_AFTER_SECONDS + 1)
    Payment.objects.filter(pk=payment.pk).update(
        status=PaymentStatus.SUCCEEDED, provider_charge_id=charge.charge_id, updated_at=long_ago
    )
    payments_services.record_money_movement(
        payment=payment,
        kind=MoneyMovementKind.CAPTURE,
        amount=charge.amount,
        currency=charge.currency,
        provider_reference=charge.charge_id,
        reason="late charge",
    )
    refunds = provider_refunds()

    # when
    outcome = reconcile_payments()

    # then
    assert outcome == {**NOTHING, "refunded": 1}
    assert status_of(payment) == (OrderStatus.EXPIRED, PaymentStatus.REFUNDED)
    assert provider_refunds() == refunds + 1
    assert provider_charges(payment)[0]["amount_refunded"] == "25.00"
    assert stock_of(lamp.variant.pk) == 10


def test_a_refund_left_half_done_is_finished(place, lamp, django_capture_on_commit_callbacks):
    # given: a paid order whose refund was claimed, and its refund request lost
    payment = place()
    charge_at_provider(payment)
    payment = in_doubt(payment)
    assert reconcile_payments()["paid"] == 1
    with django_capture_on_commit_callbacks(execute=False):
        orders_services.refund_order(order_id=payment.order_id, by=None)
    assert status_of(payment) == (OrderStatus.REFUNDING, PaymentStatus.SUCCEEDED)
    assert stock_of(lamp.variant.pk) == 8
    long_ago = timezone.now() - timedelta(seconds=settings.PAYMENT_RECONCILE_AFTER_SECONDS + 1)
    Order.objects.filter(pk=payment.order_id).update(updated_at=long_ago)

    # when
    outcome = reconcile_payments()

    # then
    assert outcome == {**NOTHING, "refunded": 1}
    assert status_of(payment) == (OrderStatus.REFUNDED, PaymentStatus.REFUNDED)
    assert provider_charges(payment)[0]["amount_refunded"] == "25.00"
    assert list(
        OrderEvent.objects.filter(order_id=payment.order_id).values_list("from_status", "to_status")
    ) == [
        ("", "pending_payment"),
        ("pending_payment", "paid"),
        ("paid", "refunding"),
        ("refunding", "refunded"),
    ]
    assert stock_of(lamp.variant.pk) == 10
    assert_ledger_matches(lamp.variant.pk)


def test_the_command_prints_the_counts(place):
    # given
    charge_at_provider(paid := place())
    in_doubt(paid)
    place(placed_ago=unattempted_long_ago())
    out = StringIO()

    # when
    call_command("reconcile_payments", stdout=out)

    # then
    assert out.getvalue() == "2 paid, 0 declined, 0 failed, 0 refunded, 0 deferred\n"


def test_a_claimed_refund_is_done_by_payments_with_its_actor_and_reason(
    place, lamp, django_capture_on_commit_callbacks
):
    payment = place()
    charge_at_provider(payment)
    in_doubt(payment)
    assert reconcile_payments()["paid"] == 1
    staff = UserFactory()

    with django_capture_on_commit_callbacks(execute=True):
        claimed = orders_services.refund_order(
            order_id=payment.order_id, by=staff, reason="damaged in transit"
        )

    assert claimed.status == OrderStatus.REFUNDING  # read before the commit ran the refund
    assert status_of(payment) == (OrderStatus.REFUNDED, PaymentStatus.REFUNDED)
    assert provider_charges(payment)[0]["amount_refunded"] == "25.00"
    assert list(
        OrderEvent.objects.filter(order_id=payment.order_id)
        .order_by("pk")
        .values_list("from_status", "to_status", "actor_id", "reason")
    )[-2:] == [
        ("paid", "refunding", staff.pk, "damaged in transit"),
        ("refunding", "refunded", staff.pk, "damaged in transit"),
    ]
    assert stock_of(lamp.variant.pk) == 10
