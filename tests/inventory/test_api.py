"""The inventory API: stock changes per warehouse, the ledger, and the warehouses."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from rest_framework.test import APIClient

from apps.catalog import services as catalog_services
from apps.inventory import selectors, services
from apps.inventory.exceptions import OutOfStock
from apps.inventory.models import Stock, StockMovement, Warehouse
from apps.inventory.services import StockLine
from apps.shipping.models import ShippingZone
from ecommerce.api.permissions import Role
from tests.catalog.asserts import assert_invalid, assert_problem, catalog_snapshot
from tests.catalog.factories import make_product
from tests.catalog.helpers import assert_ledger_matches, stock_of
from tests.inventory.factories import make_warehouse, put_stock
from tests.shipping.factories import make_zone
from tests.users.factories import UserFactory

pytestmark = pytest.mark.django_db

PRODUCTS = "/api/products"
WAREHOUSES = "/api/warehouses"


@pytest.fixture
def manager_client(client_for: Callable[[Any], APIClient]) -> APIClient:
    return client_for(UserFactory(email="manager@example.com", roles=[Role.CATALOG_MANAGER]))


@pytest.fixture
def customer_client(client_for: Callable[[Any], APIClient]) -> APIClient:
    return client_for(UserFactory(roles=[Role.CUSTOMER]))


@pytest.fixture
def two_warehouses() -> dict[str, Any]:
    """`tee` holds 4 units in the default warehouse `main` and 6 in `north`."""
    selectors.default_warehouse()  # `main` first: a flushed database has none
    north = make_warehouse("north", priority=200, countries=["SE"])
    tee = make_product(sku="tee", stock=4).variant
    put_stock(tee.pk, north, 6)
    return {"tee": tee, "north": north}


def warehouse_snapshot() -> dict[str, list[tuple[Any, ...]]]:
    return {
        "warehouses": list(
            Warehouse.objects.order_by("pk").values_list(
                "pk", "name", "slug", "priority", "is_active", "updated_at"
            )
        ),
        "zones": list(ShippingZone.objects.order_by("pk").values_list("pk", "slug", "countries")),
        "served": list(
            Warehouse.shipping_zones.through.objects.order_by("pk").values_list(
                "warehouse_id", "shippingzone_id"
            )
        ),
    }


# --- POST /api/products/{sku}/stock -----------------------------------------------------------


def test_a_restock_goes_into_the_named_warehouse_only(manager_client, two_warehouses):
    tee, north = two_warehouses["tee"], two_warehouses["north"]

    response = manager_client.post(
        f"{PRODUCTS}/tee/stock",
        {"delta": 5, "reason": "restock", "warehouse": "north", "note": "box 7"},
        format="json",
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert {k: body[k] for k in ("sku", "warehouse", "stock", "total_stock")} == {
        "sku": "tee",
        "warehouse": "north",
        "stock": 11,
        "total_stock": 15,
    }
    movement = body["movement"]
    assert (movement["warehouse"], movement["delta"], movement["balance"]) == ("north", 5, 11)
    assert (movement["reason"], movement["note"], movement["actor"]) == (
        "restock",
        "box 7",
        "manager@example.com",
    )
    assert (stock_of(tee.pk, north.pk), stock_of(tee.pk)) == (11, 15)
    assert_ledger_matches(tee.pk)


def test_without_a_warehouse_the_default_one_changes(manager_client, two_warehouses):
    tee, north = two_warehouses["tee"], two_warehouses["north"]

    response = manager_client.post(
        f"{PRODUCTS}/tee/stock", {"delta": -1, "reason": "adjustment"}, format="json"
    )

    assert response.status_code == 200, response.content
    assert (response.json()["warehouse"], response.json()["stock"]) == ("main", 3)
    assert stock_of(tee.pk, north.pk) == 6


def test_an_adjustment_below_zero_counts_only_that_warehouse(manager_client, two_warehouses):
    before = catalog_snapshot()

    # 10 units in all, but only 4 in `main`
    response = manager_client.post(
        f"{PRODUCTS}/tee/stock", {"delta": -5, "reason": "adjustment"}, format="json"
    )

    body = assert_problem(response, 409, "out_of_stock", extra=("shortfalls",))
    assert body["shortfalls"] == [{"sku": "tee", "requested": 5, "available": 4}]
    assert catalog_snapshot() == before


@pytest.mark.parametrize("slug", ["nowhere", "closed"])
def test_an_unknown_or_inactive_warehouse_is_a_400_and_changes_nothing(
    manager_client, two_warehouses, slug
):
    make_warehouse("closed", is_active=False)
    before = catalog_snapshot()

    response = manager_client.post(
        f"{PRODUCTS}/tee/stock",
        {"delta": 1, "reason": "restock", "warehouse": slug},
        format="json",
    )

    body = assert_problem(response, 400, "unknown_warehouse", extra=("warehouse",))
    assert body["warehouse"] == slug
    assert catalog_snapshot() == before


@pytest.mark.parametrize("warehouse", ["no such", 7, "x" * 121])
def test_a_malformed_warehouse_is_a_validation_error(manager_client, two_warehouses, warehouse):
    before = catalog_snapshot()

    response = manager_client.post(
        f"{PRODUCTS}/tee/stock",
        {"delta": 1, "reason": "restock", "warehouse": warehouse},
        format="json",
    )

    assert_invalid(response, "#/warehouse")
    assert catalog_snapshot() == before


def test_stock_changes_are_for_catalog_managers(customer_client, api_client, two_warehouses):
    body = {"delta": 1, "reason": "restock", "warehouse": "north"}

    assert_problem(
        customer_client.post(f"{PRODUCTS}/tee/stock", body, format="json"),
        403,
        "permission_denied",
    )
    assert api_client.post(f"{PRODUCTS}/tee/stock", body, format="json").status_code == 401
    assert stock_of(two_warehouses["tee"].pk) == 10


# --- services per warehouse -------------------------------------------------------------------


def test_adjust_and_count_change_one_warehouse_and_leave_the_other(two_warehouses):
    tee, north = two_warehouses["tee"], two_warehouses["north"]

    services.adjust_stock(variant_id=tee.pk, delta=-2, warehouse=north, note="damaged")
    count = services.set_stock_level(variant_id=tee.pk, target=9, warehouse=north, note="count")
    with pytest.raises(OutOfStock):
        services.adjust_stock(variant_id=tee.pk, delta=-10, warehouse=north)

    assert (count.delta, count.balance) == (5, 9)
    assert (stock_of(tee.pk), stock_of(tee.pk, north.pk)) == (13, 9)
    assert list(
        StockMovement.objects.filter(variant=tee, warehouse=north)
        .order_by("pk")
        .values_list("delta", "reason")
    ) == [(6, "restock"), (-2, "adjustment"), (5, "adjustment")]
    assert_ledger_matches(tee.pk)


def test_a_count_in_a_warehouse_that_never_held_the_variant_opens_its_row():
    selectors.default_warehouse()
    tee = make_product(sku="tee", stock=2).variant
    south = make_warehouse("south")

    services.set_stock_level(variant_id=tee.pk, target=3, warehouse=south)

    assert Stock.objects.get(variant=tee, warehouse=south).quantity == 3
    assert stock_of(tee.pk) == 5
    assert_ledger_matches(tee.pk)


# --- GET /api/products/{sku}/stock/movements --------------------------------------------------


@pytest.fixture
def two_sizes() -> Any:
    """A product in sizes M (3 units) and L (2), L also restocked in `north`."""
    product = catalog_services.create_product(
        name="Hoodie",
        variants=[
            catalog_services.VariantSpec(sku="hood-m", price=Decimal("30"), initial_stock=3),
            catalog_services.VariantSpec(sku="hood-l", price=Decimal("32"), initial_stock=2),
        ],
    )
    north = make_warehouse("north")
    put_stock(product.variants.get(sku="hood-l").pk, north, 5)
    return product


def test_the_ledger_of_a_variant_names_each_rows_warehouse(manager_client, two_sizes):
    response = manager_client.get(f"{PRODUCTS}/hood-l/stock/movements")

    assert response.status_code == 200, response.content
    rows = response.json()["results"]
    assert [(r["sku"], r["warehouse"], r["delta"], r["balance"]) for r in rows] == [
        ("hood-l", "north", 5, 5),
        ("hood-l", "main", 2, 2),
    ]


def test_the_ledger_of_a_product_id_covers_all_its_variants(manager_client, two_sizes):
    response = manager_client.get(f"{PRODUCTS}/{two_sizes.pk}/stock/movements")

    assert response.status_code == 200, response.content
    rows = response.json()["results"]
    assert sorted((r["sku"], r["warehouse"], r["delta"]) for r in rows) == [
        ("hood-l", "main", 2),
        ("hood-l", "north", 5),
        ("hood-m", "main", 3),
    ]


def test_a_stock_change_needs_a_variant_when_the_product_has_several(manager_client, two_sizes):
    before = catalog_snapshot()

    response = manager_client.post(
        f"{PRODUCTS}/{two_sizes.pk}/stock", {"delta": 1, "reason": "restock"}, format="json"
    )

    assert_problem(response, 400, "invalid_input")
    assert catalog_snapshot() == before


@pytest.mark.parametrize("lookup", ["nope", "99999999"])
def test_the_ledger_of_an_unknown_product_is_a_404(manager_client, lookup):
    response = manager_client.get(f"{PRODUCTS}/{lookup}/stock/movements")
    assert_problem(response, 404, "product_not_found", extra=("products",))


# --- /api/warehouses --------------------------------------------------------------------------


@pytest.fixture
def zones() -> dict[str, ShippingZone]:
    """`nordics` lists SE and NO, `dach` DE and AT, `none-yet` nothing."""
    return {
        "nordics": make_zone("nordics", ["SE", "NO"]),
        "dach": make_zone("dach", ["DE", "AT"]),
        "none-yet": make_zone("none-yet", []),
    }


def test_a_manager_creates_a_warehouse_that_serves_its_zones(manager_client, zones):
    tee = make_product(sku="tee", stock=1).variant

    response = manager_client.post(
        WAREHOUSES,
        {"name": "North", "slug": "north", "priority": 5, "zones": ["nordics"]},
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert response["Location"] == "/api/warehouses/north/"
    assert {k: v for k, v in body.items() if k != "id"} == {
        "name": "North",
        "slug": "north",
        "priority": 5,
        "is_active": True,
        "zones": ["nordics"],
        "countries": ["NO", "SE"],
    }
    north = Warehouse.objects.get(slug="north")
    assert list(north.shipping_zones.all()) == [zones["nordics"]]
    # It serves Sweden before `main` (priority 5 < 100), and never Germany.
    put_stock(tee.pk, north, 1)
    services.allocate(lines=[StockLine(tee.pk, 1)], reference="se", country="SE")
    services.allocate(lines=[StockLine(tee.pk, 1)], reference="de", country="DE")
    assert list(StockMovement.objects.filter(reference="se").values_list("warehouse__slug")) == [
        ("north",)
    ]
    assert list(StockMovement.objects.filter(reference="de").values_list("warehouse__slug")) == [
        ("main",)
    ]
    listed = manager_client.get(WAREHOUSES).json()
    assert [(w["slug"], w["zones"], w["countries"]) for w in listed] == [
        ("north", ["nordics"], ["NO", "SE"]),
        ("main", [], None),
    ]


def test_a_warehouse_serves_the_union_of_its_zones_countries(manager_client, zones):
    response = manager_client.post(
        WAREHOUSES,
        {"name": "Central", "slug": "central", "zones": ["nordics", "dach", "none-yet"]},
        format="json",
    )

    assert response.status_code == 201, response.content
    assert (response.json()["zones"], response.json()["countries"]) == (
        ["dach", "none-yet", "nordics"],
        ["AT", "DE", "NO", "SE"],
    )


def test_a_warehouse_linking_only_an_empty_zone_serves_no_country(manager_client, zones):
    response = manager_client.post(
        WAREHOUSES, {"name": "Shelf", "slug": "shelf", "zones": ["none-yet"]}, format="json"
    )

    # Not null: it has a zone, whose list of countries is still empty.
    assert (response.json()["zones"], response.json()["countries"]) == (["none-yet"], [])


@pytest.mark.parametrize("body", [{}, {"zones": []}], ids=["left out", "empty"])
def test_a_warehouse_without_zones_serves_every_destination(manager_client, body):
    response = manager_client.post(
        WAREHOUSES, {"name": "Hub", "slug": "hub", **body}, format="json"
    )

    assert response.status_code == 201, response.content
    assert (response.json()["priority"], response.json()["zones"]) == (100, [])
    assert response.json()["countries"] is None
    assert not Warehouse.objects.get(slug="hub").shipping_zones.exists()


def test_a_taken_slug_is_a_409_and_changes_nothing(manager_client, zones):
    make_warehouse("north")
    before = warehouse_snapshot()

    response = manager_client.post(
        WAREHOUSES, {"name": "Other", "slug": "north", "zones": ["dach"]}, format="json"
    )

    body = assert_problem(response, 409, "warehouse_slug_taken", extra=("slug",))
    assert body["slug"] == "north"
    assert warehouse_snapshot() == before


@pytest.mark.parametrize(
    ("change", "pointer"),
    [
        ({"zones": None}, "#/zones"),
        ({"zones": "nordics"}, "#/zones"),
        ({"zones": {"slug": "nordics"}}, "#/zones"),
        ({"zones": [5]}, "#/zones/0"),
        ({"zones": ["nordics", "no slug"]}, "#/zones/1"),
        ({"zones": [""]}, "#/zones/0"),
        ({"zones": ["x" * 121]}, "#/zones/0"),
        ({"zones": ["nordics", "nordics"]}, "#/zones"),
        ({"zones": [f"z{i}" for i in range(101)]}, "#/zones"),
        ({"countries": ["SE"]}, "#/countries"),
        ({"countries": None}, "#/countries"),
        ({"priority": -1}, "#/priority"),
        ({"priority": 2**31}, "#/priority"),
        ({"priority": 1.5}, "#/priority"),
        ({"is_active": "yes"}, "#/is_active"),
        ({"slug": "no slug"}, "#/slug"),
        ({"slug": ""}, "#/slug"),
        ({"name": ""}, "#/name"),
        ({"name": 5}, "#/name"),
    ],
)
def test_a_bad_warehouse_is_refused_and_changes_nothing(manager_client, zones, change, pointer):
    make_warehouse("north", countries=["SE"])
    before = warehouse_snapshot()

    created = manager_client.post(
        WAREHOUSES, {"name": "South", "slug": "south", **change}, format="json"
    )
    changed = manager_client.patch(f"{WAREHOUSES}/north", change, format="json")

    for response in (created, changed):
        body = assert_problem(response, 400, "validation_error")
        assert {error["pointer"] for error in body["errors"]} == {pointer}
    assert warehouse_snapshot() == before


def test_an_unknown_zone_is_a_400_naming_it_and_changes_nothing(manager_client, zones):
    make_warehouse("north", countries=["SE"])
    before = warehouse_snapshot()
    change = {"priority": 1, "zones": ["nordics", "moon", "atlantis"]}

    created = manager_client.post(
        WAREHOUSES, {"name": "South", "slug": "south", **change}, format="json"
    )
    changed = manager_client.patch(f"{WAREHOUSES}/north", change, format="json")

    for response in (created, changed):
        body = assert_problem(response, 400, "unknown_shipping_zone", extra=("zones",))
        assert body["zones"] == ["atlantis", "moon"]
        assert body["detail"] == "No shipping zone atlantis, moon."
    # Neither the new warehouse nor the priority, saved before the zones were looked up.
    assert warehouse_snapshot() == before


def test_a_manager_changes_zones_priority_and_activity(manager_client, zones):
    tee = make_product(sku="tee").variant
    north = make_warehouse("north", priority=5, countries=["SE"])
    put_stock(tee.pk, north, 3)

    rezoned = manager_client.patch(
        f"{WAREHOUSES}/north", {"zones": ["dach"], "priority": 7}, format="json"
    )
    services.allocate(lines=[StockLine(tee.pk, 1)], reference="de", country="DE")
    everywhere = manager_client.patch(f"{WAREHOUSES}/north", {"zones": []}, format="json")
    services.allocate(lines=[StockLine(tee.pk, 1)], reference="jp", country="JP")
    closed = manager_client.patch(f"{WAREHOUSES}/north", {"is_active": False}, format="json")

    assert rezoned.status_code == 200, rezoned.content
    assert (rezoned.json()["zones"], rezoned.json()["countries"], rezoned.json()["priority"]) == (
        ["dach"],
        ["AT", "DE"],
        7,
    )
    assert (everywhere.json()["zones"], everywhere.json()["countries"]) == ([], None)
    # A PATCH without `zones` leaves them as they are.
    assert (closed.json()["is_active"], closed.json()["zones"]) == (False, [])
    assert stock_of(tee.pk, north.pk) == 1
    with pytest.raises(OutOfStock):
        services.allocate(lines=[StockLine(tee.pk, 1)], reference="x")
    assert manager_client.get(f"{WAREHOUSES}/north").json()["is_active"] is False
    # Its old zone is unlinked, not deleted: zones belong to the shipping app.
    assert ShippingZone.objects.filter(slug="zone-north").exists()


def test_a_patch_without_zones_keeps_them(manager_client, zones):
    make_warehouse("north", countries=["SE"])

    response = manager_client.patch(f"{WAREHOUSES}/north", {"priority": 3}, format="json")

    assert (response.json()["zones"], response.json()["countries"]) == (["zone-north"], ["SE"])


def test_a_warehouse_follows_its_zones_countries(manager_client, zones):
    tee = make_product(sku="tee").variant
    north = make_warehouse("north", priority=5)
    manager_client.patch(f"{WAREHOUSES}/north", {"zones": ["nordics"]}, format="json")
    put_stock(tee.pk, north, 2)

    changed = manager_client.patch(
        "/api/shipping-zones/nordics", {"countries": ["se", "fi"]}, format="json"
    )
    services.allocate(lines=[StockLine(tee.pk, 1)], reference="fi", country="FI")

    assert changed.status_code == 200, changed.content
    assert manager_client.get(f"{WAREHOUSES}/north").json()["countries"] == ["FI", "SE"]
    assert list(StockMovement.objects.filter(reference="fi").values_list("warehouse__slug")) == [
        ("north",)
    ]


def test_a_warehouse_is_renamed_and_its_slug_can_change(manager_client):
    make_warehouse("north")

    response = manager_client.patch(
        f"{WAREHOUSES}/north", {"name": "Nord", "slug": "nord"}, format="json"
    )

    assert response.status_code == 200, response.content
    assert (response.json()["name"], response.json()["slug"]) == ("Nord", "nord")
    assert manager_client.get(f"{WAREHOUSES}/nord").status_code == 200
    assert_problem(
        manager_client.get(f"{WAREHOUSES}/north"), 404, "warehouse_not_found", extra=("warehouse",)
    )


def test_renaming_to_a_taken_slug_is_a_409_and_changes_nothing(manager_client):
    make_warehouse("north", countries=["SE"])
    make_warehouse("south")
    before = warehouse_snapshot()

    response = manager_client.patch(
        f"{WAREHOUSES}/north", {"slug": "south", "zones": []}, format="json"
    )

    assert_problem(response, 409, "warehouse_slug_taken", extra=("slug",))
    assert warehouse_snapshot() == before


def test_changing_an_unknown_warehouse_is_a_404(manager_client):
    before = warehouse_snapshot()

    response = manager_client.patch(f"{WAREHOUSES}/nowhere", {"priority": 1}, format="json")

    assert_problem(response, 404, "warehouse_not_found", extra=("warehouse",))
    assert warehouse_snapshot() == before


def test_warehouses_are_for_catalog_managers(customer_client, api_client):
    make_warehouse("north")
    before = warehouse_snapshot()
    body = {"name": "South", "slug": "south"}

    for client, status in ((customer_client, 403), (api_client, 401)):
        assert client.get(WAREHOUSES).status_code == status
        assert client.post(WAREHOUSES, body, format="json").status_code == status
        assert client.patch(f"{WAREHOUSES}/north", body, format="json").status_code == status
    assert warehouse_snapshot() == before
