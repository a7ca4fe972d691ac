"""Partial refunds: staff refund any amount up to what was captured, in several steps,
through `POST /api/orders/{public_id}/refunds` and `payments.services.refund`; the provider
is the sandbox in-process (embedded mode), as in test_money_ledger."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings
from django.contrib.messages import get_messages
from django.db import transaction
from django.test import Client
from django.utils import timezone
from prometheus_client import REGISTRY

from apps.catalog.models import Product
from apps.notifications import services as notifications_services
from apps.notifications.channels.email import render_email
from apps.notifications.models import NotificationEvent
from apps.orders import events as order_events
from apps.orders import services as orders_services
from apps.orders.models import Order, OrderStatus
from apps.payments import events as payment_events
from apps.payments import services as payments_services
from apps.payments.exceptions import ProviderUnavailable, RefundRefused
from apps.payments.gateway import InProcessSandboxGateway, RefundResult, get_gateway
from apps.payments.models import (
    MoneyMovement,
    MoneyMovementKind,
    Payment,
    PaymentStatus,
    Refund,
    RefundOrigin,
    RefundStatus,
)
from apps.payments.sandbox import webhooks as sandbox_webhooks
from ecommerce.api.permissions import Role
from ecommerce.invariants import CheckContext, run_checks
from ecommerce.outbox.models import OutboxMessage
from tests.catalog.asserts import assert_problem
from tests.catalog.factories import make_product
from tests.catalog.helpers import stock_of
from tests.payments import test_webhooks as webhook_tests
from tests.payments.test_money_ledger import ledger_check
from tests.roles import restore_role_groups
from tests.users.factories import UserFactory

pytestmark = pytest.mark.django_db

TOTAL = Decimal("25.00")  # two lamps at 12.50


@pytest.fixture
def lamp() -> Product:
    return make_product(sku="lamp", stock=10, price="12.50")


@pytest.fixture
def paid(lamp: Product, django_capture_on_commit_callbacks: Any) -> Payment:
    """A paid order of two lamps (stock 8 left), charged in-process."""
    with django_capture_on_commit_callbacks(execute=False):
        order, _ = orders_services.place_order(
            user=UserFactory(email="buyer@example.com"),
            lines=[orders_services.OrderLine("lamp", 2)],
            payment_token="tok_success",
        )
    assert payments_services.charge_payment(order_id=order.pk) == "succeeded"
    return Payment.objects.get(order_id=order.pk)


@pytest.fixture
def staff(client_for: Any) -> Any:
    restore_role_groups()
    user = UserFactory(is_staff=True, roles=[Role.SUPPORT])
    return client_for(user)


def url(payment: Payment) -> str:
    return f"/api/orders/{Order.objects.get(pk=payment.order_id).public_id}/refunds"


def order_of(payment: Payment) -> Order:
    return Order.objects.get(pk=payment.order_id)


class RefusingGateway(InProcessSandboxGateway):
    def refund(self, **kwargs: Any) -> Any:
        raise RefundRefused(charge_id=kwargs["charge_id"], status_code=400, error="card_closed")


class DownGateway(InProcessSandboxGateway):
    def refund(self, **kwargs: Any) -> Any:
        raise ProviderUnavailable(reason="connect_error")


# --- Several partial refunds ------------------------------------------------------------------


def test_partial_refunds_adding_up_to_the_capture_end_the_order_refunded_with_stock_back(
    paid: Payment, staff: Any, lamp: Product, django_capture_on_commit_callbacks: Any
) -> None:
    # when: 10.00, then the 15.00 left
    with django_capture_on_commit_callbacks(execute=False):
        first = staff.post(url(paid), {"amount": "10.00", "reason": "scratched"}, format="json")
    after_first = order_of(paid)
    with django_capture_on_commit_callbacks(execute=False):
        second = staff.post(url(paid), {"amount": "15", "reason": "lost"}, format="json")

    # then
    assert (first.status_code, second.status_code) == (201, 201), second.content
    assert first.json()["status"] == "succeeded"
    refund_path = f"/api/orders/{after_first.public_id}/refunds/{first.json()['id']}/"
    assert first["Location"] == refund_path
    assert staff.get(refund_path).json() == first.json()
    assert (first.json()["amount"], first.json()["reason"]) == ("10.00", "scratched")
    assert first.json()["requested_by"].endswith("@example.com") or first.json()["requested_by"]
    assert (after_first.status, after_first.amount_paid) == (OrderStatus.PAID, Decimal("15.00"))
    order = order_of(paid)
    assert (order.status, order.amount_paid) == (OrderStatus.REFUNDED, Decimal("0.00"))
    paid.refresh_from_db()
    assert paid.status == PaymentStatus.REFUNDED
    assert stock_of(lamp.variant.pk) == 10
    assert list(
        MoneyMovement.objects.filter(kind=MoneyMovementKind.REFUND)
        .order_by("pk")
        .values_list("amount", "reason")
    ) == [(Decimal("10.00"), "scratched"), (Decimal("15.00"), "lost")]
    topics = list(OutboxMessage.objects.values_list("topic", flat=True))
    assert order_events.ORDER_PARTIALLY_REFUNDED in topics
    assert order_events.status_topic(OrderStatus.REFUNDED) in topics
    listed = staff.get(url(paid)).json()
    assert [(r["amount"], r["status"], r["origin"]) for r in listed["results"]] == [
        ("10.00", "succeeded", "staff"),
        ("15.00", "succeeded", "staff"),
    ]
    assert ledger_check().ok


@pytest.mark.parametrize(
    ("amount", "status", "code", "detail"),
    [
        ("25.01", 409, "refund_exceeds_refundable", "at most 25.00 EUR is left to refund"),
        ("0", 400, "invalid_refund_amount", "more than zero"),
        ("-5.00", 400, "invalid_refund_amount", "more than zero"),
        ("1.005", 400, "invalid_refund_amount", "at most 2 decimal places"),
    ],
)
def test_a_refund_the_order_cannot_take_is_a_problem_and_changes_nothing(
    paid: Payment, staff: Any, amount: str, status: int, code: str, detail: str
) -> None:
    response = staff.post(url(paid), {"amount": amount, "reason": "why"}, format="json")

    body = assert_problem(response, status, code, extra=tuple(_extra(code)))
    assert detail in body["detail"]
    assert Refund.objects.count() == 0
    assert order_of(paid).amount_paid == TOTAL
    assert ledger_check().ok


def _extra(code: str) -> list[str]:
    return ["amount", "refundable", "currency"] if code == "refund_exceeds_refundable" else []


def test_what_was_refunded_already_is_not_refundable_again(paid: Payment, staff: Any) -> None:
    assert staff.post(url(paid), {"amount": "20", "reason": "a"}, format="json").status_code == 201

    response = staff.post(url(paid), {"amount": "5.01", "reason": "b"}, format="json")

    assert (
        "at most 5.00 EUR"
        in assert_problem(
            response, 409, "refund_exceeds_refundable", extra=("amount", "refundable", "currency")
        )["detail"]
    )


def test_a_customer_cannot_refund_and_support_can(
    paid: Payment, client_for: Any, staff: Any
) -> None:
    owner = client_for(order_of(paid).user)

    refused = owner.post(url(paid), {"amount": "1", "reason": "me"}, format="json")

    assert refused.status_code == 403
    assert staff.post(url(paid), {"amount": "1", "reason": "ok"}, format="json").status_code == 201


def test_the_same_request_retried_with_its_idempotency_key_refunds_once(
    paid: Payment, staff: Any
) -> None:
    body = {"amount": "5.00", "reason": "retry"}

    first = staff.post(url(paid), body, format="json", HTTP_IDEMPOTENCY_KEY="r-1")
    again = staff.post(url(paid), body, format="json", HTTP_IDEMPOTENCY_KEY="r-1")
    other = staff.post(
        url(paid), {"amount": "6.00", "reason": "x"}, format="json", HTTP_IDEMPOTENCY_KEY="r-1"
    )

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json()["id"] == first.json()["id"]
    assert again["Idempotent-Replayed"] == "true"
    assert_problem(other, 422, "idempotency_key_reused", extra=("key",))
    assert Refund.objects.count() == 1
    assert MoneyMovement.objects.filter(kind=MoneyMovementKind.REFUND).count() == 1
    assert order_of(paid).amount_paid == Decimal("20.00")


# --- The provider refuses, or cannot be reached -----------------------------------------------


def test_a_refund_the_provider_refuses_is_failed_and_releases_its_reservation(
    paid: Payment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(payments_services, "get_gateway", RefusingGateway)

    refund = payments_services.refund(
        order_id=paid.order_id, amount=TOTAL, by=None, reason="refused"
    )

    assert (refund.status, refund.last_error) == (RefundStatus.FAILED, "refused: card_closed")
    assert payments_services.refundable_amount(paid) == TOTAL
    order = order_of(paid)
    assert (order.status, order.amount_paid) == (OrderStatus.PAID, TOTAL)
    assert ledger_check().ok


def test_a_refund_the_provider_cannot_take_now_stays_reserved_and_the_sweep_finishes_it(
    paid: Payment, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: the provider is down when staff refund 10.00
    monkeypatch.setattr(payments_services, "get_gateway", DownGateway)
    refund = payments_services.refund(
        order_id=paid.order_id, amount=Decimal("10.00"), by=None, reason="later"
    )
    assert refund.status == RefundStatus.PENDING
    assert payments_services.refundable_amount(paid) == Decimal("15.00")
    assert order_of(paid).amount_paid == TOTAL
    assert ledger_check().ok

    # when: the provider is back and the sweep runs once the refund is in doubt
    monkeypatch.undo()
    long_ago = timezone.now() - timedelta(seconds=settings.PAYMENT_RECONCILE_AFTER_SECONDS + 1)
    Refund.objects.filter(pk=refund.pk).update(updated_at=long_ago)
    outcome = payments_services.reconcile_payments()

    # then
    refund.refresh_from_db()
    assert outcome["refunded"] == 1
    assert refund.status == RefundStatus.SUCCEEDED
    assert order_of(paid).amount_paid == Decimal("15.00")
    assert ledger_check().ok


def test_a_cancelled_paid_order_refunds_what_is_left_after_a_partial_refund(
    paid: Payment, lamp: Product, django_capture_on_commit_callbacks: Any
) -> None:
    payments_services.refund(order_id=paid.order_id, amount=Decimal("5.00"), by=None, reason="a")

    with django_capture_on_commit_callbacks(execute=True):
        orders_services.cancel_order(order_id=paid.order_id, by=None, reason="changed mind")

    order = order_of(paid)
    assert (order.status, order.amount_paid) == (OrderStatus.REFUNDED, Decimal("0.00"))
    assert list(Refund.objects.order_by("pk").values_list("amount", "origin")) == [
        (Decimal("5.00"), RefundOrigin.STAFF),
        (Decimal("20.00"), RefundOrigin.CANCELLATION),
    ]
    assert stock_of(lamp.variant.pk) == 10
    assert ledger_check().ok


# --- Refunds we did not ask for, and compensation ---------------------------------------------


def test_a_refund_made_at_the_provider_is_recorded_in_the_ledger_and_the_order(
    paid: Payment,
) -> None:
    made = get_gateway().refund(
        charge_id=paid.provider_charge_id, amount=Decimal("7.50"), idempotency_key="dashboard-1"
    )

    with transaction.atomic():
        outcome = payments_services.apply_refund_event(
            refund=made,
            charge_idempotency_key=paid.idempotency_key,
            event_id="evt_1",
            source="sandbox event evt_1",
            refund_key="dashboard-1",
        )
        again = payments_services.apply_refund_event(
            refund=made,
            charge_idempotency_key=paid.idempotency_key,
            event_id="evt_1",
            source="sandbox event evt_1",
            refund_key="dashboard-1",
        )

    assert (outcome, again) == ("unrequested_refund", "already_recorded")
    refund = Refund.objects.get()
    assert (refund.origin, refund.amount, refund.status) == (
        RefundOrigin.PROVIDER,
        Decimal("7.50"),
        RefundStatus.SUCCEEDED,
    )
    assert order_of(paid).amount_paid == Decimal("17.50")
    assert ledger_check().ok


def test_a_refund_event_larger_than_what_is_left_changes_nothing(paid: Payment) -> None:
    bogus = RefundResult(
        refund_id="re_bogus",
        charge_id=paid.provider_charge_id,
        status="succeeded",
        amount=Decimal("30.00"),
        currency=paid.currency,
    )
    with transaction.atomic():
        outcome = payments_services.apply_refund_event(
            refund=bogus, charge_idempotency_key=paid.idempotency_key, event_id="e", source="s"
        )

    assert outcome == "mismatch"
    assert (Refund.objects.count(), order_of(paid).amount_paid) == (0, TOTAL)


def test_a_late_charge_is_compensated_and_the_buyer_and_staff_are_told(
    lamp: Product, django_capture_on_commit_callbacks: Any
) -> None:
    # given: the order is cancelled while its charge is in flight
    with django_capture_on_commit_callbacks(execute=False):
        order, _ = orders_services.place_order(
            user=UserFactory(),
            lines=[orders_services.OrderLine("lamp", 2)],
            payment_token="tok_success",
        )
    payment = payments_services.open_payment(order_id=order.pk)
    assert payment is not None
    orders_services.cancel_order(order_id=order.pk, by=None, reason="buyer called")

    # when: the charge lands anyway
    charge = get_gateway().charge(
        amount=payment.amount,
        currency=payment.currency,
        token=payment.token,
        idempotency_key=payment.idempotency_key,
    )
    with transaction.atomic():
        assert (
            payments_services.apply_charge_event(
                charge=charge, idempotency_key=payment.idempotency_key, source="test"
            )
            == "late_charge"
        )
    payments_services.refund_payment(order_id=order.pk, reason="late charge of an order cancelled")

    # then: refunded in full, why recorded, the compensation announced; the order stays
    refund = Refund.objects.get()
    assert (refund.origin, refund.amount, refund.status, refund.reason) == (
        RefundOrigin.COMPENSATION,
        TOTAL,
        RefundStatus.SUCCEEDED,
        "late charge of an order cancelled",
    )
    assert order_of(payment).status == OrderStatus.CANCELLED
    assert order_of(payment).amount_paid == Decimal("0.00")
    message = OutboxMessage.objects.get(topic=payment_events.PAYMENT_COMPENSATED)
    assert message.payload["refund_id"] == str(refund.public_id)
    assert ledger_check().ok


def test_the_buyer_is_told_of_each_partial_refund_and_staff_of_a_compensation(
    paid: Payment,
) -> None:
    restore_role_groups()
    admin = UserFactory(is_staff=True, roles=[Role.ADMIN], email="ops@example.com")
    payments_services.refund(order_id=paid.order_id, amount=Decimal("5"), by=None, reason="dent")
    payments_services.refund(order_id=paid.order_id, amount=Decimal("6"), by=None, reason="tear")
    payloads = [
        m.payload
        for m in OutboxMessage.objects.filter(topic=order_events.ORDER_PARTIALLY_REFUNDED).order_by(
            "pk"
        )
    ]

    partial = [
        notifications_services.notify_refund_event(
            event=NotificationEvent.ORDER_PARTIALLY_REFUNDED, order_id=p["order_id"], refund=p
        )
        for p in payloads
    ]
    compensation = notifications_services.notify_refund_event(
        event=NotificationEvent.PAYMENT_COMPENSATED,
        order_id=paid.order_id,
        refund={"refund_id": "r-1", "amount": "14.00", "reason": "late charge"},
    )

    emails = [render_email(n[0]) for n in partial]
    assert [e.subject for e in emails] == [
        f"Order {str(order_of(paid).public_id)[:8]}: 5.00 EUR refunded",
        f"Order {str(order_of(paid).public_id)[:8]}: 6.00 EUR refunded",
    ]
    assert "14.00 EUR of it stays paid" in emails[1].text
    assert sorted(n.recipient.email for n in compensation) == sorted(
        ["buyer@example.com", admin.email]
    )
    staff_email = render_email(next(n for n in compensation if n.recipient == admin))
    assert staff_email.subject.startswith("Compensation: order ")
    assert "late charge" in staff_email.text


# --- Admin: find the order by the buyer's email, refund part of it ----------------------------


def test_support_finds_an_order_by_email_and_refunds_part_of_it_in_the_admin(
    paid: Payment,
) -> None:
    restore_role_groups()
    client = Client()
    client.force_login(UserFactory(is_staff=True, roles=[Role.SUPPORT]))
    order = order_of(paid)

    found = client.get("/admin/orders/order/", {"q": "buyer@example.com"})
    page = client.get(f"/admin/orders/order/{order.pk}/change/")
    form_url = f"/admin/payments/refund/order/{order.pk}/"
    form = client.get(form_url)
    too_much = client.post(form_url, {"amount": "30", "reason": "broken"})
    done = client.post(form_url, {"amount": "10.00", "reason": "broken handle"}, follow=True)

    assert str(order.public_id) in found.content.decode()
    assert form_url in page.content.decode()
    assert "Refund an amount" in page.content.decode()
    assert "Amount to refund" in form.content.decode()
    assert "at most 25.00 EUR is left to refund" in too_much.content.decode()
    assert [(m.level_tag, m.message) for m in get_messages(done.wsgi_request)] == [
        (
            "success",
            f"Refunded 10.00 EUR of order {order.public_id} (broken handle); "
            "15.00 EUR stays paid, the order is paid.",
        )
    ]
    text = done.content.decode()
    assert "broken handle" in text  # the refunds section of the order page lists it
    assert Refund.objects.get().requested_by is not None
    history = client.get(f"/admin/orders/order/{order.pk}/history/").content.decode()
    assert "Refunded 10.00 EUR of order" in history
    assert ledger_check().ok


def test_a_customer_or_staff_without_the_permission_gets_no_refund_form(paid: Payment) -> None:
    restore_role_groups()
    client = Client()
    client.force_login(UserFactory(is_staff=True, roles=[Role.CATALOG_MANAGER]))

    response = client.post(
        f"/admin/payments/refund/order/{paid.order_id}/", {"amount": "1", "reason": "x"}
    )

    assert response.status_code == 403
    assert Refund.objects.count() == 0


def test_a_capture_whose_answer_was_lost_for_a_cancelled_order_is_found_and_compensated(
    lamp: Product, django_capture_on_commit_callbacks: Any
) -> None:
    # given: the charge reached the provider, its answer was lost, the buyer cancelled
    with django_capture_on_commit_callbacks(execute=False):
        order, _ = orders_services.place_order(
            user=UserFactory(),
            lines=[orders_services.OrderLine("lamp", 2)],
            payment_token="tok_success",
        )
    payment = payments_services.open_payment(order_id=order.pk)
    assert payment is not None
    get_gateway().charge(
        amount=payment.amount,
        currency=payment.currency,
        token=payment.token,
        idempotency_key=payment.idempotency_key,
    )
    long_ago = timezone.now() - timedelta(seconds=settings.PAYMENT_RECONCILE_AFTER_SECONDS + 1)
    Payment.objects.filter(pk=payment.pk).update(attempts=1, last_attempt_at=long_ago)
    orders_services.cancel_order(order_id=order.pk, by=None, reason="buyer called")

    # when
    outcome = payments_services.reconcile_payments()

    # then: captured and refunded, the order still cancelled, the ledger whole
    payment.refresh_from_db()
    assert outcome["refunded"] == 1
    assert payment.status == PaymentStatus.REFUNDED
    assert Refund.objects.get().origin == RefundOrigin.COMPENSATION
    assert order_of(payment).status == OrderStatus.CANCELLED
    assert stock_of(lamp.variant.pk) == 10
    assert ledger_check().ok


# --- Webhook outcomes, counted -----------------------------------------------------------------


def webhook_count(type_: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "ecommerce_payment_webhook_events_total",
        {"provider": "sandbox", "type": type_, "outcome": outcome},
    )
    return value or 0.0


def test_webhook_deliveries_are_counted_by_provider_type_and_outcome(
    paid: Payment, client: Client, settings: Any
) -> None:
    settings.PAYMENT_WEBHOOK_SECRET = webhook_tests.SECRET
    settings.PAYMENT_WEBHOOK_TOLERANCE_SECONDS = 300
    made = get_gateway().refund(
        charge_id=paid.provider_charge_id, amount=Decimal("2.00"), idempotency_key="dash-2"
    )
    event = sandbox_webhooks.build_event(
        "refund.succeeded",
        {
            "id": made.refund_id,
            "object": "refund",
            "status": "succeeded",
            "charge": made.charge_id,
            "amount": "2.00",
            "currency": made.currency,
            "idempotency_key": "dash-2",
            "charge_idempotency_key": paid.idempotency_key,
        },
    )
    before = {
        key: webhook_count(*key)
        for key in [
            ("refund.succeeded", "unrequested_refund"),
            ("refund.succeeded", "duplicate"),
            ("refund.succeeded", "refused"),
        ]
    }

    first = webhook_tests.deliver(client, event)
    again = webhook_tests.deliver(client, event)
    forged = webhook_tests.deliver(client, event, secret="not-the-secret")

    assert (first.status_code, again.status_code, forged.status_code) == (200, 200, 400)
    assert first.json()["outcome"] == "unrequested_refund"
    assert {key: webhook_count(*key) - value for key, value in before.items()} == {
        ("refund.succeeded", "unrequested_refund"): 1.0,
        ("refund.succeeded", "duplicate"): 1.0,
        ("refund.succeeded", "refused"): 1.0,
    }
    assert order_of(paid).amount_paid == Decimal("23.00")


def test_a_fulfilled_order_refunded_in_full_stays_fulfilled_and_the_provider_agrees(
    paid: Payment, lamp: Product
) -> None:
    orders_services.fulfil_order(order_id=paid.order_id, by=None)

    payments_services.refund(order_id=paid.order_id, amount=TOTAL, by=None, reason="goodwill")

    order = order_of(paid)
    paid.refresh_from_db()
    assert (order.status, order.amount_paid, paid.status) == (
        OrderStatus.FULFILLED,
        Decimal("0.00"),
        PaymentStatus.REFUNDED,
    )
    assert stock_of(lamp.variant.pk) == 8  # the goods left; a return brings them back
    context = CheckContext(now=timezone.now(), since=None, grace=timedelta(0))
    results = run_checks(context, only=["payments.money_ledger", "payments.provider_agrees"])
    assert [(r.name, r.ok) for r in results] == [
        ("payments.money_ledger", True),
        ("payments.provider_agrees", True),
    ]
