"""The order page for daily work: its payment (attempts, last error, decline code), its
money ledger (refunds included) and its notifications; links to its stock ledger; no Save
button, for support or admins; action messages that say what changed and why not."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from apps.catalog.models import Product
from apps.orders import services
from apps.orders.models import Order, OrderStatus
from apps.payments.models import Payment
from apps.users.models import User
from ecommerce.api.permissions import Role
from tests.catalog.factories import make_product
from tests.roles import restore_role_groups
from tests.users.factories import UserFactory

pytestmark = pytest.mark.django_db

ORDERS = "/admin/orders/order/"


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def messages_of(response: Any) -> list[tuple[str, str]]:
    return [(m.level_tag, m.message) for m in get_messages(response.wsgi_request)]


@pytest.fixture(autouse=True)
def _roles_as_migrated() -> None:
    restore_role_groups()


@pytest.fixture
def lamp() -> Product:
    return make_product(sku="lamp", stock=10, price="12.50")


@pytest.fixture
def ann() -> User:
    return UserFactory(email="ann@example.com")


@pytest.fixture
def boss() -> User:
    return UserFactory(email="boss@example.com", is_staff=True, roles=[Role.ADMIN])


@pytest.fixture
def support() -> User:
    return UserFactory(email="help@example.com", is_staff=True, roles=[Role.SUPPORT])


@pytest.fixture
def place(lamp: Product, ann: User, django_capture_on_commit_callbacks: Any) -> Any:
    def make(*, paid: bool = False) -> Order:
        lines = [services.OrderLine("lamp", 1)]
        # Unpaid: the charge queued on commit never runs.
        with django_capture_on_commit_callbacks(execute=paid):
            order, _ = services.place_order(user=ann, lines=lines, payment_token="tok_success")
        order.refresh_from_db()
        return order

    return make


@pytest.fixture
def paid(place: Any) -> Order:
    order = place(paid=True)
    assert order.status == OrderStatus.PAID
    return order


def test_the_order_page_shows_payment_attempts_last_error_and_decline_code(paid, boss):
    # given: the payment needed three tries; the last failed one left its error
    Payment.objects.filter(order=paid).update(
        attempts=3, last_error="card declined by issuer", decline_code="insufficient_funds"
    )

    # when
    response = logged_in(boss).get(f"{ORDERS}{paid.pk}/change/")

    # then
    assert response.status_code == 200
    page = response.content.decode()
    assert "card declined by issuer" in page
    assert "insufficient_funds" in page
    payment_inline = next(
        f for f in response.context["inline_admin_formsets"] if f.opts.model is Payment
    )
    (form,) = payment_inline.formset.forms
    assert (form.instance.attempts, form.instance.decline_code) == (3, "insufficient_funds")
    assert f"/admin/payments/payment/{form.instance.pk}/change/" in page


def test_the_order_page_shows_its_refund_in_the_money_ledger(
    paid, boss, django_capture_on_commit_callbacks
):
    # given
    with django_capture_on_commit_callbacks(execute=True):
        logged_in(boss).post(
            ORDERS, {"action": "refund", "index": "0", "_selected_action": [paid.pk]}
        )

    # when
    response = logged_in(boss).get(f"{ORDERS}{paid.pk}/change/")

    # then
    ledger = next(
        f
        for f in response.context["inline_admin_formsets"]
        if f.opts.model._meta.model_name == "moneymovement"
    )
    kinds = [form.instance.kind for form in ledger.formset.forms]
    assert "refund" in kinds
    assert "capture" in kinds or "authorization" in kinds


def test_the_order_page_lists_its_notifications_with_the_recipients_email(paid, ann, support):
    # when: support, who reads orders and notifications
    response = logged_in(support).get(f"{ORDERS}{paid.pk}/change/")

    # then: the placed and paid emails, to the buyer, linked to their pages
    assert response.status_code == 200
    page = response.content.decode()
    assert "Order placed" in page
    assert "Order paid" in page
    assert ann.email in page
    assert "/admin/notifications/notification/" in page


def test_the_order_page_links_to_its_stock_ledger(paid, boss):
    response = logged_in(boss).get(f"{ORDERS}{paid.pk}/change/")

    assert (
        f"/admin/inventory/stockmovement/?reference=order%3A{paid.public_id}"
        in response.content.decode()
    )


@pytest.mark.parametrize("who", ["support", "boss"])
def test_the_order_page_has_no_save_button(paid, who, request):
    # when: nothing on the page is edited, whoever looks (admins act through actions)
    response = logged_in(request.getfixturevalue(who)).get(f"{ORDERS}{paid.pk}/change/")

    # then
    assert response.status_code == 200
    page = response.content.decode()
    assert 'name="_save"' not in page
    assert 'name="_continue"' not in page


# --- Action messages ---------------------------------------------------------------------------


def act(client: Client, action: str, *orders: Order) -> Any:
    return client.post(
        ORDERS, {"action": action, "index": "0", "_selected_action": [o.pk for o in orders]}
    )


def test_fulfil_names_the_order_it_fulfilled_and_why_it_left_the_other(paid, place, boss):
    # given
    pending = place()

    # when
    response = act(logged_in(boss), "mark_fulfilled", paid, pending)

    # then
    assert messages_of(response) == [
        ("success", f"Fulfilled 1 order(s): {paid.public_id}."),
        (
            "error",
            f"Order {pending.public_id}: pending payment, and a pending payment order "
            "cannot be fulfilled.",
        ),
    ]


def test_fulfilling_a_fulfilled_order_says_it_already_is(paid, boss):
    # given
    services.fulfil_order(order_id=paid.pk, by=boss)

    # when
    response = act(logged_in(boss), "mark_fulfilled", paid)

    # then
    assert messages_of(response) == [
        ("warning", "Nothing changed: no order was fulfilled."),
        ("error", f"Order {paid.public_id}: already fulfilled."),
    ]


def test_cancelling_a_fulfilled_order_says_why_nothing_changed(paid, boss):
    # given
    services.fulfil_order(order_id=paid.pk, by=boss)

    # when
    response = act(logged_in(boss), "cancel", paid)

    # then
    assert messages_of(response)[0] == ("warning", "Nothing changed: no order was cancelled.")
    assert messages_of(response)[1][0] == "error"
    assert messages_of(response)[1][1].startswith(f"Order {paid.public_id}: ")
    assert Order.objects.get(pk=paid.pk).status == OrderStatus.FULFILLED


def test_refunding_a_pending_order_says_why_nothing_changed(place, boss):
    # given
    pending = place()

    # when
    response = act(logged_in(boss), "refund", pending)

    # then
    assert messages_of(response) == [
        ("warning", "Nothing changed: no order was refunded."),
        (
            "error",
            f"Order {pending.public_id}: pending payment, and a pending payment order "
            "cannot be refunded.",
        ),
    ]


def test_retrying_the_payment_of_a_paid_order_says_there_is_none_to_retry(paid, boss):
    response = act(logged_in(boss), "retry_payment", paid)

    assert messages_of(response) == [
        ("warning", "Nothing changed: no order is pending payment."),
        (
            "error",
            f"Order {paid.public_id}: paid, not pending payment, so there is no payment to retry.",
        ),
    ]


def test_view_site_points_at_the_api_docs(boss):
    response = logged_in(boss).get("/admin/")

    assert response.status_code == 200
    assert response.context["site_url"] == "/api/docs"
