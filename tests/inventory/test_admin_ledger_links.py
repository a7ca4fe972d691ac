"""The stock ledger as staff use it: an order's rows link to the order; the product page links
to its ledger instead of listing every row; stock goes down with a reason; support's
view-only pages show no Save button."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from apps.inventory import services
from apps.inventory.models import StockMovement
from apps.inventory.selectors import default_warehouse
from apps.orders import services as orders_services
from apps.users.models import User
from ecommerce.api.permissions import Role
from tests.catalog.factories import make_product
from tests.catalog.helpers import stock_of
from tests.roles import restore_role_groups
from tests.users.factories import UserFactory

pytestmark = pytest.mark.django_db

LEDGER = "/admin/inventory/stockmovement/"


@pytest.fixture(autouse=True)
def _roles_as_migrated() -> None:
    restore_role_groups()


def logged_in(role: Role) -> tuple[Client, User]:
    user = UserFactory(is_staff=True, roles=[role])
    client = Client()
    client.force_login(user)
    return client, user


def test_an_orders_ledger_row_links_to_the_order():
    # given
    make_product(sku="lamp", stock=5, price="10.00")
    order, _ = orders_services.place_order(
        user=UserFactory(),
        lines=[orders_services.OrderLine("lamp", 2)],
        payment_token="tok_success",
    )
    client, _ = logged_in(Role.SUPPORT)

    # when
    response = client.get(LEDGER, {"reference": f"order:{order.public_id}"})

    # then
    assert response.status_code == 200
    assert [row.delta for row in response.context["cl"].result_list] == [-2]
    link = f"/admin/orders/order/by-public-id/{order.public_id}/"
    assert f'href="{link}">order {order.public_id}</a>' in response.content.decode()
    assert client.get(link)["Location"] == f"/admin/orders/order/{order.pk}/change/"


def test_the_order_link_is_refused_to_staff_who_may_not_see_orders():
    # given
    make_product(sku="lamp", stock=5, price="10.00")
    order, _ = orders_services.place_order(
        user=UserFactory(),
        lines=[orders_services.OrderLine("lamp", 1)],
        payment_token="tok_success",
    )
    manager, _ = logged_in(Role.CATALOG_MANAGER)
    support, _ = logged_in(Role.SUPPORT)

    # when / then
    assert manager.get(f"/admin/orders/order/by-public-id/{order.public_id}/").status_code == 403
    missing = "/admin/orders/order/by-public-id/00000000-0000-4000-8000-000000000000/"
    assert support.get(missing).status_code == 404


def test_the_product_page_links_to_its_ledger_instead_of_listing_it():
    # given: a product with many ledger rows
    lamp = make_product(sku="lamp", stock=5, price="10.00")
    client, user = logged_in(Role.CATALOG_MANAGER)
    for n in range(30):
        services.restock(
            variant_id=lamp.variants.get().pk,
            warehouse=default_warehouse(),
            quantity=1,
            note=f"delivery-{n}",
            actor=user,
        )

    # when
    response = client.get(f"/admin/catalog/product/{lamp.pk}/change/")

    # then
    page = response.content.decode()
    assert response.status_code == 200
    assert "delivery-29" not in page
    assert f"{LEDGER}?variant__product__id__exact={lamp.pk}" in page


def test_stock_adjusted_down_with_a_reason_writes_a_ledger_row():
    # given
    lamp = make_product(sku="lamp", stock=5, price="10.00")
    variant = lamp.variants.get()
    client, user = logged_in(Role.CATALOG_MANAGER)

    # when
    response = client.post(
        f"/admin/catalog/product/{lamp.pk}/stock/",
        {
            "variant": variant.pk,
            "warehouse": default_warehouse().pk,
            "kind": "adjust",
            "quantity": "-3",
            "note": "water damage",
        },
    )

    # then
    assert response.status_code == 302
    row = StockMovement.objects.order_by("pk").last()
    assert (row.delta, row.balance, row.reason, row.note, row.actor_id) == (
        -3,
        2,
        "adjustment",
        "water damage",
        user.pk,
    )
    assert stock_of(variant.pk) == 2


@pytest.mark.parametrize(
    "page",
    [
        "/admin/catalog/product/{product}/change/",
        "/admin/inventory/warehouse/{warehouse}/change/",
        "/admin/inventory/stockmovement/{movement}/change/",
    ],
)
def test_supports_view_only_pages_have_no_save_button(page: str):
    # given
    lamp = make_product(sku="lamp", stock=5, price="10.00")
    ids: dict[str, Any] = {
        "product": lamp.pk,
        "warehouse": default_warehouse().pk,
        "movement": StockMovement.objects.filter(variant__product=lamp).first().pk,
    }
    client, _ = logged_in(Role.SUPPORT)

    # when
    response = client.get(page.format(**ids))

    # then
    assert response.status_code == 200
    assert 'name="_save"' not in response.content.decode()
