"""The order state machine: payment outcomes, cancel, refund, fulfil and expiry."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.catalog.models import ProductVariant
from apps.inventory.models import StockMovement
from apps.orders import services
from apps.orders.exceptions import IllegalTransition
from apps.orders.models import Order, OrderEvent, OrderStatus
from apps.payments import services as payments_services
from apps.payments.models import Payment
from ecommerce.api.permissions import Role
from ecommerce.outbox.models import OutboxMessage
from tests.catalog.factories import make_product
from tests.catalog.helpers import assert_ledger_matches, stock_of
from tests.users.factories import UserFactory

pytestmark = pytest.mark.django_db


def place(client, sku: str, quantity: int = 1, token: str = "tok_success", capture=None):
    body = {"items": [{"id": sku, "quantity": quantity}], "payment_token": token}
    if capture is None:
        return client.post("/api/orders", body)
    with capture(execute=True):
        return client.post("/api/orders", body)


def history(order_id: str) -> list[tuple[str, str]]:
    return list(
        OrderEvent.objects.filter(order__public_id=order_id).values_list("from_status", "to_status")
    )


@pytest.fixture
def buyer():
    return UserFactory(roles=[Role.CUSTOMER])


@pytest.fixture
def client(client_for, buyer):
    return client_for(buyer)


def test_a_successful_charge_after_commit_pays_the_order(
    client, django_capture_on_commit_callbacks
):
    product = make_product(sku="p", stock=3, price="12.00")

    response = place(client, "p", 2, capture=django_capture_on_commit_callbacks)

    order_id = response.json()["id"]
    assert response.status_code == 201
    assert Order.objects.get(public_id=order_id).status == OrderStatus.PAID
    assert history(order_id) == [("", "pending_payment"), ("pending_payment", "paid")]
    payment = Payment.objects.get(order__public_id=order_id)
    assert (payment.status, payment.attempts) == ("succeeded", 1)
    assert payment.provider_charge_id.startswith("ch_")
    assert stock_of(product.variant.pk) == 1


def test_a_declined_card_fails_the_order_and_returns_the_stock(
    client, django_capture_on_commit_callbacks
):
    product = make_product(sku="p", stock=3)

    response = place(
        client, "p", 2, token="tok_card_declined", capture=django_capture_on_commit_callbacks
    )

    order_id = response.json()["id"]
    assert Order.objects.get(public_id=order_id).status == OrderStatus.PAYMENT_FAILED
    assert Payment.objects.get(order__public_id=order_id).decline_code == "card_declined"
    assert stock_of(product.variant.pk) == 3
    assert list(
        StockMovement.objects.filter(reference=f"order:{order_id}")
        .order_by("pk")
        .values_list("delta", "reason")
    ) == [(-2, "order"), (2, "cancel")]
    assert_ledger_matches(product.variant.pk)


def test_a_charge_the_provider_refuses_as_sent_fails_the_order_at_once(
    client, django_capture_on_commit_callbacks
):
    """Yen have no decimals: the provider refuses 100.50 JPY (a 400), which no retry fixes."""
    product = make_product(sku="yen", stock=3, price="100.50")
    ProductVariant.objects.filter(pk=product.variant.pk).update(currency="JPY")

    response = place(client, "yen", 1, capture=django_capture_on_commit_callbacks)

    order_id = response.json()["id"]
    payment = Payment.objects.get(order__public_id=order_id)
    assert Order.objects.get(public_id=order_id).status == OrderStatus.PAYMENT_FAILED
    assert (payment.status, payment.decline_code) == ("declined", "rejected:invalid_amount")
    assert stock_of(product.variant.pk) == 3
    assert_ledger_matches(product.variant.pk)


def test_cancelling_a_pending_order_returns_stock_once(client):
    product = make_product(sku="p", stock=5)
    order_id = place(client, "p", 2).json()["id"]

    first = client.post(f"/api/orders/{order_id}/cancel", {"reason": "changed my mind"})
    second = client.post(f"/api/orders/{order_id}/cancel")

    assert first.status_code == 200
    assert first.json()["status"] == "cancelled"
    assert first.json()["history"][-1]["reason"] == "changed my mind"
    assert second.status_code == 409
    assert second.json()["code"] == "illegal_transition"
    assert stock_of(product.variant.pk) == 5
    assert_ledger_matches(product.variant.pk)


def test_cancelling_a_paid_order_refunds_it_and_returns_stock(
    client, django_capture_on_commit_callbacks
):
    product = make_product(sku="p", stock=5)
    order_id = place(client, "p", 2, capture=django_capture_on_commit_callbacks).json()["id"]

    # The refund runs on commit (here, with no broker, in this process); the test's
    # transaction commits only as the block ends, after the response was made.
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/orders/{order_id}/cancel")

    assert response.status_code == 200
    assert response.json()["status"] == "refunding"
    assert Order.objects.get(public_id=order_id).status == OrderStatus.REFUNDED
    assert Payment.objects.get(order__public_id=order_id).status == "refunded"
    assert Payment.objects.get(order__public_id=order_id).provider_refund_id.startswith("re_")
    assert stock_of(product.variant.pk) == 5
    assert history(order_id)[-2:] == [("paid", "refunding"), ("refunding", "refunded")]


def test_cancelling_a_paid_order_claims_the_refund_and_leaves_the_money_to_payments(
    client, buyer, django_capture_on_commit_callbacks
):
    """Orders never calls the provider: it claims the refund and publishes the request."""
    product = make_product(sku="p", stock=5)
    order_id = place(client, "p", 2, capture=django_capture_on_commit_callbacks).json()["id"]
    order = Order.objects.get(public_id=order_id)

    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(f"/api/orders/{order_id}/cancel", {"reason": "too late"})

    assert response.status_code == 200
    assert response.json()["status"] == "refunding"
    request = OutboxMessage.objects.get(topic="order.refund_requested")
    assert request.payload == {"order_id": order.pk, "actor_id": buyer.pk, "reason": "too late"}
    assert Payment.objects.get(order=order).status == "succeeded"
    assert stock_of(product.variant.pk) == 3  # back only once refunded
    with pytest.raises(IllegalTransition):
        services.fulfil_order(order_id=order.pk, by=None)
    assert client.post(f"/api/orders/{order_id}/cancel").status_code == 409


def test_a_fulfilled_order_cannot_be_cancelled(client, django_capture_on_commit_callbacks):
    product = make_product(sku="p", stock=5)
    order_id = place(client, "p", 1, capture=django_capture_on_commit_callbacks).json()["id"]
    order = Order.objects.get(public_id=order_id)
    services.fulfil_order(order_id=order.pk, by=None)

    response = client.post(f"/api/orders/{order_id}/cancel")

    assert response.status_code == 409
    assert Order.objects.get(pk=order.pk).status == OrderStatus.FULFILLED
    assert stock_of(product.variant.pk) == 4


@pytest.mark.parametrize(
    ("start", "target"),
    [
        (OrderStatus.PENDING_PAYMENT, OrderStatus.FULFILLED),
        (OrderStatus.PENDING_PAYMENT, OrderStatus.REFUNDED),
        (OrderStatus.CANCELLED, OrderStatus.PAID),
        (OrderStatus.EXPIRED, OrderStatus.PAID),
        (OrderStatus.FULFILLED, OrderStatus.PENDING_PAYMENT),
        (OrderStatus.REFUNDED, OrderStatus.PAID),
    ],
)
def test_illegal_transitions_are_refused(start, target):
    order = Order(status=start)
    with pytest.raises(IllegalTransition):
        order.transition_to(target)
    assert order.status == start


def test_another_customer_gets_404_and_cannot_cancel(client, client_for):
    product = make_product(sku="p", stock=5)
    order_id = place(client, "p", 1).json()["id"]
    stranger = client_for(UserFactory())

    assert stranger.get(f"/api/orders/{order_id}").status_code == 404
    assert stranger.post(f"/api/orders/{order_id}/cancel").status_code == 404
    assert Order.objects.get(public_id=order_id).status == OrderStatus.PENDING_PAYMENT
    assert stock_of(product.variant.pk) == 4


@pytest.mark.parametrize("role", [Role.SUPPORT, Role.ADMIN])
def test_support_and_admin_read_and_cancel_any_order(client, client_for, role):
    make_product(sku="p", stock=5)
    order_id = place(client, "p", 1).json()["id"]
    staff = client_for(UserFactory(roles=[role]))

    assert staff.get(f"/api/orders/{order_id}").status_code == 200
    assert staff.post(f"/api/orders/{order_id}/cancel").json()["status"] == "cancelled"


def test_orders_list_is_own_for_customers_and_all_for_support(client, client_for, buyer):
    make_product(sku="p", stock=50)
    mine = {place(client, "p").json()["id"] for _ in range(2)}
    other = client_for(UserFactory())
    theirs = place(other, "p").json()["id"]
    support = client_for(UserFactory(roles=[Role.SUPPORT]))

    own_list = client.get("/api/orders").json()
    all_list = support.get("/api/orders").json()
    filtered = support.get(f"/api/orders?user={buyer.pk}&status=pending_payment").json()

    assert {o["id"] for o in own_list["results"]} == mine
    assert {o["id"] for o in all_list["results"]} == mine | {theirs}
    assert {o["id"] for o in filtered["results"]} == mine
    assert support.get("/api/orders?status=bogus").status_code == 400
    assert support.get(f"/api/orders?user={10**30}").status_code == 400
    assert support.get("/api/orders?user=1.5").status_code == 400


def test_expiry_expires_old_pending_orders_and_returns_stock_once(client, settings):
    settings.ORDER_PAYMENT_TIMEOUT_SECONDS = 60
    product = make_product(sku="p", stock=5)
    old_id = place(client, "p", 2).json()["id"]
    fresh_id = place(client, "p", 1).json()["id"]
    placed = timezone.now() - timedelta(minutes=5)
    Order.objects.filter(public_id=old_id).update(
        created_at=placed, expires_at=placed + timedelta(seconds=60)
    )

    # Expiry asks the provider first (here it has no charge for either order).
    assert payments_services.expire_overdue_orders()["expired"] == 1
    assert payments_services.expire_overdue_orders()["expired"] == 0

    assert Order.objects.get(public_id=old_id).status == OrderStatus.EXPIRED
    assert Order.objects.get(public_id=fresh_id).status == OrderStatus.PENDING_PAYMENT
    assert stock_of(product.variant.pk) == 4
    assert list(
        StockMovement.objects.filter(reference=f"order:{old_id}")
        .order_by("pk")
        .values_list("delta", "reason")
    ) == [(-2, "order"), (2, "expiry")]
