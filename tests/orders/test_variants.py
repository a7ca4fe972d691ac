"""Ordering variants: by SKU, or by a one-variant product's id; to a destination the
warehouses serve; each line kept as it was bought."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from apps.catalog import services as catalog_services
from apps.catalog.models import Product, ProductVariant
from apps.inventory import selectors as inventory_selectors
from apps.inventory.models import StockMovement, Warehouse
from apps.orders.models import Order, OrderItem
from apps.payments.models import Payment
from apps.shipping.models import ShippingZone
from apps.users.models import User
from ecommerce.api.permissions import Role
from ecommerce.outbox.models import OutboxMessage
from tests.catalog.helpers import assert_ledger_matches, stock_of
from tests.inventory.factories import make_warehouse, put_stock
from tests.orders.factories import untaxed_line
from tests.users.factories import UserFactory

pytestmark = pytest.mark.django_db

TOKEN = "tok_success"
PROBLEM = "application/problem+json"


def order_body(*lines: tuple[str | int, int], **extra: Any) -> dict[str, Any]:
    return {"items": [{"id": p, "quantity": q} for p, q in lines], "payment_token": TOKEN, **extra}


def variant(sku: str) -> ProductVariant:
    return ProductVariant.objects.get(sku=sku)


def stored() -> dict[str, int]:
    """What a refused order must leave untouched, counted."""
    return {
        "orders": Order.objects.count(),
        "items": OrderItem.objects.count(),
        "payments": Payment.objects.count(),
        "outbox": OutboxMessage.objects.count(),
        "ledger": StockMovement.objects.count(),
    }


def restrict(warehouse: Warehouse, *countries: str) -> None:
    """Let `warehouse` serve only `countries` (a warehouse without a zone serves all)."""
    zone = ShippingZone.objects.create(
        name=f"Zone of {warehouse.slug}", slug=f"only-{warehouse.slug}", countries=list(countries)
    )
    warehouse.shipping_zones.add(zone)


@pytest.fixture
def buyer() -> User:
    return UserFactory(roles=[Role.CUSTOMER])


@pytest.fixture
def buyer_client(client_for: Any, buyer: User) -> Any:
    return client_for(buyer)


@pytest.fixture
def tee() -> Product:
    """A product in two sizes; stock in the default warehouse, which serves everyone."""
    return catalog_services.create_product(
        name="Organic tee",
        variants=[
            catalog_services.VariantSpec(
                sku="TEE-M-BLK", price=Decimal("19.90"), initial_stock=5, name="M / Black"
            ),
            catalog_services.VariantSpec(
                sku="TEE-L-BLK", price=Decimal("21.50"), initial_stock=3, name="L / Black"
            ),
        ],
    )


@pytest.fixture
def main() -> Warehouse:
    return inventory_selectors.default_warehouse()


def test_variants_of_a_multi_variant_product_are_ordered_by_sku(buyer_client, tee):
    # given
    medium, large = variant("TEE-M-BLK"), variant("TEE-L-BLK")

    # when: SKUs match in any letter case
    response = buyer_client.post(
        "/api/orders", order_body(("tee-l-blk", 2), ("TEE-M-BLK", 1)), format="json"
    )

    # then
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["items"] == [
        {
            "sku": "TEE-M-BLK",
            "name": "Organic tee",
            "variant": "M / Black",
            "unit_price": "19.90",
            "quantity": 1,
            "line_total": "19.90",
            **untaxed_line("19.90"),
        },
        {
            "sku": "TEE-L-BLK",
            "name": "Organic tee",
            "variant": "L / Black",
            "unit_price": "21.50",
            "quantity": 2,
            "line_total": "43.00",
            **untaxed_line("43.00"),
        },
    ]
    assert body["subtotal"] == body["total"] == "62.90"
    order = Order.objects.get(public_id=body["id"])
    assert list(order.items.order_by("pk").values_list("variant_id", "quantity")) == [
        (medium.pk, 1),
        (large.pk, 2),
    ]
    assert (stock_of(medium.pk), stock_of(large.pk)) == (4, 1)
    assert list(
        StockMovement.objects.filter(reference=f"order:{order.public_id}")
        .order_by("variant_id")
        .values_list("variant_id", "delta", "reason")
    ) == [(medium.pk, -1, "order"), (large.pk, -2, "order")]
    assert_ledger_matches(medium.pk, large.pk)


def test_a_one_variant_product_is_ordered_by_its_numeric_id(buyer_client):
    # given
    mug = catalog_services.create_product(
        name="Mug",
        variants=[
            catalog_services.VariantSpec(
                sku="MUG-1", price=Decimal("4.50"), initial_stock=4, name="One size"
            )
        ],
    )

    # when: the id as a JSON number and as digits name the same variant
    response = buyer_client.post(
        "/api/orders", order_body((mug.pk, 1), (str(mug.pk), 1)), format="json"
    )

    # then
    assert response.status_code == 201, response.content
    assert response.json()["items"] == [
        {
            "sku": "MUG-1",
            "name": "Mug",
            "variant": "One size",
            "unit_price": "4.50",
            "quantity": 2,
            "line_total": "9.00",
            **untaxed_line("9.00"),
        }
    ]
    assert stock_of(variant("MUG-1").pk) == 2
    assert_ledger_matches(variant("MUG-1").pk)


def test_a_product_with_one_active_variant_left_is_ordered_by_its_id(buyer_client, tee):
    # given
    catalog_services.update_variant(variant=variant("TEE-L-BLK"), is_active=False)

    # when
    response = buyer_client.post("/api/orders", order_body((tee.pk, 2)), format="json")

    # then
    assert response.status_code == 201, response.content
    assert [(i["sku"], i["variant"], i["quantity"]) for i in response.json()["items"]] == [
        ("TEE-M-BLK", "M / Black", 2)
    ]
    assert (stock_of(variant("TEE-M-BLK").pk), stock_of(variant("TEE-L-BLK").pk)) == (3, 3)


@pytest.mark.parametrize("as_text", [False, True])
def test_a_multi_variant_product_by_numeric_id_is_400_naming_it(buyer_client, tee, as_text):
    # given
    before = stored()
    lookup = str(tee.pk) if as_text else tee.pk

    # when: even next to a line that could be served
    response = buyer_client.post(
        "/api/orders", order_body(("TEE-M-BLK", 1), (lookup, 1)), format="json"
    )

    # then
    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["code"] == "invalid_order"
    assert body["detail"] == (
        f"Product {tee.pk} comes in several variants: order a variant by SKU."
    )
    assert stored() == before
    assert (stock_of(variant("TEE-M-BLK").pk), stock_of(variant("TEE-L-BLK").pk)) == (5, 3)


@pytest.mark.parametrize("country", ["de", "De", "DEU", "D", "12", "D1", 12, ["DE"], None])
def test_a_malformed_shipping_country_is_400_with_a_pointer(buyer_client, tee, country):
    # given
    before = stored()

    # when
    response = buyer_client.post(
        "/api/orders", order_body(("TEE-M-BLK", 1), shipping_country=country), format="json"
    )

    # then
    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM
    assert {e["pointer"] for e in response.json()["errors"]} == {"#/shipping_country"}
    assert stored() == before
    assert stock_of(variant("TEE-M-BLK").pk) == 5


def test_the_shipping_country_is_stored_and_echoed(buyer_client, tee):
    # when
    response = buyer_client.post(
        "/api/orders", order_body(("TEE-M-BLK", 1), shipping_country="DE"), format="json"
    )

    # then
    assert response.status_code == 201, response.content
    order_id = response.json()["id"]
    assert response.json()["shipping_country"] == "DE"
    assert Order.objects.get(public_id=order_id).shipping_country == "DE"
    assert buyer_client.get(f"/api/orders/{order_id}").json()["shipping_country"] == "DE"
    assert [o["shipping_country"] for o in buyer_client.get("/api/orders").json()["results"]] == [
        "DE"
    ]


@pytest.mark.parametrize("extra", [{}, {"shipping_country": ""}])
def test_an_order_without_a_destination_has_an_empty_country(buyer_client, tee, extra):
    response = buyer_client.post(
        "/api/orders", order_body(("TEE-M-BLK", 1), **extra), format="json"
    )

    assert response.status_code == 201, response.content
    assert response.json()["shipping_country"] == ""
    assert Order.objects.get(public_id=response.json()["id"]).shipping_country == ""


def test_an_order_to_a_country_no_warehouse_serves_is_409_and_stores_nothing(
    buyer_client, tee, main
):
    # given: the default warehouse ships to Germany only, another one to Austria only
    restrict(main, "DE")
    vienna = make_warehouse("vienna", countries=["AT"])
    medium = variant("TEE-M-BLK")
    put_stock(medium.pk, vienna, 2)
    before = stored()

    # when
    response = buyer_client.post(
        "/api/orders",
        order_body(("TEE-M-BLK", 1), ("TEE-L-BLK", 2), shipping_country="FR"),
        format="json",
    )

    # then
    assert response.status_code == 409
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["code"] == "out_of_stock"
    assert body["shortfalls"] == [
        {"sku": "TEE-L-BLK", "requested": 2, "available": 0},
        {"sku": "TEE-M-BLK", "requested": 1, "available": 0},
    ]
    assert stored() == before
    assert (stock_of(medium.pk, main.pk), stock_of(medium.pk, vienna.pk)) == (5, 2)
    assert stock_of(variant("TEE-L-BLK").pk) == 3
    assert_ledger_matches(medium.pk, variant("TEE-L-BLK").pk)


def test_an_order_takes_stock_from_the_warehouses_serving_its_country_and_returns_it_there(
    buyer_client, tee, main
):
    # given: Paris ships to France only and goes first; the default warehouse serves all
    paris = make_warehouse("paris", priority=10, countries=["FR"])
    medium = variant("TEE-M-BLK")
    put_stock(medium.pk, paris, 2)

    # when
    to_germany = buyer_client.post(
        "/api/orders", order_body(("TEE-M-BLK", 1), shipping_country="DE"), format="json"
    )
    to_france = buyer_client.post(
        "/api/orders", order_body(("TEE-M-BLK", 3), shipping_country="FR"), format="json"
    )

    # then: Germany from the default warehouse only; France from Paris first, then the rest
    assert to_germany.status_code == to_france.status_code == 201
    assert (stock_of(medium.pk, paris.pk), stock_of(medium.pk, main.pk)) == (0, 3)
    france_id = to_france.json()["id"]
    assert sorted(
        StockMovement.objects.filter(reference=f"order:{france_id}").values_list(
            "warehouse_id", "delta"
        )
    ) == sorted([(paris.pk, -2), (main.pk, -1)])

    # when: the French order is cancelled, each unit goes back where it came from
    cancelled = buyer_client.post(f"/api/orders/{france_id}/cancel")

    # then
    assert cancelled.status_code == 200
    assert (stock_of(medium.pk, paris.pk), stock_of(medium.pk, main.pk)) == (2, 4)
    assert_ledger_matches(medium.pk)


def test_order_lines_keep_what_was_bought_after_the_catalog_changes(buyer_client, tee):
    # given
    placed = buyer_client.post(
        "/api/orders", order_body(("TEE-L-BLK", 2), shipping_country="DE"), format="json"
    )
    assert placed.status_code == 201, placed.content
    as_bought = placed.json()["items"]
    assert as_bought == [
        {
            "sku": "TEE-L-BLK",
            "name": "Organic tee",
            "variant": "L / Black",
            "unit_price": "21.50",
            "quantity": 2,
            "line_total": "43.00",
            **untaxed_line("43.00"),
        }
    ]

    # when: the variant is renamed and repriced, the product renamed
    large = variant("TEE-L-BLK")
    catalog_services.update_variant(variant=large, name="Large / Black", price=Decimal("25.00"))
    catalog_services.update_product(product=Product.objects.get(pk=tee.pk), name="Tee, organic")

    # then: the order still shows the line as bought
    order_id = placed.json()["id"]
    detail = buyer_client.get(f"/api/orders/{order_id}").json()
    assert detail["items"] == as_bought
    assert (detail["subtotal"], detail["total"]) == ("43.00", "43.00")
    item = OrderItem.objects.get(order__public_id=order_id)
    assert (item.variant_id, item.sku, item.name, item.variant_name, item.unit_price) == (
        large.pk,
        "TEE-L-BLK",
        "Organic tee",
        "L / Black",
        Decimal("21.50"),
    )
    # and a new order of the same variant is priced and named as the catalog is now
    again = buyer_client.post("/api/orders", order_body(("TEE-L-BLK", 1)), format="json")
    assert [(i["name"], i["variant"], i["unit_price"]) for i in again.json()["items"]] == [
        ("Tee, organic", "Large / Black", "25.00")
    ]
