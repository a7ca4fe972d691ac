"""Django admin for orders: filters and search, read-only money and history, no add or
delete, the fulfil/refund/retry actions through the services, and what support may do."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from apps.catalog.models import Product
from apps.orders import services
from apps.orders.events import ORDER_PAYMENT_RETRY_REQUESTED
from apps.orders.models import Order, OrderEvent, OrderStatus
from apps.payments.models import Payment
from apps.users.models import User
from ecommerce.api.permissions import Role
from ecommerce.outbox.models import OutboxMessage
from tests.catalog.factories import make_product
from tests.catalog.helpers import stock_of
from tests.roles import restore_role_groups
from tests.users.factories import UserFactory

pytestmark = pytest.mark.django_db

ORDERS = "/admin/orders/order/"
PAYMENTS = "/admin/payments/payment/"


def listed(response: Any) -> set[str]:
    assert response.status_code == 200
    return {str(order.public_id) for order in response.context["cl"].result_list}


def messages_of(response: Any) -> list[tuple[str, str]]:
    return [(m.level_tag, m.message) for m in get_messages(response.wsgi_request)]


def history(order: Order) -> list[tuple[str, str, int | None, str]]:
    return list(
        OrderEvent.objects.filter(order=order)
        .order_by("pk")
        .values_list("from_status", "to_status", "actor_id", "reason")
    )


def charge_requests(order: Order) -> int:
    return OutboxMessage.objects.filter(
        topic=ORDER_PAYMENT_RETRY_REQUESTED, payload__order_id=order.pk
    ).count()


@pytest.fixture
def boss() -> User:
    return UserFactory(
        email="boss@example.com", is_staff=True, is_superuser=True, roles=[Role.ADMIN]
    )


@pytest.fixture
def admin(client: Client, boss: User) -> Client:
    """A client logged into the admin as a staff superuser."""
    client.force_login(boss)
    return client


@pytest.fixture
def lamp() -> Product:
    return make_product(sku="lamp", stock=10, price="12.50")


@pytest.fixture
def place(lamp: Product, django_capture_on_commit_callbacks: Any) -> Any:
    """Place an order of `quantity` lamps; `paid=True` lets its charge run on commit."""

    def make(user: User, quantity: int = 1, *, paid: bool = False) -> Order:
        lines = [services.OrderLine("lamp", quantity)]
        with django_capture_on_commit_callbacks(execute=paid):
            order, _ = services.place_order(user=user, lines=lines, payment_token="tok_success")
        order.refresh_from_db()
        assert order.status == (OrderStatus.PAID if paid else OrderStatus.PENDING_PAYMENT)
        return order

    return make


@pytest.fixture
def ann() -> User:
    return UserFactory(email="ann@example.com")


@pytest.fixture
def bob() -> User:
    return UserFactory(email="bob@shop.test")


# --- Changelist ------------------------------------------------------------------------------


def test_changelist_filters_by_status_and_date_and_searches_id_and_email(admin, place, ann, bob):
    # given
    pending = place(ann)
    paid = place(ann, paid=True)
    old = place(bob)
    Order.objects.filter(pk=old.pk).update(created_at=datetime(2020, 3, 1, 12, tzinfo=UTC))
    ids = {
        "pending": str(pending.public_id),
        "paid": str(paid.public_id),
        "old": str(old.public_id),
    }

    # when / then
    assert listed(admin.get(ORDERS)) == set(ids.values())
    assert listed(admin.get(f"{ORDERS}?status__exact=paid")) == {ids["paid"]}
    assert listed(admin.get(f"{ORDERS}?status__exact=pending_payment")) == {
        ids["pending"],
        ids["old"],
    }
    assert listed(admin.get(f"{ORDERS}?created_at__year=2020")) == {ids["old"]}
    assert listed(admin.get(f"{ORDERS}?created_at__gte=2021-01-01+00:00:00%2B00:00")) == {
        ids["pending"],
        ids["paid"],
    }
    assert listed(admin.get(f"{ORDERS}?q={ids['paid']}")) == {ids["paid"]}
    assert listed(admin.get(f"{ORDERS}?q=ann@example.com")) == {ids["pending"], ids["paid"]}
    assert listed(admin.get(f"{ORDERS}?q=shop.test")) == {ids["old"]}
    assert listed(admin.get(f"{ORDERS}?q=nobody@example.com")) == set()
    assert listed(admin.get(f"{ORDERS}?q=ann@example.com&status__exact=pending_payment")) == {
        ids["pending"]
    }


# --- Change page -----------------------------------------------------------------------------


def test_change_page_shows_items_and_history_with_money_read_only(admin, place, ann):
    # given
    order = place(ann, 2, paid=True)

    # when
    response = admin.get(f"{ORDERS}{order.pk}/change/")

    # then
    assert response.status_code == 200
    items, events, *_payments = response.context["inline_admin_formsets"]
    assert [
        (f.instance.sku, f.instance.quantity, f.instance.line_total) for f in items.formset.forms
    ] == [("lamp", 2, Decimal("25.00"))]
    assert [field["name"] for field in items.fields()] == [
        "sku",
        "name",
        "variant_name",
        "unit_price",
        "quantity",
        "discount",
        "promotion_name",
        "tax_rate",
        "tax",
        "total_net",
        "line_total",
    ]
    assert [(f.instance.from_status, f.instance.to_status) for f in events.formset.forms] == [
        ("", "pending_payment"),
        ("pending_payment", "paid"),
    ]
    for inline in (items, events):
        assert (inline.has_add_permission, inline.has_change_permission) == (False, False)
        assert inline.formset.can_delete is False
    form = response.context["adminform"].form
    assert "subtotal" not in form.fields
    assert "total" not in form.fields
    html = response.content.decode()
    assert 'name="subtotal"' not in html
    assert 'name="total"' not in html
    assert "25.00" in html
    # The card token the order keeps for payments is never shown, nor editable.
    assert "payment_token" not in html
    assert "tok_success" not in html


def test_orders_cannot_be_added_or_deleted_in_the_admin(admin, place, ann):
    # given
    order = place(ann)

    # when
    add_page = admin.get(f"{ORDERS}add/")
    delete_page = admin.get(f"{ORDERS}{order.pk}/delete/")
    delete_post = admin.post(f"{ORDERS}{order.pk}/delete/", {"post": "yes"})
    changelist = admin.get(ORDERS)

    # then
    assert (add_page.status_code, delete_page.status_code, delete_post.status_code) == (
        403,
        403,
        403,
    )
    actions = [name for name, _label in changelist.context["action_form"].fields["action"].choices]
    assert actions == ["", "mark_fulfilled", "refund", "cancel", "retry_payment"]
    assert Order.objects.filter(pk=order.pk).exists()


# --- Actions ---------------------------------------------------------------------------------


def act(admin: Client, action: str, *orders: Order) -> Any:
    return admin.post(
        ORDERS, {"action": action, "index": "0", "_selected_action": [o.pk for o in orders]}
    )


def test_mark_fulfilled_fulfils_a_paid_order_with_the_admin_as_actor(admin, place, ann, boss):
    # given
    order = place(ann, paid=True)

    # when
    response = act(admin, "mark_fulfilled", order)

    # then
    assert response.status_code == 302
    assert messages_of(response) == [("success", f"Fulfilled 1 order(s): {order.public_id}.")]
    assert Order.objects.get(pk=order.pk).status == OrderStatus.FULFILLED
    assert history(order)[-1] == ("paid", "fulfilled", boss.pk, "fulfilled")


def test_mark_fulfilled_refuses_a_pending_order_and_changes_nothing(admin, place, ann, lamp):
    # given
    order = place(ann, 3)
    events_before = history(order)

    # when
    response = act(admin, "mark_fulfilled", order)

    # then
    assert response.status_code == 302
    assert messages_of(response) == [
        ("warning", "Nothing changed: no order was fulfilled."),
        (
            "error",
            f"Order {order.public_id}: pending payment, and a pending payment order cannot "
            "be fulfilled.",
        ),
    ]
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PENDING_PAYMENT
    assert history(order) == events_before
    assert stock_of(lamp.variant.pk) == 7


def test_refund_refunds_a_paid_order_its_payment_and_returns_the_stock(
    admin, place, ann, boss, lamp, django_capture_on_commit_callbacks
):
    # given
    order = place(ann, 3, paid=True)
    assert stock_of(lamp.variant.pk) == 7

    # when: the refund is claimed in the request and paid out by its task after commit
    with django_capture_on_commit_callbacks(execute=True):
        response = act(admin, "refund", order)

    # then
    assert response.status_code == 302
    assert messages_of(response) == [("success", f"Refunded 1 order(s): {order.public_id}.")]
    assert Order.objects.get(pk=order.pk).status == OrderStatus.REFUNDED
    payment = Payment.objects.get(order=order)
    assert payment.status == "refunded"
    assert payment.provider_refund_id.startswith("re_")
    assert stock_of(lamp.variant.pk) == 10
    assert history(order)[-2:] == [
        ("paid", "refunding", boss.pk, "refunded by staff"),
        ("refunding", "refunded", boss.pk, "refunded by staff"),
    ]


def test_retry_payment_requests_a_charge_only_for_pending_orders(admin, place, ann):
    # given
    pending = place(ann)
    paid = place(ann, paid=True)

    # when
    response = act(admin, "retry_payment", pending, paid)

    # then
    assert response.status_code == 302
    assert messages_of(response) == [
        ("success", f"Requested payment again for 1 order(s): {pending.public_id}."),
        (
            "error",
            f"Order {paid.public_id}: paid, not pending payment, so there is no payment to retry.",
        ),
    ]
    assert charge_requests(pending) == 1
    assert charge_requests(paid) == 0
    assert Order.objects.get(pk=pending.pk).status == OrderStatus.PENDING_PAYMENT
    assert Order.objects.get(pk=paid.pk).status == OrderStatus.PAID


# --- Support ---------------------------------------------------------------------------------


def test_support_views_orders_but_cannot_change_payments(client, place, ann):
    # given: the role grants as the migrations made them (a reused test database may
    # hold groups re-created empty after another run's flush)
    restore_role_groups()
    order = place(ann, paid=True)
    payment = Payment.objects.get(order=order)
    client.force_login(UserFactory(is_staff=True, roles=[Role.SUPPORT]))

    # when
    changelist = client.get(ORDERS)
    payment_page = client.get(f"{PAYMENTS}{payment.pk}/change/")
    payment_post = client.post(f"{PAYMENTS}{payment.pk}/change/", {"status": "refunded"})

    # then
    assert listed(changelist) == {str(order.public_id)}
    assert payment_page.status_code == 200
    assert payment_page.context["has_change_permission"] is False
    assert 'name="amount"' not in payment_page.content.decode()
    assert payment_post.status_code == 403
    assert Payment.objects.get(pk=payment.pk).status == "succeeded"
