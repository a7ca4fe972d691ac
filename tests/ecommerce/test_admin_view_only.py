"""Support is view-only in the admin: on every page it may open, no Save button; and the
pages of models that nobody changes in the admin show none to admins either."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from apps.orders import services as orders_services
from ecommerce.api.permissions import Role
from tests.catalog.factories import make_product
from tests.roles import restore_role_groups
from tests.users.factories import UserFactory

pytestmark = pytest.mark.django_db

# Models edited through a form on their page by those who may change them.
EDITED_IN_A_FORM = {
    "auth.group",
    "users.user",
    "catalog.product",
    "catalog.category",
    "catalog.attribute",
    "catalog.producttype",
    "inventory.warehouse",
    "shipping.shippingzone",
    "shipping.shippingmethod",
    "pricing.taxclass",
    "pricing.taxrate",
    "pricing.taxsettings",
    "pricing.voucher",
    "pricing.promotion",
}


@pytest.fixture(autouse=True)
def _roles_as_migrated() -> None:
    restore_role_groups()


@pytest.fixture
def shop(django_capture_on_commit_callbacks: Any) -> None:
    """One of most things: a product with stock, a paid order (payment, money and stock
    ledger rows, notifications), accounts."""
    make_product(sku="lamp", stock=5, price="10.00")
    with django_capture_on_commit_callbacks(execute=True):
        orders_services.place_order(
            user=UserFactory(email="ann@example.com"),
            lines=[orders_services.OrderLine("lamp", 1)],
            payment_token="tok_success",
        )


def change_pages(client: Client, user: Any) -> list[tuple[str, str]]:
    """(model label, URL of the change page of its first row) for each model the user may
    view that has a row."""
    request = client.get("/admin/").wsgi_request
    pages = []
    for model, model_admin in admin.site._registry.items():
        if not model_admin.has_view_permission(request):
            continue
        first = model_admin.get_queryset(request).order_by("pk").first()
        if first is None:
            continue
        opts = model._meta
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[first.pk])
        pages.append((opts.label_lower, url))
    return pages


def logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_support_sees_no_save_button_on_any_page(shop):
    # given
    support = UserFactory(is_staff=True, roles=[Role.SUPPORT])
    client = logged_in(support)

    # when
    pages = change_pages(client, support)

    # then: the walk covers the daily pages, each without a Save button
    labels = {label for label, _url in pages}
    assert {"orders.order", "payments.payment", "notifications.notification"} <= labels
    for label, url in pages:
        response = client.get(url)
        assert response.status_code == 200, label
        assert 'name="_save"' not in response.content.decode(), label


def test_admins_see_no_save_button_where_nothing_is_edited(shop):
    # given
    boss = UserFactory(is_staff=True, roles=[Role.ADMIN])
    client = logged_in(boss)

    # when
    pages = change_pages(client, boss)

    # then
    assert "orders.order" in {label for label, _url in pages}
    for label, url in pages:
        if label in EDITED_IN_A_FORM:
            continue
        response = client.get(url)
        assert response.status_code == 200, label
        assert 'name="_save"' not in response.content.decode(), label
