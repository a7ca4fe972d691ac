"""Inventory admin: the product page's stock per warehouse and its restock/adjust form
(through apps.inventory.services, refusals as form errors), the read-only stock list and
ledger with their filters, warehouses and shipping zones, and what each role may do."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.messages import get_messages
from django.test import Client

from apps.catalog import services as catalog_services
from apps.catalog.models import Product, ProductVariant
from apps.inventory import services
from apps.inventory.models import Stock, StockMovement, Warehouse
from apps.inventory.selectors import default_warehouse
from apps.shipping.models import ShippingZone
from apps.users.models import User
from ecommerce.api.permissions import Role
from tests.catalog.factories import make_product
from tests.catalog.helpers import assert_ledger_matches, stock_of
from tests.inventory.factories import make_warehouse, put_stock
from tests.roles import restore_role_groups
from tests.users.factories import UserFactory

pytestmark = pytest.mark.django_db

LEDGER = "/admin/inventory/stockmovement/"
STOCK = "/admin/inventory/stock/"
WAREHOUSES = "/admin/inventory/warehouse/"
ZONES = "/admin/shipping/shippingzone/"


def messages_of(response: Any) -> list[str]:
    return [message.message for message in get_messages(response.wsgi_request)]


def ledger() -> list[tuple[Any, ...]]:
    return list(
        StockMovement.objects.order_by("pk").values_list(
            "variant__sku", "warehouse__slug", "delta", "balance", "reason", "note", "actor_id"
        )
    )


def stock_form(product: Product) -> str:
    return f"/admin/catalog/product/{product.pk}/stock/"


@pytest.fixture(autouse=True)
def _roles_as_migrated() -> None:
    restore_role_groups()


@pytest.fixture
def manager_user() -> User:
    return UserFactory(email="cat@example.com", is_staff=True, roles=[Role.CATALOG_MANAGER])


@pytest.fixture
def manager(client: Client, manager_user: User) -> Client:
    client.force_login(manager_user)
    return client


@pytest.fixture
def support(client: Client) -> Client:
    client.force_login(UserFactory(is_staff=True, roles=[Role.SUPPORT]))
    return client


@pytest.fixture
def main() -> Warehouse:
    return default_warehouse()


@pytest.fixture
def east(main: Warehouse) -> Warehouse:
    return make_warehouse("east", priority=200, countries=["PL"])


@pytest.fixture
def tee(main: Warehouse, east: Warehouse) -> Product:
    """Two variants: S with 5 in main and 3 in east, M with 2 in main."""
    product = catalog_services.create_product(
        name="Tee",
        variants=[
            catalog_services.VariantSpec(sku="TEE-S", price=Decimal("19.00"), initial_stock=5),
            catalog_services.VariantSpec(sku="TEE-M", price=Decimal("19.00"), initial_stock=2),
        ],
    )
    put_stock(ProductVariant.objects.get(sku="TEE-S").pk, east, 3)
    return product


def variant(sku: str) -> ProductVariant:
    return ProductVariant.objects.get(sku=sku)


# --- The product page's stock table -----------------------------------------------------------


def test_product_page_shows_stock_per_variant_and_warehouse_and_links(manager, tee, main, east):
    # when
    response = manager.get(f"/admin/catalog/product/{tee.pk}/change/")

    # then
    assert response.status_code == 200
    html = response.content.decode()
    table = html[html.index('<div class="stock-table">') :]
    table = table[: table.index("</div>")]
    small, medium = variant("TEE-S"), variant("TEE-M")
    assert "<th>Warehouse east</th>" in table
    assert f'?variant={small.pk}&amp;warehouse={east.pk}">3</a>' in table
    assert f'?variant={small.pk}&amp;warehouse={main.pk}">5</a>' in table
    assert f'?variant={medium.pk}&amp;warehouse={east.pk}">-</a>' in table
    assert "<strong>8</strong>" in table
    assert "<strong>2</strong>" in table
    assert f"{LEDGER}?variant__id__exact={small.pk}" in table
    assert f"{LEDGER}?variant__product__id__exact={tee.pk}" in table
    # the ledger itself is not rendered on the page
    assert "initial stock" not in html


def test_the_stock_form_opens_on_the_chosen_variant_and_warehouse(manager, tee, east):
    # when
    response = manager.get(f"{stock_form(tee)}?variant={variant('TEE-S').pk}&warehouse={east.pk}")

    # then
    assert response.status_code == 200
    form = response.context["form"]
    assert (form["variant"].value(), form["warehouse"].value()) == (
        str(variant("TEE-S").pk),
        str(east.pk),
    )
    assert [v.sku for v in form.fields["variant"].queryset] == ["TEE-S", "TEE-M"]


# --- Restock and adjust ------------------------------------------------------------------------


def test_a_restock_goes_through_the_service_with_its_reason_and_actor(
    manager, manager_user, tee, east
):
    # when
    response = manager.post(
        stock_form(tee),
        {
            "variant": variant("TEE-M").pk,
            "warehouse": east.pk,
            "kind": "restock",
            "quantity": "7",
            "note": "PO-17",
        },
    )

    # then
    assert response.status_code == 302
    assert response["Location"] == f"/admin/catalog/product/{tee.pk}/change/"
    assert messages_of(response) == ["Restocked 7 of TEE-M in Warehouse east (PO-17): 7 on hand."]
    assert ledger()[-1] == ("TEE-M", "east", 7, 7, "restock", "PO-17", manager_user.pk)
    assert stock_of(variant("TEE-M").pk, east.pk) == 7
    assert LogEntry.objects.get(object_id=str(tee.pk)).get_change_message() == (
        "Restocked 7 of TEE-M in Warehouse east (PO-17): 7 on hand."
    )
    assert_ledger_matches()


@pytest.mark.parametrize(("delta", "balance"), [("-4", 1), ("+2", 7)])
def test_an_adjustment_moves_stock_down_or_up(manager, manager_user, tee, main, delta, balance):
    # when
    response = manager.post(
        stock_form(tee),
        {
            "variant": variant("TEE-S").pk,
            "warehouse": main.pk,
            "kind": "adjust",
            "quantity": delta,
            "note": "stock count",
        },
    )

    # then
    assert response.status_code == 302
    assert messages_of(response) == [
        f"Adjusted TEE-S in Main warehouse by {int(delta):+d} (stock count): {balance} on hand."
    ]
    assert ledger()[-1] == (
        "TEE-S",
        "main",
        int(delta),
        balance,
        "adjustment",
        "stock count",
        manager_user.pk,
    )
    assert stock_of(variant("TEE-S").pk, main.pk) == balance
    assert_ledger_matches()


def test_taking_more_than_a_warehouse_holds_is_a_form_error_that_says_why(manager, tee, east):
    # given
    before = ledger()

    # when: east holds 3 of TEE-S (main holds 5 more, which does not count)
    response = manager.post(
        stock_form(tee),
        {
            "variant": variant("TEE-S").pk,
            "warehouse": east.pk,
            "kind": "adjust",
            "quantity": "-4",
            "note": "broken",
        },
    )

    # then
    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == [
        "Nothing changed: Warehouse east holds 3 of TEE-S, so 4 cannot be removed."
    ]
    assert ledger() == before
    assert not LogEntry.objects.exists()


def test_stock_past_the_column_is_a_form_error(manager, tee, main):
    # given
    services.restock(variant_id=variant("TEE-M").pk, quantity=2_147_483_640, warehouse=main)
    before = ledger()

    # when
    response = manager.post(
        stock_form(tee),
        {
            "variant": variant("TEE-M").pk,
            "warehouse": main.pk,
            "kind": "restock",
            "quantity": "100",
            "note": "PO-1",
        },
    )

    # then
    assert response.status_code == 200
    (error,) = response.context["form"].non_field_errors()
    assert error.startswith("Nothing changed: Stock of TEE-M in main cannot exceed 2147483647")
    assert ledger() == before


@pytest.mark.parametrize(
    ("fields", "invalid"),
    [
        ({"quantity": "0"}, "quantity"),
        ({"quantity": "-5"}, "quantity"),  # a restock adds
        ({"quantity": "abc"}, "quantity"),
        ({"quantity": "1000001"}, "quantity"),
        ({"quantity": ""}, "quantity"),
        ({"note": ""}, "note"),
        ({"note": "x" * 256}, "note"),
        ({"kind": "steal"}, "kind"),
        ({"variant": "other"}, "variant"),  # a variant of another product
        ({"variant": "999999"}, "variant"),
        ({"warehouse": "inactive"}, "warehouse"),
        ({"warehouse": "zzz"}, "warehouse"),
    ],
)
def test_a_bad_stock_form_is_shown_again_and_changes_nothing(manager, tee, main, fields, invalid):
    # given
    other = make_product(sku="other-1", stock=1)
    closed = make_warehouse("closed", is_active=False)
    data = {
        "variant": variant("TEE-S").pk,
        "warehouse": main.pk,
        "kind": "restock",
        "quantity": "5",
        "note": "PO-1",
    } | fields
    data["variant"] = other.variant.pk if data["variant"] == "other" else data["variant"]
    data["warehouse"] = closed.pk if data["warehouse"] == "inactive" else data["warehouse"]
    before = ledger()

    # when
    response = manager.post(stock_form(tee), data)

    # then
    assert response.status_code == 200
    assert list(response.context["form"].errors) == [invalid]
    assert ledger() == before


def test_the_stock_form_of_an_unknown_product_is_a_404(manager):
    # when
    response = manager.get("/admin/catalog/product/999999/stock/")

    # then
    assert response.status_code == 404


def test_support_cannot_open_or_post_the_stock_form(support, tee, main):
    # given
    before = ledger()

    # when
    page = support.get(stock_form(tee))
    post = support.post(
        stock_form(tee),
        {
            "variant": variant("TEE-S").pk,
            "warehouse": main.pk,
            "kind": "restock",
            "quantity": "5",
            "note": "PO-1",
        },
    )
    product_page = support.get(f"/admin/catalog/product/{tee.pk}/change/")

    # then
    assert (page.status_code, post.status_code) == (403, 403)
    assert ledger() == before
    html = product_page.content.decode()
    assert "Stock per warehouse" in html
    assert "Restock or adjust" not in html
    assert stock_form(tee) not in html


# --- Stock list and ledger ---------------------------------------------------------------------


@pytest.mark.parametrize("who", ["manager", "support"])
def test_stock_list_and_ledger_are_read_only_for_every_role(request, who, tee):
    # given
    client = request.getfixturevalue(who)
    row = Stock.objects.filter(variant__sku="TEE-S").first()
    movement = StockMovement.objects.first()

    # when
    pages = {
        "stock": client.get(STOCK),
        "stock_row": client.get(f"{STOCK}{row.pk}/change/"),
        "ledger": client.get(LEDGER),
        "movement": client.get(f"{LEDGER}{movement.pk}/change/"),
    }
    refused = [
        client.get(f"{STOCK}add/").status_code,
        client.get(f"{LEDGER}add/").status_code,
        client.post(f"{LEDGER}{movement.pk}/change/", {"delta": "99"}).status_code,
        client.post(f"{LEDGER}{movement.pk}/delete/", {"post": "yes"}).status_code,
        client.post(f"{STOCK}{row.pk}/delete/", {"post": "yes"}).status_code,
    ]

    # then
    assert {name: page.status_code for name, page in pages.items()} == dict.fromkeys(pages, 200)
    assert pages["movement"].context["has_change_permission"] is False
    assert refused == [403, 403, 403, 403, 403]
    assert StockMovement.objects.get(pk=movement.pk).delta == movement.delta


def test_the_ledger_filters_by_product_variant_warehouse_reason_and_reference(manager, tee, east):
    # given
    services.adjust_stock(variant_id=variant("TEE-M").pk, delta=-1, note="lost")
    other = make_product(sku="other-1", stock=4)
    small, medium = variant("TEE-S"), variant("TEE-M")

    def listed(query: str) -> list[tuple[str, int]]:
        response = manager.get(f"{LEDGER}?{query}")
        assert response.status_code == 200, query
        return sorted((m.variant.sku, m.delta) for m in response.context["cl"].result_list)

    # then
    assert listed(f"variant__product__id__exact={tee.pk}") == [
        ("TEE-M", -1),
        ("TEE-M", 2),
        ("TEE-S", 3),
        ("TEE-S", 5),
    ]
    assert listed(f"variant__id__exact={small.pk}") == [("TEE-S", 3), ("TEE-S", 5)]
    assert listed(f"warehouse__id__exact={east.pk}") == [("TEE-S", 3)]
    assert listed("reason__exact=adjustment") == [("TEE-M", -1)]
    assert listed(f"variant__id__exact={medium.pk}&reason__exact=restock") == [("TEE-M", 2)]
    assert listed("q=other-1") == [("other-1", 4)]
    assert listed("reference=nothing") == []
    assert other.variant.pk


def test_the_ledger_refuses_filters_it_does_not_offer(manager, tee):
    # when: a lookup through the actor's password must never be allowed
    response = manager.get(f"{LEDGER}?actor__password__startswith=a")

    # then
    assert response.status_code == 400


# --- Warehouses and zones ------------------------------------------------------------------------


def test_a_manager_adds_a_warehouse_serving_a_zone(manager):
    # given
    zone = ShippingZone.objects.create(name="DACH", slug="dach", countries=["DE", "AT", "CH"])

    # when
    response = manager.post(
        f"{WAREHOUSES}add/",
        {
            "name": "Berlin",
            "slug": "berlin",
            "priority": "5",
            "is_active": "on",
            "shipping_zones": [zone.pk],
        },
    )
    listed = manager.get(WAREHOUSES)

    # then
    assert response.status_code == 302
    berlin = Warehouse.objects.get(slug="berlin")
    assert (berlin.priority, list(berlin.shipping_zones.all())) == (5, [zone])
    assert "DACH" in listed.content.decode()
    assert manager.get(f"{WAREHOUSES}{berlin.pk}/delete/").status_code == 403


@pytest.mark.parametrize(
    ("countries", "stored", "error"),
    [
        ("de, at ch", ["AT", "CH", "DE"], None),
        ("", [], None),
        ("DEU", None, "Not a two-letter country code: DEU."),
        ("DE, 12", None, "Not a two-letter country code: 12."),
        ("DE, de", None, "A country is listed twice."),
    ],
)
def test_a_shipping_zone_takes_countries_as_typed(manager, countries, stored, error):
    # when
    response = manager.post(
        f"{ZONES}add/", {"name": "Zone", "slug": "zone", "countries": countries}
    )

    # then
    if error is None:
        assert response.status_code == 302
        assert ShippingZone.objects.get(slug="zone").countries == stored
    else:
        assert response.status_code == 200
        assert response.context["adminform"].form.errors == {"countries": [error]}
        assert not ShippingZone.objects.exists()


def test_support_views_warehouses_and_zones_but_changes_nothing(support, east):
    # when
    pages = [support.get(WAREHOUSES), support.get(ZONES)]
    posts = [
        support.post(f"{WAREHOUSES}{east.pk}/change/", {"name": "X", "slug": "x", "priority": 1}),
        support.post(f"{ZONES}add/", {"name": "Z", "slug": "z", "countries": "DE"}),
    ]

    # then
    assert [page.status_code for page in pages] == [200, 200]
    assert [post.status_code for post in posts] == [403, 403]
    assert Warehouse.objects.get(pk=east.pk).name == "Warehouse east"


def test_a_manager_changes_a_warehouse_and_its_zones(manager, east):
    # given
    dach = ShippingZone.objects.create(name="DACH", slug="dach", countries=["DE", "AT"])

    # when
    response = manager.post(
        f"{WAREHOUSES}{east.pk}/change/",
        {
            "name": "East",
            "slug": "east-1",
            "priority": "7",
            "shipping_zones": [dach.pk],
        },
    )

    # then: renamed, re-slugged, deactivated, and serving DACH instead of its own zone
    assert response.status_code == 302
    east.refresh_from_db()
    assert (east.name, east.slug, east.priority, east.is_active) == ("East", "east-1", 7, False)
    assert list(east.shipping_zones.all()) == [dach]


def test_a_warehouse_slug_taken_is_a_form_error(manager, east, main):
    # when
    response = manager.post(
        f"{WAREHOUSES}{east.pk}/change/",
        {"name": "East", "slug": main.slug, "priority": "7", "is_active": "on"},
    )

    # then
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "slug": ["Warehouse with this Slug already exists."]
    }
    assert Warehouse.objects.get(pk=east.pk).slug == "east"


def test_a_zone_is_renamed_and_its_countries_replaced(manager):
    # given
    zone = ShippingZone.objects.create(name="Nordics", slug="nordics", countries=["SE"])

    # when
    response = manager.post(
        f"{ZONES}{zone.pk}/change/", {"name": "Nordic", "slug": "other", "countries": "no se dk"}
    )

    # then: the slug stays
    assert response.status_code == 302
    zone.refresh_from_db()
    assert (zone.name, zone.slug, zone.countries) == ("Nordic", "nordics", ["DK", "NO", "SE"])


@pytest.mark.parametrize(
    ("path", "status"),
    [
        (f"{LEDGER}?variant__id__exact=abc", 302),  # the admin's "invalid filter" redirect
        (f"{LEDGER}?variant__product__id__exact=-1", 200),
        ("/admin/catalog/product/abc/stock/", 404),
        ("/admin/catalog/product/{pk}/stock/?variant=abc&warehouse=%00", 200),
        ("/admin/catalog/product/add/?product_type=abc", 200),
        ("/admin/catalog/product/add/?product_type=999999", 200),
    ],
)
def test_odd_addresses_are_never_a_server_error(manager, tee, path, status):
    # when
    response = manager.get(path.format(pk=tee.pk))

    # then
    assert response.status_code == status
