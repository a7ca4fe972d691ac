"""Provider webhooks in, through the Django test client: signature and timestamp checks,
each event stored once, and applied through the payment services like the charge task's
own answers. The provider is the sandbox in-process (embedded mode), as in test_reconcile;
the sandbox sending them for real is tested in tests/integration/test_provider_webhooks.py.
"""

from __future__ import annotations

import json
import math
import threading
import time
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client

from apps.catalog.models import Product
from apps.orders import services as orders_services
from apps.orders.models import Order, OrderStatus
from apps.payments import services as payments_services
from apps.payments import webhooks
from apps.payments.gateway import get_gateway
from apps.payments.models import MoneyMovement, Payment, PaymentStatus, ProviderEvent
from apps.payments.sandbox import webhooks as sandbox_webhooks
from tests.catalog.factories import make_product
from tests.users.factories import UserFactory

pytestmark = pytest.mark.django_db

SECRET = "whsec_test_only"
URL = "/api/payments/webhooks/sandbox"
TOTAL = Decimal("25.00")


@pytest.fixture(autouse=True)
def webhook_settings(settings: Any) -> None:
    settings.PAYMENT_WEBHOOK_SECRET = SECRET
    settings.PAYMENT_WEBHOOK_TOLERANCE_SECONDS = 300


@pytest.fixture
def lamp() -> Product:
    return make_product(sku="lamp", stock=10, price="12.50")


@pytest.fixture
def place(lamp: Product, django_capture_on_commit_callbacks: Any) -> Any:
    """An order of two lamps with its payment opened; its charge task is not run."""

    def make(token: str = "tok_success") -> Payment:
        with django_capture_on_commit_callbacks(execute=False):
            order, _ = orders_services.place_order(
                user=UserFactory(),
                lines=[orders_services.OrderLine("lamp", 2)],
                payment_token=token,
            )
        payment = payments_services.open_payment(order_id=order.pk)
        assert payment is not None
        return payment

    return make


def charge_event(payment: Payment, *, status: str = "succeeded", **changes: Any) -> dict[str, Any]:
    """The event the sandbox makes for a charge under the payment's key."""
    charge = {
        "id": "ch_test_1",
        "object": "charge",
        "status": status,
        "amount": str(payment.amount),
        "currency": payment.currency,
        "decline_code": None if status == "succeeded" else "card_declined",
        "amount_refunded": "0.00",
        "idempotency_key": payment.idempotency_key,
        "created": "2026-01-01T00:00:00.000Z",
        **changes,
    }
    kind = "charge.succeeded" if status == "succeeded" else "charge.failed"
    return sandbox_webhooks.build_event(kind, charge)


def deliver(
    client: Client,
    event: dict[str, Any] | bytes,
    *,
    secret: str = SECRET,
    timestamp: int | None = None,
    header: str | None = None,
    url: str = URL,
) -> Any:
    body = event if isinstance(event, bytes) else json.dumps(event).encode()
    if header is None:
        header = sandbox_webhooks.signature_header(secret=secret, body=body, timestamp=timestamp)
    return client.post(
        url, data=body, content_type="application/json", HTTP_SANDBOX_SIGNATURE=header
    )


def assert_ledger_passes() -> None:
    out = StringIO()
    call_command("check_money_ledger", "--grace-seconds", "0", stdout=out)


def assert_refused(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == code
    assert ProviderEvent.objects.count() == 0


# --- Signature and timestamp --------------------------------------------------------------


def test_the_sandbox_and_the_endpoint_sign_alike() -> None:
    body = b'{"id": "evt_1"}'
    assert sandbox_webhooks.sign(secret="s", timestamp=1, body=body) == webhooks.sign(
        secret="s", timestamp=1, body=body
    )


def test_a_signed_charge_event_pays_the_order_once(client: Client, place: Any) -> None:
    payment = place()
    event = charge_event(payment)

    response = deliver(client, event)

    assert response.status_code == 200, response.content
    assert response.json() == {
        "id": event["id"],
        "type": "charge.succeeded",
        "outcome": "paid",
        "duplicate": False,
    }
    payment.refresh_from_db()
    assert (payment.status, payment.provider_charge_id) == (PaymentStatus.SUCCEEDED, "ch_test_1")
    assert Order.objects.get(pk=payment.order_id).status == OrderStatus.PAID
    assert list(MoneyMovement.objects.values_list("kind", "amount")) == [("capture", TOTAL)]
    stored = ProviderEvent.objects.get()
    assert (stored.provider, stored.event_id, stored.type) == (
        "sandbox",
        event["id"],
        event["type"],
    )
    assert stored.processed_at is not None
    assert stored.outcome == "paid"
    assert stored.payload == event
    assert_ledger_passes()


@pytest.mark.parametrize(
    ("header", "why"),
    [
        ("", "empty"),
        ("v1=abc", "no timestamp"),
        ("t=12x,v1=abc", "a timestamp that is not a number"),
        ("t=1700000000", "no signature"),
        ("t=1700000000,v0=abc", "another scheme only"),
        ("garbage", "no pairs"),
    ],
)
def test_a_malformed_signature_header_is_400(
    client: Client, place: Any, header: str, why: str
) -> None:
    response = deliver(client, charge_event(place()), header=header)

    assert_refused(response, 400, "webhook_signature_invalid")


def test_a_missing_signature_header_is_400(client: Client, place: Any) -> None:
    body = json.dumps(charge_event(place())).encode()
    response = client.post(URL, data=body, content_type="application/json")

    assert_refused(response, 400, "webhook_signature_invalid")


def test_a_signature_under_another_secret_is_400_and_nothing_changes(
    client: Client, place: Any
) -> None:
    payment = place()
    response = deliver(client, charge_event(payment), secret="whsec_someone_else")

    assert_refused(response, 400, "webhook_signature_invalid")
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PENDING
    assert not MoneyMovement.objects.exists()


def test_a_body_changed_after_signing_is_400(client: Client, place: Any) -> None:
    payment = place()
    body = json.dumps(charge_event(payment)).encode()
    header = sandbox_webhooks.signature_header(secret=SECRET, body=body)
    tampered = body.replace(str(payment.amount).encode(), b"0.01")

    response = deliver(client, tampered, header=header)

    assert_refused(response, 400, "webhook_signature_invalid")


def test_any_matching_v1_signature_is_accepted_while_a_secret_rotates(
    client: Client, place: Any
) -> None:
    body = json.dumps(charge_event(place())).encode()
    now = int(time.time())
    good = sandbox_webhooks.sign(secret=SECRET, timestamp=now, body=body)
    response = deliver(client, body, header=f"t={now},v1={'0' * 64},v1={good}")

    assert response.status_code == 200, response.content


@pytest.mark.parametrize("offset", [-301, 301, -86400, 10**9])
def test_a_timestamp_beyond_the_tolerance_is_400(client: Client, place: Any, offset: int) -> None:
    event = charge_event(place())  # placing the order first: it may take a second
    # Rounded away from now, so a second of delivery leaves the offset beyond 300.
    now = math.ceil(time.time()) if offset > 0 else math.floor(time.time())
    response = deliver(client, event, timestamp=max(0, now + offset))

    assert_refused(response, 400, "webhook_timestamp_out_of_tolerance")


@pytest.mark.parametrize("offset", [-299, 299])
def test_a_timestamp_within_the_tolerance_is_accepted(
    client: Client, place: Any, offset: int
) -> None:
    event = charge_event(place())
    # Rounded towards now, so a second of delivery leaves the offset within 300.
    now = math.ceil(time.time()) if offset < 0 else math.floor(time.time())
    response = deliver(client, event, timestamp=now + offset)

    assert response.status_code == 200, response.content


def test_without_a_secret_every_delivery_is_refused(
    client: Client, place: Any, settings: Any
) -> None:
    settings.PAYMENT_WEBHOOK_SECRET = ""
    response = deliver(client, charge_event(place()), secret="")

    assert_refused(response, 400, "webhook_signature_invalid")


def test_an_unknown_provider_is_404(client: Client, place: Any) -> None:
    response = deliver(client, charge_event(place()), url="/api/payments/webhooks/acme")

    assert_refused(response, 404, "webhook_provider_unknown")


def test_get_is_405(client: Client) -> None:
    response = client.get(URL)

    assert response.status_code == 405
    assert response["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe",
        b"[]",
        b"{}",
        b'{"id": "evt_1", "type": "charge.succeeded", "created": "yesterday", "data": {}}',
        b'{"id": "", "type": "charge.succeeded", "created": 1, "data": {"object": {}}}',
        b'{"id": "evt_1", "type": "charge.succeeded", "created": 1, "data": {"object": []}}',
        b'{"id": "evt_1", "type": "charge.succeeded", "created": 1, "data": {"object": {}}}',
        b'{"id": "evt_1\\u0000", "type": "charge.succeeded", "created": 1, "data": {"object": {}}}',
        (
            b'{"id": "evt_1", "type": "charge.succeeded", "created": 1, "data": {"object": '
            b'{"id": "ch_1", "amount": "NaN", "currency": "EUR", "idempotency_key": "k"}}}'
        ),
        (
            b'{"id": "evt_1", "type": "refund.succeeded", "created": 1, "data": {"object": '
            b'{"id": "re_1", "charge": "ch_1", "amount": 5, "currency": "EUROS", "status": "x"}}}'
        ),
    ],
)
def test_a_signed_body_that_is_no_event_is_400(client: Client, body: bytes) -> None:
    response = deliver(client, body)

    assert_refused(response, 400, "webhook_payload_invalid")


def test_a_body_over_the_limit_is_400(client: Client) -> None:
    body = b'{"pad": "' + b"x" * webhooks.MAX_BODY_BYTES + b'"}'
    response = deliver(client, body)

    assert_refused(response, 400, "webhook_payload_invalid")


# --- Stored once, applied once ------------------------------------------------------------


def test_a_duplicate_delivery_is_200_and_does_nothing(client: Client, place: Any) -> None:
    payment = place()
    event = charge_event(payment)
    assert deliver(client, event).json()["outcome"] == "paid"

    response = deliver(client, event)

    assert response.status_code == 200
    assert response.json() == {
        "id": event["id"],
        "type": "charge.succeeded",
        "outcome": "paid",
        "duplicate": True,
    }
    assert ProviderEvent.objects.count() == 1
    assert MoneyMovement.objects.count() == 1
    assert_ledger_passes()


def test_a_charge_event_after_the_tasks_answer_is_already_recorded(
    client: Client, place: Any
) -> None:
    payment = place()
    assert payments_services.charge_payment(order_id=payment.order_id) == "succeeded"
    payment.refresh_from_db()
    charge = get_gateway().find_charge(idempotency_key=payment.idempotency_key)
    assert charge is not None

    response = deliver(client, charge_event(payment, id=charge.charge_id))

    assert response.json()["outcome"] == "already_recorded"
    assert MoneyMovement.objects.count() == 1
    assert Order.objects.get(pk=payment.order_id).status == OrderStatus.PAID
    assert_ledger_passes()


def test_the_tasks_answer_after_the_charge_event_records_nothing_twice(
    client: Client, place: Any
) -> None:
    payment = place()
    # The provider charges and its webhook arrives before the task hears its answer.
    charge = get_gateway().charge(
        amount=payment.amount,
        currency=payment.currency,
        token=payment.token,
        idempotency_key=payment.idempotency_key,
    )
    assert deliver(client, charge_event(payment, id=charge.charge_id)).json()["outcome"] == "paid"

    # The task's own call replays the same charge under the key.
    assert payments_services.charge_payment(order_id=payment.order_id) == "noop"
    assert payments_services._record_success(payment, charge, reason="answer") == "succeeded"

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert MoneyMovement.objects.count() == 1
    assert Order.objects.get(pk=payment.order_id).status == OrderStatus.PAID
    assert_ledger_passes()


def test_a_declined_charge_event_fails_the_order(client: Client, place: Any) -> None:
    payment = place("tok_card_declined")

    response = deliver(client, charge_event(payment, status="declined"))

    assert response.json()["outcome"] == "declined"
    payment.refresh_from_db()
    assert (payment.status, payment.decline_code) == (PaymentStatus.DECLINED, "card_declined")
    assert Order.objects.get(pk=payment.order_id).status == OrderStatus.PAYMENT_FAILED
    assert not MoneyMovement.objects.exists()
    assert_ledger_passes()


def test_an_event_for_an_unknown_payment_is_stored_and_200(client: Client) -> None:
    event = sandbox_webhooks.build_event(
        "charge.succeeded",
        {"id": "ch_x", "status": "succeeded", "amount": "5.00", "currency": "EUR"}
        | {"idempotency_key": "order-unknown"},
    )

    response = deliver(client, event)

    assert response.status_code == 200
    assert response.json()["outcome"] == "unknown_payment"
    assert ProviderEvent.objects.get().outcome == "unknown_payment"


def test_a_charge_event_with_other_figures_changes_nothing(client: Client, place: Any) -> None:
    payment = place()

    response = deliver(client, charge_event(payment, amount="1.00"))

    assert response.json()["outcome"] == "mismatch"
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PENDING
    assert not MoneyMovement.objects.exists()


def test_an_event_of_another_type_is_stored_and_ignored(client: Client) -> None:
    event = sandbox_webhooks.build_event("customer.created", {"id": "cus_1"})

    response = deliver(client, event)

    assert response.json()["outcome"] == "ignored"
    assert ProviderEvent.objects.get().type == "customer.created"


def test_a_refund_event_before_its_capture_is_recorded_is_deferred(
    client: Client, place: Any
) -> None:
    payment = place()
    refund = {
        "id": "re_1",
        "object": "refund",
        "status": "succeeded",
        "charge": "ch_test_1",
        "amount": str(payment.amount),
        "currency": payment.currency,
        "charge_idempotency_key": payment.idempotency_key,
    }

    response = deliver(client, sandbox_webhooks.build_event("refund.succeeded", refund))

    assert_refused(response, 503, "provider_event_deferred")
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PENDING


def test_a_refund_event_finishes_a_refunding_order(client: Client, place: Any) -> None:
    payment = place()
    assert payments_services.charge_payment(order_id=payment.order_id) == "succeeded"
    payment.refresh_from_db()
    Order.objects.filter(pk=payment.order_id).update(status=OrderStatus.REFUNDING)
    refund = get_gateway().refund(
        charge_id=payment.provider_charge_id,
        amount=payment.amount,
        idempotency_key=f"refund-{payment.idempotency_key}",
    )
    body = {
        "id": refund.refund_id,
        "object": "refund",
        "status": "succeeded",
        "charge": refund.charge_id,
        "amount": str(refund.amount),
        "currency": refund.currency,
        "charge_idempotency_key": payment.idempotency_key,
    }

    response = deliver(client, sandbox_webhooks.build_event("refund.succeeded", body))

    assert response.json()["outcome"] == "refunded"
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.REFUNDED
    assert Order.objects.get(pk=payment.order_id).status == OrderStatus.REFUNDED
    # The refund task finding it done records nothing twice.
    assert payments_services.refund_order_payment(order_id=payment.order_id, reason="x") == "noop"
    assert sorted(MoneyMovement.objects.values_list("kind", flat=True)) == ["capture", "refund"]
    assert_ledger_passes()


def test_a_charge_event_for_an_expired_order_is_captured_and_refunded(
    client: Client, place: Any
) -> None:
    payment = place()
    charge = get_gateway().charge(
        amount=payment.amount,
        currency=payment.currency,
        token=payment.token,
        idempotency_key=payment.idempotency_key,
    )
    assert orders_services.expire_order(order_id=payment.order_id)

    response = deliver(client, charge_event(payment, id=charge.charge_id))

    assert response.json()["outcome"] == "late_charge"
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.REFUNDED
    assert Order.objects.get(pk=payment.order_id).status == OrderStatus.EXPIRED
    assert sorted(MoneyMovement.objects.values_list("kind", flat=True)) == ["capture", "refund"]
    assert_ledger_passes()


@pytest.mark.django_db(transaction=True)
def test_two_deliveries_of_one_event_at_once_store_and_apply_it_once(place: Any) -> None:
    payment = place()
    event = charge_event(payment)
    barrier = threading.Barrier(2)
    answers: list[Any] = []

    def send() -> None:
        try:
            barrier.wait(timeout=10)
            answers.append(deliver(Client(), event).json())
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(a["duplicate"] for a in answers) == [False, True]
    assert ProviderEvent.objects.count() == 1
    assert MoneyMovement.objects.count() == 1
    assert Order.objects.get(pk=payment.order_id).status == OrderStatus.PAID
    assert_ledger_passes()


def test_staff_read_provider_events_in_the_admin_and_never_change_them(
    client: Client, place: Any
) -> None:
    assert deliver(client, charge_event(place())).status_code == 200
    event = ProviderEvent.objects.get()
    admin_user: Any = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(admin_user)

    listing = client.get("/admin/payments/providerevent/")
    detail = client.get(f"/admin/payments/providerevent/{event.pk}/change/")
    add = client.get("/admin/payments/providerevent/add/")
    delete = client.post(f"/admin/payments/providerevent/{event.pk}/delete/", {"post": "yes"})

    assert listing.status_code == 200
    assert event.event_id in listing.content.decode()
    assert detail.status_code == 200
    assert "charge.succeeded" in detail.content.decode()
    assert (add.status_code, delete.status_code) == (403, 403)
    assert ProviderEvent.objects.count() == 1
