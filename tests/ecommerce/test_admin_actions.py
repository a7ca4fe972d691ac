"""Who may run each Django admin action, for every ModelAdmin in the registry.

The table below is the rule. A new action (or a newly registered ModelAdmin, whose built-in
`delete_selected` counts too) fails `test_the_table_names_every_action_in_the_registry`
until it declares its permission and gets a row here. The HTTP tests prove the refusal is
real: a refused action posted to the changelist changes nothing in the database.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.contrib.messages import get_messages
from django.db import models
from django.test import Client, RequestFactory

from apps.catalog.models import Product
from apps.inventory.models import StockMovement
from apps.inventory.selectors import default_warehouse
from apps.notifications.models import WebhookEndpoint
from apps.orders import services as orders_services
from apps.orders.events import ORDER_PAYMENT_RETRY_REQUESTED
from apps.orders.models import Order, OrderEvent, OrderStatus
from apps.users.models import User
from ecommerce.api.permissions import Role
from ecommerce.outbox.models import OutboxMessage
from tests.catalog.factories import make_product
from tests.catalog.helpers import stock_of
from tests.notifications.conftest import make_endpoint
from tests.roles import restore_role_groups
from tests.users.factories import UserFactory

pytestmark = pytest.mark.django_db

# Staff kinds: "staff" is a staff account with no role and no permission at all.
KINDS = ("staff", "support", "catalog_manager", "admin", "superuser")
NOBODY: frozenset[str] = frozenset()
SUPERUSER = frozenset({"superuser"})
ADMINS = frozenset({"admin", "superuser"})
CATALOG = frozenset({"catalog_manager", "admin", "superuser"})
RETURN_DESK = frozenset({"support", "admin", "superuser"})

# (model, action) -> the staff kinds that may run it. Support is view-only in the admin,
# bar deciding and receiving returns (orders 0011).
ALLOWED: dict[tuple[str, str], frozenset[str]] = {
    ("auth.group", "delete_selected"): SUPERUSER,
    ("users.user", "delete_selected"): ADMINS,
    ("catalog.product", "delete_selected"): NOBODY,  # deactivated, never deleted
    ("catalog.product", "activate"): CATALOG,
    ("catalog.product", "deactivate"): CATALOG,
    ("catalog.category", "delete_selected"): NOBODY,
    ("catalog.attribute", "delete_selected"): NOBODY,  # products and filters name them
    ("catalog.producttype", "delete_selected"): NOBODY,
    ("inventory.warehouse", "delete_selected"): NOBODY,  # deactivated: the ledger names it
    ("inventory.stock", "delete_selected"): NOBODY,  # changed through the services only
    ("inventory.stockmovement", "delete_selected"): NOBODY,  # append-only
    ("shipping.shippingzone", "delete_selected"): SUPERUSER,
    ("shipping.shippingmethod", "delete_selected"): CATALOG,
    ("pricing.taxclass", "delete_selected"): CATALOG,  # refused while a rate names it
    ("pricing.taxrate", "delete_selected"): CATALOG,
    ("pricing.taxsettings", "delete_selected"): NOBODY,  # the one row, edited in place
    ("pricing.voucher", "delete_selected"): CATALOG,  # refused once a use names it
    ("pricing.voucheruse", "delete_selected"): NOBODY,  # the record of uses
    ("pricing.promotion", "delete_selected"): CATALOG,
    ("orders.order", "delete_selected"): NOBODY,
    ("orders.order", "mark_fulfilled"): ADMINS,
    ("orders.order", "refund"): ADMINS,
    ("orders.order", "cancel"): ADMINS,
    ("orders.order", "retry_payment"): ADMINS,
    ("orders.return", "delete_selected"): NOBODY,
    ("orders.return", "approve"): RETURN_DESK,
    ("orders.return", "reject"): RETURN_DESK,
    ("orders.return", "receive"): RETURN_DESK,
    ("orders.return", "refund"): RETURN_DESK,
    ("payments.payment", "delete_selected"): NOBODY,
    ("payments.moneymovement", "delete_selected"): NOBODY,  # append-only
    ("payments.providerevent", "delete_selected"): NOBODY,  # what the provider told us
    ("payments.refund", "delete_selected"): NOBODY,  # the money ledger names each one
    ("audit.auditevent", "delete_selected"): NOBODY,  # append-only
    ("notifications.notification", "delete_selected"): NOBODY,
    ("notifications.notification", "resend"): ADMINS,
    ("notifications.webhookendpoint", "delete_selected"): SUPERUSER,
    ("notifications.webhookendpoint", "enable"): ADMINS,
    ("notifications.webhookendpoint", "disable"): ADMINS,
    ("token_blacklist.blacklistedtoken", "delete_selected"): SUPERUSER,
    # token_blacklist.outstandingtoken sets `actions = None`: no actions at all.
}


@pytest.fixture(autouse=True)
def _roles_as_migrated() -> None:
    restore_role_groups()


def make_staff(kind: str, **fields: Any) -> User:
    if kind == "superuser":
        return UserFactory(is_staff=True, is_superuser=True, roles=[], **fields)
    roles = [] if kind == "staff" else [Role(kind)]
    return UserFactory(is_staff=True, roles=roles, **fields)


def declared_actions(model_admin: admin.ModelAdmin) -> dict[str, Callable[..., Any]]:
    """Every action a ModelAdmin offers before permissions filter them, by name."""
    if model_admin.actions is None:
        return {}
    names = [name for name, _func in admin.site.actions]
    names += [a if isinstance(a, str) else a.__name__ for a in model_admin.actions]
    found = {}
    for name in names:
        action = model_admin.get_action(name)
        assert action is not None, f"{model_admin} lists an unknown action {name!r}"
        found[name] = action[0]
    return found


def registry() -> list[tuple[str, admin.ModelAdmin]]:
    return [(model._meta.label_lower, ma) for model, ma in admin.site._registry.items()]


def admin_request(user: User) -> Any:
    request = RequestFactory().get("/admin/")
    request.user = user
    return request


# --- The table against the registry ------------------------------------------------------------


def test_the_table_names_every_action_in_the_registry():
    # when
    found = {(label, name) for label, ma in registry() for name in declared_actions(ma)}

    # then: no action without a row, no row for an action that is gone
    assert sorted(found - set(ALLOWED)) == []
    assert sorted(set(ALLOWED) - found) == []


def test_every_action_declares_the_permissions_it_needs():
    for label, model_admin in registry():
        for name, func in declared_actions(model_admin).items():
            # when
            permissions = getattr(func, "allowed_permissions", ())

            # then
            assert permissions, f"{label}: action {name!r} declares no permission"
            for permission in permissions:
                assert callable(getattr(model_admin, f"has_{permission}_permission", None)), (
                    f"{label}: action {name!r} needs has_{permission}_permission"
                )


@pytest.mark.parametrize("kind", KINDS)
def test_each_staff_kind_gets_exactly_the_actions_the_table_allows(kind):
    # given
    request = admin_request(make_staff(kind))

    for label, model_admin in registry():
        # when
        offered = set(model_admin.get_actions(request))

        # then
        expected = {
            name for (lbl, name), kinds in ALLOWED.items() if lbl == label and kind in kinds
        }
        assert offered == expected, label


@pytest.mark.parametrize("kind", ["staff", "support"])
def test_read_only_kinds_have_no_add_change_or_delete_anywhere(kind):
    # given
    request = admin_request(make_staff(kind))

    for label, model_admin in registry():
        # then: no form that would save, on any model
        assert model_admin.has_add_permission(request) is False, label
        assert model_admin.has_change_permission(request) is False, label
        assert model_admin.has_delete_permission(request) is False, label


# --- Refused over HTTP: nothing changes ---------------------------------------------------------


def test_support_change_pages_have_no_form_that_saves():
    # given: one object of each model support may view
    product = make_product(sku="lamp", stock=4)
    order, _ = orders_services.place_order(
        user=UserFactory(), lines=[orders_services.OrderLine("lamp", 1)], payment_token="tok"
    )
    account = UserFactory(name="Unchanged")
    client = logged_in(make_staff("support"))
    pages = {
        f"/admin/catalog/product/{product.pk}/change/": {"name": "Changed", "price": "1.00"},
        f"/admin/orders/order/{order.pk}/change/": {"status": "cancelled"},
        f"/admin/users/user/{account.pk}/change/": {"name": "Changed", "email": "x@example.com"},
    }

    for url, data in pages.items():
        # when
        page = client.get(url)
        post = client.post(url, data)

        # then
        assert page.status_code == 200, url
        assert page.context["has_change_permission"] is False, url
        assert 'name="_save"' not in page.content.decode(), url
        assert post.status_code == 403, url
    assert Product.objects.get(pk=product.pk).name == "Product lamp"
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PENDING_PAYMENT
    assert User.objects.get(pk=account.pk).name == "Unchanged"


@pytest.fixture
def lamp() -> Product:
    return make_product(sku="lamp", stock=10, price="12.50")


@pytest.fixture
def place(lamp: Product, django_capture_on_commit_callbacks: Any) -> Callable[..., Order]:
    """Place an order of `quantity` lamps; `paid=True` lets its charge run on commit."""

    def make(quantity: int = 1, *, paid: bool = False) -> Order:
        lines = [orders_services.OrderLine("lamp", quantity)]
        with django_capture_on_commit_callbacks(execute=paid):
            order, _ = orders_services.place_order(
                user=UserFactory(), lines=lines, payment_token="tok_success"
            )
        order.refresh_from_db()
        assert order.status == (OrderStatus.PAID if paid else OrderStatus.PENDING_PAYMENT)
        return order

    return make


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def post_action(client: Client, url: str, action: str, *objects: models.Model, **extra: Any) -> Any:
    data = {"action": action, "index": "0", "_selected_action": [o.pk for o in objects], **extra}
    return client.post(url, data)


def order_state(order: Order) -> tuple[str, int, int]:
    return (
        Order.objects.get(pk=order.pk).status,
        OrderEvent.objects.filter(order=order).count(),
        OutboxMessage.objects.filter(
            topic=ORDER_PAYMENT_RETRY_REQUESTED, payload__order_id=order.pk
        ).count(),
    )


ORDERS = "/admin/orders/order/"
PRODUCTS = "/admin/catalog/product/"
ENDPOINTS = "/admin/notifications/webhookendpoint/"


@pytest.mark.parametrize(
    ("action", "paid"),
    [
        ("refund", True),
        ("cancel", True),
        ("cancel", False),
        ("mark_fulfilled", True),
        ("retry_payment", False),
    ],
)
def test_support_posting_an_order_action_changes_nothing(place, lamp, action, paid):
    # given
    order = place(2, paid=paid)
    before = order_state(order)
    support = logged_in(make_staff("support"))

    # when
    response = post_action(support, ORDERS, action, order)

    # then: the changelist is shown again (support may view), and nothing moved
    assert response.status_code == 200
    assert order_state(order) == before
    assert stock_of(lamp.variant.pk) == 8
    assert LogEntry.objects.count() == 0


@pytest.mark.parametrize("kind", ["catalog_manager", "staff"])
def test_staff_without_order_rights_cannot_even_reach_the_orders_changelist(place, kind):
    # given
    order = place(paid=True)
    before = order_state(order)

    # when
    response = post_action(logged_in(make_staff(kind)), ORDERS, "refund", order)

    # then
    assert response.status_code == 403
    assert order_state(order) == before


@pytest.mark.parametrize("action", ["deactivate", "activate"])
def test_support_posting_a_product_action_changes_nothing(action):
    # given
    on = make_product(sku="on", stock=3)
    off = make_product(sku="off", stock=1, is_active=False)
    movements = StockMovement.objects.count()

    # when
    response = post_action(logged_in(make_staff("support")), PRODUCTS, action, on, off)

    # then
    assert response.status_code == 200
    assert sorted(Product.objects.values_list("name", "is_active")) == [
        ("Product off", False),
        ("Product on", True),
    ]
    assert StockMovement.objects.count() == movements
    assert LogEntry.objects.count() == 0


def test_support_posting_the_stock_form_changes_nothing():
    # given
    lamp = make_product(sku="lamp", stock=3)
    movements = StockMovement.objects.count()

    # when
    response = logged_in(make_staff("support")).post(
        f"{PRODUCTS}{lamp.pk}/stock/",
        {
            "variant": lamp.variant.pk,
            "warehouse": default_warehouse().pk,
            "kind": "restock",
            "quantity": "5",
            "note": "delivery 42",
        },
    )

    # then
    assert response.status_code == 403
    assert StockMovement.objects.count() == movements
    assert LogEntry.objects.count() == 0


def test_a_catalog_manager_posting_an_order_action_on_products_is_refused(lamp):
    # given: the action exists on another admin, not this one
    manager = logged_in(make_staff("catalog_manager"))

    # when
    response = post_action(manager, PRODUCTS, "refund", lamp)

    # then
    assert response.status_code == 302
    assert [m.message for m in get_messages(response.wsgi_request)] == ["No action selected."]
    assert Product.objects.get(pk=lamp.pk).is_active is True


@pytest.mark.parametrize("action", ["enable", "disable"])
def test_support_posting_a_webhook_endpoint_action_changes_nothing(action):
    # given
    endpoint = make_endpoint(UserFactory(), "https://hooks.example/in")
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(active=action == "disable")

    # when: endpoints are their owners'; support does not even see them
    response = post_action(logged_in(make_staff("support")), ENDPOINTS, action, endpoint)

    # then
    assert response.status_code == 403
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).active is (action == "disable")
    assert LogEntry.objects.count() == 0


# --- Allowed actions leave a LogEntry, shown on the History page --------------------------------


def log_of(obj: models.Model) -> list[tuple[str, int, str]]:
    entries = LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(obj), object_id=str(obj.pk)
    ).order_by("pk")
    return [(entry.user.email, entry.action_flag, entry.change_message) for entry in entries]


def test_an_admin_refund_is_logged_and_shown_on_the_orders_history_page(
    place, lamp, django_capture_on_commit_callbacks
):
    # given: an admin by role (not a superuser) holds the migrated refund permission
    order = place(3, paid=True)
    boss = make_staff("admin", email="boss@example.com")
    client = logged_in(boss)

    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = post_action(client, ORDERS, "refund", order)
    history = client.get(f"{ORDERS}{order.pk}/history/")

    # then
    assert response.status_code == 302
    assert Order.objects.get(pk=order.pk).status == OrderStatus.REFUNDED
    assert stock_of(lamp.variant.pk) == 10
    assert log_of(order) == [("boss@example.com", CHANGE, "Refunded")]
    assert history.status_code == 200
    assert [(e.user.email, e.change_message) for e in history.context["action_list"]] == [
        ("boss@example.com", "Refunded")
    ]
    assert "Refunded" in history.content.decode()


@pytest.mark.parametrize(
    ("paid", "status", "stock"),
    [(False, OrderStatus.CANCELLED, 10), (True, OrderStatus.REFUNDED, 10)],
)
def test_an_admin_cancels_orders_with_the_cancel_action(
    place, lamp, paid, status, stock, django_capture_on_commit_callbacks
):
    # given
    order = place(4, paid=paid)
    boss = make_staff("admin", email="boss@example.com")

    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = post_action(logged_in(boss), ORDERS, "cancel", order)

    # then
    assert response.status_code == 302
    assert [m.message for m in get_messages(response.wsgi_request)] == [
        f"Cancelled 1 order(s): {order.public_id}."
    ]
    assert Order.objects.get(pk=order.pk).status == status
    assert stock_of(lamp.variant.pk) == stock
    last = OrderEvent.objects.filter(order=order).order_by("pk").last()
    assert (last.to_status, last.actor_id, last.reason) == (status, boss.pk, "cancelled by staff")
    assert log_of(order) == [("boss@example.com", CHANGE, "Cancelled")]


def test_a_refused_order_in_a_batch_is_reported_and_not_logged(place):
    # given
    fulfilled = place(paid=True)
    orders_services.fulfil_order(order_id=fulfilled.pk, by=None)
    pending = place()
    boss = make_staff("admin", email="boss@example.com")

    # when
    response = post_action(logged_in(boss), ORDERS, "cancel", fulfilled, pending)

    # then
    assert response.status_code == 302
    assert Order.objects.get(pk=fulfilled.pk).status == OrderStatus.FULFILLED
    assert Order.objects.get(pk=pending.pk).status == OrderStatus.CANCELLED
    assert log_of(fulfilled) == []
    assert log_of(pending) == [("boss@example.com", CHANGE, "Cancelled")]


def test_fulfil_and_retry_payment_are_logged(place):
    # given
    paid, pending = place(paid=True), place()
    client = logged_in(make_staff("superuser", email="root@example.com"))

    # when
    post_action(client, ORDERS, "mark_fulfilled", paid)
    post_action(client, ORDERS, "retry_payment", pending, paid)

    # then
    assert log_of(paid) == [("root@example.com", CHANGE, "Fulfilled")]
    assert log_of(pending) == [("root@example.com", CHANGE, "Requested payment again")]


def test_a_catalog_manager_restock_and_deactivate_are_logged_per_product():
    # given
    mug, pot = make_product(sku="mug", stock=1), make_product(sku="pot", stock=0)
    client = logged_in(make_staff("catalog_manager", email="cat@example.com"))

    # when
    restocks = [
        client.post(
            f"{PRODUCTS}{product.pk}/stock/",
            {
                "variant": product.variant.pk,
                "warehouse": default_warehouse().pk,
                "kind": "restock",
                "quantity": "5",
                "note": "delivery 42",
            },
        )
        for product in (mug, pot)
    ]
    deactivate = post_action(client, PRODUCTS, "deactivate", pot)
    history = client.get(f"{PRODUCTS}{pot.pk}/history/")

    # then
    assert [r.status_code for r in restocks] == [302, 302]
    assert deactivate.status_code == 302
    assert (stock_of(mug.variant.pk), stock_of(pot.variant.pk)) == (6, 5)
    assert sorted(Product.objects.values_list("name", "is_active")) == [
        ("Product mug", True),
        ("Product pot", False),
    ]
    assert log_of(mug) == [
        (
            "cat@example.com",
            CHANGE,
            "Restocked 5 of mug in Main warehouse (delivery 42): 6 on hand.",
        )
    ]
    assert log_of(pot) == [
        (
            "cat@example.com",
            CHANGE,
            "Restocked 5 of pot in Main warehouse (delivery 42): 5 on hand.",
        ),
        ("cat@example.com", CHANGE, "Deactivated"),
    ]
    assert "Restocked 5 of pot in Main warehouse" in history.content.decode()


def test_an_admin_disabling_a_webhook_endpoint_is_logged():
    # given
    endpoint = make_endpoint(UserFactory(), "https://hooks.example/in")
    client = logged_in(make_staff("admin", email="boss@example.com"))

    # when
    response = post_action(client, ENDPOINTS, "disable", endpoint)

    # then
    assert response.status_code == 302
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).active is False
    assert log_of(endpoint) == [("boss@example.com", CHANGE, "Disabled")]
