"""`manage.py check_invariants` on a real database: each check passes on healthy data and
names the break when one is constructed, with a non-zero exit."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db.models import F
from django.utils import timezone
from rest_framework.test import APIClient

from apps.inventory import services as inventory_services
from apps.inventory.models import Stock, Warehouse
from apps.notifications.models import Notification, NotificationStatus, WebhookEndpoint
from apps.orders import services as orders_services
from apps.orders.models import Order, OrderStatus
from apps.payments.gateway import get_gateway
from apps.payments.models import Payment, PaymentStatus
from ecommerce.api.permissions import Role
from ecommerce.outbox.models import OutboxMessage
from tests.catalog.factories import make_product
from tests.users.factories import UserFactory

pytestmark = pytest.mark.django_db
ALL_CHECKS = (
    "inventory.stock_matches_ledger",
    "notifications.every_event_notified",
    "notifications.none_stuck",
    "orders.returns_add_up",
    "orders.stock_held",
    "outbox.nothing_stale",
    "payments.money_ledger",
    "payments.payment_window",
    "payments.provider_agrees",
)


def run(*args: str) -> tuple[int, str]:
    """Run the command with no grace period; its exit status and what it printed."""
    out = io.StringIO()
    try:
        call_command("check_invariants", "--grace-seconds", "0", *args, stdout=out)
    except SystemExit as exit_:
        return int(exit_.code or 0), out.getvalue()
    return 0, out.getvalue()


def status_of(output: str, name: str) -> str:
    lines = [
        line
        for line in output.splitlines()
        if line.split()[:1] in (["ok"], ["FAIL"], ["ERROR"]) and line.split()[1] == name
    ]
    assert len(lines) == 1, output
    return lines[0].split()[0]


def age(queryset: Any, seconds: float) -> None:
    """Move rows' timestamps `seconds` into the past (auto_now fields ignore assignment)."""
    then = timezone.now() - timedelta(seconds=seconds)
    fields = {"created_at": then}
    names = {f.name for f in queryset.model._meta.fields}
    if "updated_at" in names:
        fields["updated_at"] = then
    if "expires_at" in names:  # an order's hold ends a payment window after its placement
        fields["expires_at"] = then + timedelta(seconds=settings.ORDER_PAYMENT_TIMEOUT_SECONDS)
    queryset.update(**fields)


@pytest.fixture
def buyer() -> Any:
    return UserFactory(roles=[Role.CUSTOMER])


@pytest.fixture
def place(client_for: Any, buyer: Any, django_capture_on_commit_callbacks: Any) -> Any:
    """Place an order through the API, its after-commit work (charge, notify) run eagerly."""
    client: APIClient = client_for(buyer)

    def place_order(sku: str, quantity: int = 1, token: str = "tok_success") -> Order:
        body = {"items": [{"id": sku, "quantity": quantity}], "payment_token": token}
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post("/api/orders", body)
        assert response.status_code == 201, response.content
        return Order.objects.get(public_id=response.json()["id"])

    return place_order


@pytest.fixture
def shop(place: Any) -> dict[str, Any]:
    """Healthy history: a paid order, a declined one, two products."""
    product = make_product(sku="inv-a", stock=10, price="12.50")
    other = make_product(sku="inv-b", stock=5)
    paid = place("inv-a", 2)
    declined = place("inv-b", 1, token="tok_card_declined")
    assert (paid.status, declined.status) == (OrderStatus.PAID, OrderStatus.PAYMENT_FAILED)
    return {"product": product, "other": other, "paid": paid, "declined": declined}


def test_lists_every_registered_check() -> None:
    out = io.StringIO()
    call_command("check_invariants", "--list", stdout=out)
    assert [line.split()[0] for line in out.getvalue().splitlines()] == list(ALL_CHECKS)


def test_healthy_data_passes_every_check(shop: dict[str, Any]) -> None:
    code, output = run()

    assert code == 0, output
    assert [status_of(output, name) for name in ALL_CHECKS] == ["ok"] * len(ALL_CHECKS)
    assert "all invariants hold" in output


def test_json_output_counts_what_each_check_looked_at(shop: dict[str, Any]) -> None:
    code, output = run("--json")

    document = json.loads(output)
    checks = {check["name"]: check for check in document["checks"]}
    assert (code, document["ok"]) == (0, True)
    assert checks["payments.provider_agrees"]["checked"] == 2
    assert checks["inventory.stock_matches_ledger"]["checked"] == 2
    # placed + paid, placed + payment_failed: four events, each emailed to the buyer.
    assert checks["notifications.every_event_notified"]["checked"] == 4
    assert {c["status"] for c in checks.values()} == {"ok"}


def test_stock_that_differs_from_its_ledger_in_one_warehouse_is_a_break(
    shop: dict[str, Any],
) -> None:
    # given: inv-a also stocked in a second warehouse, where its row agrees with its ledger
    north = Warehouse.objects.create(name="North", slug="north", priority=200)
    variant = shop["product"].variant
    inventory_services.restock(variant_id=variant.pk, quantity=4, warehouse=north)
    assert run("--check", "inventory.stock_matches_ledger")[0] == 0
    # when: its row in the default warehouse is changed behind the ledger's back
    Stock.objects.filter(variant=variant, warehouse__slug="main").update(quantity=F("quantity") + 1)

    code, output = run()

    # then: that warehouse, and only it, is named
    assert code == 1
    assert status_of(output, "inventory.stock_matches_ledger") == "FAIL"
    assert "inv-a in main: stock 9, ledger sums to 8" in output
    assert "in north" not in output
    assert "broken: inventory.stock_matches_ledger (FAIL)" in output


def test_a_ledger_row_without_its_stock_row_is_a_break(shop: dict[str, Any]) -> None:
    north = Warehouse.objects.create(name="North", slug="north", priority=200)
    variant = shop["other"].variant
    inventory_services.restock(variant_id=variant.pk, quantity=3, warehouse=north)
    Stock.objects.filter(variant=variant, warehouse=north).delete()

    code, output = run("--check", "inventory.stock_matches_ledger")

    assert code == 1
    assert (
        f"variant {variant.pk} in warehouse {north.pk}: ledger sums to 3 but there is no stock row"
        in output
    )


def test_an_order_left_pending_past_its_window_is_a_break(place: Any, settings: Any) -> None:
    make_product(sku="inv-c", stock=3)
    settings.ORDER_PAYMENT_TIMEOUT_SECONDS = 60
    order = place("inv-c", 1, token="tok_processing_error")
    assert order.status == OrderStatus.PENDING_PAYMENT
    age(Order.objects.filter(pk=order.pk), 61)
    Payment.objects.filter(order=order).update(last_error="", last_attempt_at=None)

    code, output = run("--check", "payments.payment_window")

    assert code == 1
    assert f"order {order.pk} ({order.public_id})" in output
    assert "still pending_payment" in output


def test_an_overdue_order_whose_provider_just_failed_is_explained(
    place: Any, settings: Any
) -> None:
    make_product(sku="inv-d", stock=3)
    settings.ORDER_PAYMENT_TIMEOUT_SECONDS = 60
    order = place("inv-d", 1, token="tok_processing_error")
    age(Order.objects.filter(pk=order.pk), 100)  # past the window and the 30 s grace
    Payment.objects.filter(order=order).update(
        last_error="ProviderUnavailable: http_500", last_attempt_at=timezone.now()
    )

    code, output = run("--check", "payments.payment_window", "--grace-seconds", "30")

    assert code == 0, output
    assert "checked=1 broken=0 explained=1" in output


def test_a_paid_order_without_a_charge_at_the_provider_is_a_break(place: Any) -> None:
    make_product(sku="inv-e", stock=3)
    order = place("inv-e", 1, token="tok_processing_error")
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.PAID)
    Payment.objects.filter(order=order).update(status=PaymentStatus.SUCCEEDED)

    code, output = run("--check", "payments.provider_agrees")

    assert code == 1
    assert (
        f"order {order.pk} key order-{order.public_id}: order paid but the provider has no charge"
        in output
    )


def test_a_charge_for_an_expired_unrefunded_order_is_a_break(place: Any) -> None:
    make_product(sku="inv-f", stock=3)
    order = place("inv-f", 1, token="tok_processing_error")
    payment = Payment.objects.get(order=order)
    # The provider charged (a late success) but the order expired and nobody refunded.
    charge = get_gateway().charge(
        amount=payment.amount,
        currency=payment.currency,
        token="tok_success",
        idempotency_key=payment.idempotency_key,
    )
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.EXPIRED)
    age(Order.objects.filter(pk=order.pk), 5)

    code, output = run("--check", "payments.provider_agrees")

    assert code == 1
    assert f"order expired but charge {charge.charge_id} succeeded and was not refunded" in output


@pytest.fixture
def place_unopened(buyer: Any) -> Any:
    """Place an order whose `order.placed` has not reached payments: it has no payment."""

    def place_order(sku: str) -> Order:
        order, _ = orders_services.place_order(
            user=buyer, lines=[orders_services.OrderLine(sku, 1)], payment_token="tok_success"
        )
        return order

    return place_order


def test_an_order_waiting_for_its_payment_within_its_window_holds(
    shop: dict[str, Any], place_unopened: Any
) -> None:
    order = place_unopened("inv-a")

    window = run("--check", "payments.payment_window")
    agrees = run("--check", "payments.provider_agrees", "--json")

    assert window[0] == 0, window[1]
    assert agrees[0] == 0, agrees[1]
    (check,) = json.loads(agrees[1])["checks"]
    assert check["checked"] == 3  # the paid and the declined payment, and this order's key
    assert not Payment.objects.filter(order=order).exists()


def test_an_order_whose_payment_was_never_opened_past_its_window_is_a_break(
    place_unopened: Any, settings: Any
) -> None:
    make_product(sku="inv-g", stock=3)
    settings.ORDER_PAYMENT_TIMEOUT_SECONDS = 60
    order = place_unopened("inv-g")
    age(Order.objects.filter(pk=order.pk), 61)

    code, output = run("--check", "payments.payment_window")

    assert code == 1
    assert f"order {order.pk} ({order.public_id})" in output
    assert "still pending_payment: no payment" in output


def test_a_charge_under_the_key_of_an_order_without_a_payment_is_a_break(
    place_unopened: Any,
) -> None:
    make_product(sku="inv-h", stock=3)
    order = place_unopened("inv-h")
    orders_services.cancel_order(order_id=order.pk, by=None)
    # A charge nobody recorded: the order ended before any payment was opened for it.
    charge = get_gateway().charge(
        amount=order.total,
        currency=order.currency,
        token="tok_success",
        idempotency_key=f"order-{order.public_id}",
    )
    age(Order.objects.filter(pk=order.pk), 5)

    code, output = run("--check", "payments.provider_agrees")

    assert code == 1
    assert (
        f"order {order.pk} key order-{order.public_id}: order cancelled but charge "
        f"{charge.charge_id} succeeded and was not refunded" in output
    )


def test_a_paid_order_without_a_payment_is_a_break(place_unopened: Any) -> None:
    make_product(sku="inv-i", stock=3)
    order = place_unopened("inv-i")
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.PAID)

    code, output = run("--check", "payments.provider_agrees")

    assert code == 1
    assert f"order {order.pk} key order-{order.public_id}: order paid but it has no payment" in (
        output
    )


def test_a_released_order_still_holding_stock_is_a_break(shop: dict[str, Any]) -> None:
    paid = shop["paid"]
    # Expired without its stock coming back (the ledger still holds -2 for it).
    Order.objects.filter(pk=paid.pk).update(status=OrderStatus.EXPIRED)

    code, output = run("--check", "orders.stock_held")

    assert code == 1
    variant = shop["product"].variant
    assert f"order {paid.pk} (expired): ledger per variant {{{variant.pk}: -2}}" in output


def test_an_event_without_its_notification_is_a_break(shop: dict[str, Any]) -> None:
    paid = shop["paid"]
    Notification.objects.filter(subject=f"order:{paid.pk}", event="order_paid").delete()

    code, output = run("--check", "notifications.every_event_notified")

    assert code == 1
    assert f"order_paid of order:{paid.pk} at " in output
    assert ": no email" in output


def test_a_subscribed_webhook_endpoint_must_get_the_event(shop: dict[str, Any], buyer: Any) -> None:
    endpoint = WebhookEndpoint.objects.create(
        owner=buyer, url="https://example.com/hook", secret="s", events=["order_paid"]
    )
    age(WebhookEndpoint.objects.filter(pk=endpoint.pk), 3600)  # subscribed before the orders

    code, output = run("--check", "notifications.every_event_notified")

    assert code == 1
    assert f"order_paid of order:{shop['paid'].pk}" in output
    assert f"no webhook to endpoint {endpoint.pk}" in output
    # Events it does not subscribe to need no webhook.
    assert "order_placed" not in output


def test_a_notification_nobody_sends_is_a_break(shop: dict[str, Any]) -> None:
    waiting = Notification.objects.filter(subject=f"order:{shop['paid'].pk}")
    lost = waiting.get(event="order_paid")
    retrying = waiting.get(event="order_placed")
    Notification.objects.filter(pk=lost.pk).update(
        status=NotificationStatus.PENDING, attempts=0, next_attempt_at=None
    )
    Notification.objects.filter(pk=retrying.pk).update(
        status=NotificationStatus.PENDING,
        attempts=2,
        next_attempt_at=timezone.now() + timedelta(seconds=60),
    )
    age(Notification.objects.filter(pk__in=[lost.pk, retrying.pk]), 30)

    code, output = run("--check", "notifications.none_stuck")

    # Untouched for 30 s with nothing scheduled: stuck. Its retry due in a minute: waiting.
    assert code == 1
    assert f"notification {lost.pk} order_paid" in output
    assert f"notification {retrying.pk} " not in output
    assert "checked=2 broken=1" in output


def test_an_abandoned_send_is_a_break(shop: dict[str, Any], settings: Any) -> None:
    settings.NOTIFICATION_LOCK_TTL_SECONDS = 10
    sending = Notification.objects.filter(subject=f"order:{shop['paid'].pk}")
    abandoned, in_flight = sending.get(event="order_paid"), sending.get(event="order_placed")
    sending.update(status=NotificationStatus.SENDING)
    age(Notification.objects.filter(pk=abandoned.pk), 11)
    age(Notification.objects.filter(pk=in_flight.pk), 9)

    code, output = run("--check", "notifications.none_stuck")

    assert code == 1
    assert f"notification {abandoned.pk} order_paid" in output
    assert f"notification {in_flight.pk} " not in output


def outbox_row(order_id: int) -> OutboxMessage:
    """A row as the outbox writes it, whatever columns this schema adds (a lease, a task)."""
    fields = {f.name for f in OutboxMessage._meta.fields}
    extra: dict[str, Any] = {}
    if "lease_until" in fields:
        extra["lease_until"] = timezone.now()
    if "task_name" in fields:
        extra["task_name"] = "payments.charge_payment"
    return OutboxMessage.objects.create(
        topic="order.placed", payload={"order_id": order_id}, **extra
    )


def test_an_outbox_message_not_done_is_a_break() -> None:
    message = outbox_row(1)
    age(OutboxMessage.objects.filter(pk=message.pk), 5)
    fresh = outbox_row(2)

    code, output = run("--check", "outbox.nothing_stale", "--grace-seconds", "2")

    assert code == 1
    assert f"outbox message {message.pk} order.placed" in output
    assert f"outbox message {fresh.pk} " not in output


def test_since_leaves_older_breaks_out(shop: dict[str, Any]) -> None:
    Notification.objects.filter(subject=f"order:{shop['paid'].pk}").delete()
    age(Order.objects.all(), 7200)
    from apps.orders.models import OrderEvent

    age(OrderEvent.objects.all(), 7200)

    assert run("--check", "notifications.every_event_notified", "--since", "1h")[0] == 0
    assert run("--check", "notifications.every_event_notified", "--since", "3h")[0] == 1


def test_an_unknown_check_or_since_is_refused() -> None:
    with pytest.raises(CommandError, match="Unknown check: nope"):
        call_command("check_invariants", "--check", "nope")
    with pytest.raises(CommandError, match="--since 'yesterday'"):
        call_command("check_invariants", "--since", "yesterday")
