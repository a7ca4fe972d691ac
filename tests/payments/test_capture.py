"""Authorize, capture, void and the customer's action, through the payment services with the
sandbox in-process (embedded mode): the store setting both ways, capture at fulfilment
(whole, in part, once), voids when an authorized order is cancelled or expires, a capture
the provider refuses, and a charge waiting for its customer. Each ends with the money
ledger adding up (`check_money_ledger`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from apps.catalog.models import Product
from apps.orders import selectors as orders_selectors
from apps.orders import services as orders_services
from apps.orders.exceptions import InvalidOrder
from apps.orders.models import Order, OrderStatus
from apps.payments import services as payments_services
from apps.payments.gateway import ChargeStatus, get_gateway, shared_sandbox
from apps.payments.models import CaptureMode, MoneyMovement, Payment, PaymentStatus
from apps.payments.sandbox import webhooks as sandbox_webhooks
from ecommerce.api.permissions import Role
from tests.catalog.factories import make_product
from tests.catalog.helpers import assert_ledger_matches, stock_of
from tests.users.factories import UserFactory

pytestmark = pytest.mark.django_db

LAMPS = Decimal("25.00")  # two lamps at 12.50
BULBS = Decimal("12.00")  # three bulbs at 4.00


@pytest.fixture
def lamp() -> Product:
    return make_product(sku="lamp", stock=10, price="12.50")


@pytest.fixture
def bulb() -> Product:
    return make_product(sku="bulb", stock=10, price="4.00")


@pytest.fixture
def fulfilment(settings: Any) -> None:
    settings.PAYMENT_CAPTURE_MODE = "fulfilment"


@pytest.fixture
def sandbox_config() -> Iterator[Any]:
    """Change the in-process sandbox's config for one test; restored after."""
    provider = shared_sandbox()
    before = provider.get_config().body
    yield lambda **changes: provider.update_config(body=changes)
    provider.update_config(body={"authorization_ttl_seconds": before["authorization_ttl_seconds"]})


def place(django_capture_on_commit_callbacks: Any, *, token: str = "tok_success") -> Payment:
    """Two lamps and three bulbs; the payment opened (with the capture mode of now), not
    charged: nothing runs on commit."""
    with django_capture_on_commit_callbacks(execute=False):
        order, _ = orders_services.place_order(
            user=UserFactory(),
            lines=[orders_services.OrderLine("lamp", 2), orders_services.OrderLine("bulb", 3)],
            payment_token=token,
        )
    payment = payments_services.open_payment(order_id=order.pk)
    assert payment is not None
    return payment


def movements(order: Order) -> list[tuple[str, Decimal]]:
    rows = MoneyMovement.objects.filter(order=order).order_by("pk")
    return list(rows.values_list("kind", "amount"))


def assert_ledger_passes() -> None:
    call_command("check_money_ledger", "--grace-seconds", "0", stdout=StringIO())


def refreshed(payment: Payment) -> tuple[Order, Payment]:
    payment.refresh_from_db()
    return Order.objects.get(pk=payment.order_id), payment


def provider_charge(payment: Payment) -> Any:
    return get_gateway().find_charge(idempotency_key=payment.idempotency_key)


@pytest.mark.parametrize(
    ("mode", "outcome", "status", "kinds", "paid"),
    [
        ("immediate", "succeeded", OrderStatus.PAID, ["capture"], LAMPS + BULBS),
        ("fulfilment", "authorized", OrderStatus.AUTHORIZED, ["authorization"], Decimal(0)),
    ],
)
def test_the_store_setting_chooses_immediate_capture_or_an_authorization(
    settings: Any,
    lamp: Product,
    bulb: Product,
    django_capture_on_commit_callbacks: Any,
    mode: str,
    outcome: str,
    status: str,
    kinds: list[str],
    paid: Decimal,
) -> None:
    settings.PAYMENT_CAPTURE_MODE = mode
    payment = place(django_capture_on_commit_callbacks)
    settings.PAYMENT_CAPTURE_MODE = "immediate"  # the payment keeps the mode it opened with

    assert payments_services.charge_payment(order_id=payment.order_id) == outcome

    order, payment = refreshed(payment)
    assert (payment.capture_mode, order.status, order.amount_paid) == (mode, status, paid)
    assert [kind for kind, _ in movements(order)] == kinds
    assert provider_charge(payment).status is (
        ChargeStatus.SUCCEEDED if mode == CaptureMode.IMMEDIATE else ChargeStatus.AUTHORIZED
    )
    assert_ledger_passes()


def test_fulfilling_an_authorized_order_captures_its_total_once(
    fulfilment: None, lamp: Product, bulb: Product, django_capture_on_commit_callbacks: Any
) -> None:
    payment = place(django_capture_on_commit_callbacks)
    payments_services.charge_payment(order_id=payment.order_id)
    staff = UserFactory()

    # Fulfilling publishes order.fulfilled; payments captures on commit.
    with django_capture_on_commit_callbacks(execute=True):
        orders_services.fulfil_order(order_id=payment.order_id, by=staff)

    order, payment = refreshed(payment)
    assert (order.status, order.amount_paid) == (OrderStatus.FULFILLED, LAMPS + BULBS)
    assert (payment.status, payment.amount_captured) == (PaymentStatus.SUCCEEDED, LAMPS + BULBS)
    assert movements(order) == [("authorization", LAMPS + BULBS), ("capture", LAMPS + BULBS)]
    # Twice is once: the task again, and the capture's own key at the provider.
    assert payments_services.capture_payment(order_id=order.pk) == "noop"
    replay = get_gateway().capture(
        charge_id=payment.provider_charge_id,
        amount=LAMPS + BULBS,
        idempotency_key=f"capture-{payment.idempotency_key}",
    )
    assert replay.amount_captured == LAMPS + BULBS
    assert len(movements(order)) == 2
    assert_ledger_passes()


def test_a_partial_fulfilment_captures_what_shipped_and_returns_the_rest_to_stock(
    fulfilment: None, lamp: Product, bulb: Product, django_capture_on_commit_callbacks: Any
) -> None:
    payment = place(django_capture_on_commit_callbacks)
    payments_services.charge_payment(order_id=payment.order_id)
    lamp_id = lamp.variants.get().pk
    assert stock_of(lamp_id) == 8

    with django_capture_on_commit_callbacks(execute=True):
        orders_services.fulfil_order(
            order_id=payment.order_id, by=UserFactory(), shipped={"lamp": 1, "bulb": 3}
        )

    shipped = Decimal("12.50") + BULBS
    order, payment = refreshed(payment)
    assert orders_selectors.fulfilled_amount(order_id=order.pk) == shipped
    assert (order.status, order.amount_paid) == (OrderStatus.FULFILLED, shipped)
    assert dict(order.items.values_list("sku", "quantity_fulfilled")) == {"lamp": 1, "bulb": 3}
    assert movements(order) == [
        ("authorization", LAMPS + BULBS),
        ("capture", shipped),
        ("void", Decimal("12.50")),  # the rest of the authorization, released
    ]
    assert stock_of(lamp_id) == 9  # the lamp that did not ship came back
    assert_ledger_matches(lamp_id)
    charge = provider_charge(payment)
    assert (charge.status, charge.amount_captured) == (ChargeStatus.SUCCEEDED, shipped)
    assert_ledger_passes()


def test_a_fulfilment_must_ship_something_and_a_paid_order_ships_whole(
    settings: Any, lamp: Product, bulb: Product, django_capture_on_commit_callbacks: Any
) -> None:
    settings.PAYMENT_CAPTURE_MODE = "fulfilment"
    authorized = place(django_capture_on_commit_callbacks)
    payments_services.charge_payment(order_id=authorized.order_id)
    settings.PAYMENT_CAPTURE_MODE = "immediate"
    paid = place(django_capture_on_commit_callbacks)
    payments_services.charge_payment(order_id=paid.order_id)
    staff = UserFactory()

    with pytest.raises(InvalidOrder):
        orders_services.fulfil_order(order_id=authorized.order_id, by=staff, shipped={"lamp": 0})
    with pytest.raises(InvalidOrder):
        orders_services.fulfil_order(order_id=authorized.order_id, by=staff, shipped={"sofa": 1})
    with pytest.raises(InvalidOrder):
        orders_services.fulfil_order(order_id=paid.order_id, by=staff, shipped={"lamp": 1})

    assert Order.objects.get(pk=authorized.order_id).status == OrderStatus.AUTHORIZED
    assert Order.objects.get(pk=paid.order_id).status == OrderStatus.PAID


@pytest.mark.parametrize("ending", ["cancel", "expire"])
def test_an_authorized_order_that_ends_unfulfilled_has_its_authorization_voided(
    fulfilment: None,
    lamp: Product,
    bulb: Product,
    django_capture_on_commit_callbacks: Any,
    ending: str,
) -> None:
    payment = place(django_capture_on_commit_callbacks)
    payments_services.charge_payment(order_id=payment.order_id)
    order = Order.objects.get(pk=payment.order_id)
    # Held for its fulfilment, not for the checkout's payment window.
    assert order.expires_at > timezone.now() + timedelta(days=5)

    with django_capture_on_commit_callbacks(execute=True):
        if ending == "cancel":
            orders_services.cancel_order(order_id=order.pk, by=order.user, reason="no longer")
        else:
            counts = payments_services.expire_overdue_orders(
                now=order.expires_at + timedelta(seconds=1)
            )
            assert counts["expired"] == 1

    order, payment = refreshed(payment)
    ended = OrderStatus.CANCELLED if ending == "cancel" else OrderStatus.EXPIRED
    assert (order.status, order.amount_paid) == (ended, Decimal(0))
    assert payment.status == PaymentStatus.VOIDED
    assert movements(order) == [("authorization", LAMPS + BULBS), ("void", LAMPS + BULBS)]
    assert provider_charge(payment).status is ChargeStatus.VOIDED
    assert stock_of(lamp.variants.get().pk) == 10
    assert payments_services.void_payment(order_id=order.pk, reason="again") == "noop"
    assert_ledger_passes()


def test_a_capture_the_provider_refuses_leaves_the_order_fulfilled_and_unpaid(
    fulfilment: None,
    lamp: Product,
    bulb: Product,
    django_capture_on_commit_callbacks: Any,
    sandbox_config: Any,
) -> None:
    payment = place(django_capture_on_commit_callbacks)
    payments_services.charge_payment(order_id=payment.order_id)
    sandbox_config(authorization_ttl_seconds=0)  # the authorization has expired

    with django_capture_on_commit_callbacks(execute=True):
        orders_services.fulfil_order(order_id=payment.order_id, by=UserFactory())

    order, payment = refreshed(payment)
    assert (order.status, order.amount_paid) == (OrderStatus.FULFILLED, Decimal(0))
    assert payment.status == PaymentStatus.CAPTURE_FAILED
    assert "charge_expired_for_capture" in payment.last_error
    assert movements(order) == [("authorization", LAMPS + BULBS)]
    assert payments_services.capture_payment(order_id=order.pk) == "noop"
    assert_ledger_passes()


def test_lost_capture_and_void_answers_are_healed_by_reconciliation_once(
    fulfilment: None, lamp: Product, bulb: Product, django_capture_on_commit_callbacks: Any
) -> None:
    to_capture = place(django_capture_on_commit_callbacks)
    to_void = place(django_capture_on_commit_callbacks)
    for payment in (to_capture, to_void):
        payments_services.charge_payment(order_id=payment.order_id)
        payment.refresh_from_db()
    staff = UserFactory()
    # The order ends, and the provider acts, but neither answer is recorded (the tasks'
    # answers were lost): nothing runs on commit, the provider is called directly.
    with django_capture_on_commit_callbacks(execute=False):
        orders_services.fulfil_order(order_id=to_capture.order_id, by=staff)
        orders_services.cancel_order(order_id=to_void.order_id, by=staff)
    get_gateway().capture(
        charge_id=to_capture.provider_charge_id,
        amount=LAMPS + BULBS,
        idempotency_key=f"capture-{to_capture.idempotency_key}",
    )
    get_gateway().void(
        charge_id=to_void.provider_charge_id, idempotency_key=f"void-{to_void.idempotency_key}"
    )

    later = timezone.now() + timedelta(hours=1)
    counts = payments_services.reconcile_payments(now=later)
    again = payments_services.reconcile_payments(now=later)

    assert (counts["captured"], counts["voided"]) == (1, 1)
    assert "captured" not in again
    captured, _ = refreshed(to_capture)
    voided, _ = refreshed(to_void)
    assert captured.amount_paid == LAMPS + BULBS
    assert movements(captured) == [("authorization", LAMPS + BULBS), ("capture", LAMPS + BULBS)]
    assert movements(voided) == [("authorization", LAMPS + BULBS), ("void", LAMPS + BULBS)]
    assert_ledger_passes()


def test_a_charge_waiting_for_its_customer_shows_where_to_go_and_moves_on_when_done(
    lamp: Product,
    bulb: Product,
    django_capture_on_commit_callbacks: Any,
    client_for: Any,
) -> None:
    payment = place(django_capture_on_commit_callbacks, token="tok_action_required")

    assert payments_services.charge_payment(order_id=payment.order_id) == "action_required"
    order, payment = refreshed(payment)
    assert order.status == OrderStatus.ACTION_REQUIRED
    assert payment.status == PaymentStatus.ACTION_REQUIRED
    body = client_for(order.user).get(f"/api/orders/{order.public_id}").json()
    assert body["status"] == "action_required"
    assert body["next_action"] == {"type": "redirect", "url": payment.next_action_url}
    assert payment.next_action_url.endswith(f"/v1/charges/{payment.provider_charge_id}/action")
    # The charge task again does nothing: the charge exists and waits.
    assert payments_services.charge_payment(order_id=order.pk) == "noop"

    # The customer confirms; the provider's event is lost: the sweep asks and records it.
    shared_sandbox().complete_action(charge_id=payment.provider_charge_id, outcome="confirm")
    counts = payments_services.reconcile_payments(now=timezone.now() + timedelta(hours=1))

    order, payment = refreshed(payment)
    assert counts["paid"] == 1
    assert (order.status, order.amount_paid, order.next_action) == (
        OrderStatus.PAID,
        LAMPS + BULBS,
        None,
    )
    assert movements(order) == [("capture", LAMPS + BULBS)]
    assert_ledger_passes()


def test_a_customer_who_never_finishes_lets_the_order_expire_with_its_hold(
    lamp: Product, bulb: Product, django_capture_on_commit_callbacks: Any
) -> None:
    payment = place(django_capture_on_commit_callbacks, token="tok_action_required")
    payments_services.charge_payment(order_id=payment.order_id)
    order = Order.objects.get(pk=payment.order_id)

    with django_capture_on_commit_callbacks(execute=True):
        counts = payments_services.expire_overdue_orders(
            now=order.expires_at + timedelta(seconds=1)
        )

    order, payment = refreshed(payment)
    assert counts["expired"] == 1
    assert (order.status, order.next_action) == (OrderStatus.EXPIRED, None)
    assert payment.status == PaymentStatus.VOIDED
    assert provider_charge(payment).status is ChargeStatus.VOIDED
    assert movements(order) == []  # a charge that only waited held nothing
    assert stock_of(lamp.variants.get().pk) == 10
    late = shared_sandbox().complete_action(charge_id=payment.provider_charge_id, outcome="confirm")
    assert (late.status, late.body["error"]) == (400, "action_not_pending")
    assert_ledger_passes()


def test_a_customer_who_fails_the_action_fails_the_payment(
    lamp: Product, bulb: Product, django_capture_on_commit_callbacks: Any
) -> None:
    payment = place(django_capture_on_commit_callbacks, token="tok_action_required")
    payments_services.charge_payment(order_id=payment.order_id)
    payment.refresh_from_db()
    done = shared_sandbox().complete_action(charge_id=payment.provider_charge_id, outcome="fail")
    assert done.status == 200, done.body

    order = Order.objects.get(pk=payment.order_id)
    with django_capture_on_commit_callbacks(execute=True):
        payments_services.expire_overdue_orders(now=order.expires_at + timedelta(seconds=1))

    order, payment = refreshed(payment)
    assert (order.status, payment.status) == (OrderStatus.PAYMENT_FAILED, PaymentStatus.DECLINED)
    assert payment.decline_code == "authentication_failed"
    assert stock_of(lamp.variants.get().pk) == 10
    assert_ledger_passes()


def provider_check() -> tuple[int, str]:
    out = StringIO()
    try:
        call_command(
            "check_invariants",
            "--grace-seconds",
            "0",
            "--check",
            "payments.provider_agrees",
            "--check",
            "payments.payment_window",
            stdout=out,
        )
    except SystemExit as exit_:
        return int(exit_.code or 0), out.getvalue()
    return 0, out.getvalue()


def test_the_provider_invariants_know_authorizations_waiting_charges_and_refused_captures(
    fulfilment: None,
    lamp: Product,
    bulb: Product,
    django_capture_on_commit_callbacks: Any,
    sandbox_config: Any,
) -> None:
    authorized = place(django_capture_on_commit_callbacks)
    payments_services.charge_payment(order_id=authorized.order_id)
    waiting = place(django_capture_on_commit_callbacks, token="tok_action_required")
    payments_services.charge_payment(order_id=waiting.order_id)

    healthy = provider_check()

    sandbox_config(authorization_ttl_seconds=0)
    with django_capture_on_commit_callbacks(execute=True):
        orders_services.fulfil_order(order_id=authorized.order_id, by=UserFactory())
    code, output = provider_check()

    assert healthy[0] == 0, healthy[1]
    assert code != 0
    assert "the provider refused its capture" in output


def test_staff_fulfil_part_of_an_authorized_order_over_the_api(
    fulfilment: None,
    lamp: Product,
    bulb: Product,
    django_capture_on_commit_callbacks: Any,
    client_for: Any,
) -> None:
    payment = place(django_capture_on_commit_callbacks)
    payments_services.charge_payment(order_id=payment.order_id)
    order = Order.objects.get(pk=payment.order_id)
    url = f"/api/orders/{order.public_id}/fulfil"
    admin = client_for(UserFactory(roles=[Role.ADMIN]))

    forbidden = client_for(order.user).post(url, {"lines": [{"sku": "bulb", "quantity": 3}]})
    too_many = admin.post(url, {"lines": [{"sku": "bulb", "quantity": 4}]}, format="json")
    with django_capture_on_commit_callbacks(execute=True):
        done = admin.post(url, {"lines": [{"sku": "bulb", "quantity": 3}]}, format="json")

    assert forbidden.status_code == 403
    assert too_many.status_code == 400
    assert done.status_code == 200, done.content
    assert done.json()["status"] == "fulfilled"
    shown = admin.get(f"/api/orders/{order.public_id}").json()
    assert shown["amount_paid"] == "12.00"  # the bulbs; the lamps went back to stock
    assert stock_of(lamp.variants.get().pk) == 10
    assert_ledger_passes()


def lifecycle_event(event_type: str, payment: Payment, **charge: Any) -> bytes:
    """A signed-ready body of the sandbox's event about the payment's charge."""
    body = {
        "id": payment.provider_charge_id or "ch_lifecycle",
        "object": "charge",
        "amount": str(payment.amount),
        "currency": payment.currency,
        "decline_code": None,
        "idempotency_key": payment.idempotency_key,
        **charge,
    }
    return json.dumps(sandbox_webhooks.build_event(event_type, body)).encode()


def deliver(client: Any, body: bytes) -> Any:
    header = sandbox_webhooks.signature_header(secret="whsec_capture_test", body=body)
    return client.post(
        "/api/payments/webhooks/sandbox",
        data=body,
        content_type="application/json",
        HTTP_SANDBOX_SIGNATURE=header,
    )


def test_lifecycle_events_record_authorization_capture_and_action_once(
    settings: Any,
    fulfilment: None,
    lamp: Product,
    bulb: Product,
    django_capture_on_commit_callbacks: Any,
    api_client: Any,
) -> None:
    settings.PAYMENT_WEBHOOK_SECRET = "whsec_capture_test"
    authorized = place(django_capture_on_commit_callbacks)
    waiting = place(django_capture_on_commit_callbacks, token="tok_action_required")
    payments_services.charge_payment(order_id=waiting.order_id)
    waiting.refresh_from_db()

    # The authorization's answer is lost; its event authorizes the order.
    first = deliver(
        api_client, lifecycle_event("charge.authorized", authorized, status="authorized")
    )
    authorized.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=False):
        orders_services.fulfil_order(order_id=authorized.order_id, by=UserFactory())
    # The capture's event comes before the capture task ran: it records the capture.
    captured = lifecycle_event(
        "charge.captured", authorized, status="succeeded", amount_captured=str(LAMPS + BULBS)
    )
    second = deliver(api_client, captured)
    again = payments_services.capture_payment(order_id=authorized.order_id)
    # The customer's action ended; its event pays the order.
    done = deliver(
        api_client,
        lifecycle_event("charge.action_completed", waiting, status="succeeded"),
    )

    assert (first.json()["outcome"], second.json()["outcome"]) == ("authorized", "captured")
    assert again == "noop"
    assert done.json()["outcome"] == "paid"
    order, payment = refreshed(authorized)
    assert (order.amount_paid, payment.status) == (LAMPS + BULBS, PaymentStatus.SUCCEEDED)
    assert movements(order) == [("authorization", LAMPS + BULBS), ("capture", LAMPS + BULBS)]
    assert Order.objects.get(pk=waiting.order_id).status == OrderStatus.PAID
    assert_ledger_passes()
