"""Prices are exact to their currency's minor unit: 12.50 yen is refused wherever a price is
entered (API, admin, import, services), three-decimal currencies hold no price, and the API
shows yen without decimals ("1200")."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from django.test import Client

from apps.catalog import services
from apps.catalog.exceptions import InvalidPrice
from apps.catalog.models import Product, ProductVariant
from apps.users.models import User
from tests.catalog.asserts import assert_invalid, catalog_snapshot
from tests.catalog.factories import make_product
from tests.catalog.test_admin import catalog_state, new_row, page_data
from tests.catalog.test_import_products import csv_file, import_failing
from tests.users.factories import UserFactory

pytestmark = pytest.mark.django_db

PRODUCTS = "/api/products"
VARIANTS = "/api/variants"
NO_DECIMALS = "JPY amounts have no decimal places."


@pytest.fixture
def yen_store(settings) -> None:  # type: ignore[no-untyped-def]
    settings.STORE_CURRENCY = "JPY"


@pytest.fixture
def yen_product(yen_store: None) -> Product:
    return make_product(sku="YEN-1", price="1200", name="Teapot")


def price_error(response) -> str:  # type: ignore[no-untyped-def]
    (error,) = response.json()["errors"]
    return str(error["detail"])


# --- API ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"name": "Teapot", "sku": "POT-1", "price": "12.50"}, "#/price"),
        ({"name": "Teapot", "sku": "POT-1", "price": "0.5"}, "#/price"),
        (
            {"name": "Teapot", "variants": [{"sku": "POT-1", "price": "1200.01"}]},
            "#/variants/0/price",
        ),
    ],
)
def test_a_yen_price_with_decimals_is_refused_and_nothing_is_stored(
    manager_client, yen_store, body, pointer
):
    # given
    before = catalog_snapshot()

    # when
    response = manager_client.post(PRODUCTS, body, format="json")

    # then
    assert_invalid(response, pointer)
    assert price_error(response) == NO_DECIMALS
    assert catalog_snapshot() == before


def test_yen_prices_are_stored_whole_and_shown_without_decimals(
    manager_client, api_client, yen_store
):
    # when
    created = manager_client.post(
        PRODUCTS,
        {
            "name": "Teapot",
            "variants": [{"sku": "POT-S", "price": "1200"}, {"sku": "POT-L", "price": "1500.00"}],
        },
        format="json",
    )

    # then
    assert created.status_code == 201, created.content
    assert (created.json()["price"], created.json()["currency"]) == ("1200", "JPY")
    assert [v["price"] for v in created.json()["variants"]] == ["1200", "1500"]
    assert ProductVariant.objects.get(sku="POT-L").price == Decimal("1500.00")
    public = api_client.get(f"{PRODUCTS}/POT-S").json()
    assert (public["price"], [v["price"] for v in public["variants"]]) == ("1200", ["1200", "1500"])
    listed = api_client.get(PRODUCTS).json()["results"]
    assert [(row["sku"], row["price"], row["currency"]) for row in listed] == [
        ("POT-S", "1200", "JPY")
    ]
    assert manager_client.get(f"{VARIANTS}/POT-L").json()["price"] == "1500"


def test_two_place_currencies_keep_their_two_places(api_client):
    make_product(sku="EUR-1", price="20")

    assert api_client.get(f"{PRODUCTS}/EUR-1").json()["price"] == "20.00"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("patch", f"{VARIANTS}/YEN-1", {"price": "12.50"}),
        ("patch", f"{PRODUCTS}/YEN-1", {"price": "1199.99"}),
        ("put", f"{PRODUCTS}/YEN-1", {"name": "Pot", "description": "", "category": None,
                                      "is_active": True, "price": "0.10"}),
        ("post", f"{PRODUCTS}/YEN-1/variants", {"sku": "YEN-2", "price": "99.9"}),
    ],
)  # fmt: skip
def test_the_currency_of_the_product_decides_not_the_store_setting(
    manager_client, yen_product, settings, method, path, body
):
    # given: the store has moved to euros since the yen product was made
    settings.STORE_CURRENCY = "EUR"
    before = catalog_snapshot()

    # when
    response = getattr(manager_client, method)(path, body, format="json")

    # then
    assert_invalid(response, "#/price")
    assert price_error(response) == NO_DECIMALS
    assert catalog_snapshot() == before


def test_a_euro_variant_takes_cents_in_a_yen_store(manager_client, yen_store, settings):
    # given
    settings.STORE_CURRENCY = "EUR"
    make_product(sku="EUR-1", price="20.00")
    settings.STORE_CURRENCY = "JPY"

    # when
    response = manager_client.patch(f"{VARIANTS}/EUR-1", {"price": "12.50"}, format="json")

    # then
    assert response.status_code == 200, response.content
    assert (response.json()["price"], response.json()["currency"]) == ("12.50", "EUR")


@pytest.mark.parametrize("currency", ["BHD", "KWD"])
def test_a_three_decimal_currency_holds_no_price(manager_client, settings, currency):
    # given
    settings.STORE_CURRENCY = currency
    before = catalog_snapshot()

    # when
    response = manager_client.post(
        PRODUCTS, {"name": "Lamp", "sku": "LAMP-1", "price": "12.50"}, format="json"
    )

    # then
    assert_invalid(response, "#/price")
    assert (
        price_error(response) == f"{currency} has three decimal places, which prices cannot hold."
    )
    assert catalog_snapshot() == before


# --- Services: the guarantee under every caller --------------------------------------------------


def test_the_services_refuse_an_inexact_price_whoever_calls_them(yen_product):
    variant = ProductVariant.objects.get(sku="YEN-1")
    before = catalog_snapshot()

    with pytest.raises(InvalidPrice) as created:
        services.create_product(
            name="Cup", variants=[services.VariantSpec(sku="CUP-1", price=Decimal("12.50"))]
        )
    with pytest.raises(InvalidPrice) as added:
        services.add_variant(
            product=yen_product, spec=services.VariantSpec(sku="YEN-2", price=Decimal("0.5"))
        )
    with pytest.raises(InvalidPrice):
        services.update_variant(variant=variant, price=Decimal("1200.5"))
    with pytest.raises(InvalidPrice):
        services.update_product(product=yen_product, price=Decimal("1200.5"))

    assert (created.value.code, created.value.detail) == ("invalid_price", NO_DECIMALS)
    assert added.value.extra == {"price": "0.5", "currency": "JPY"}
    assert catalog_snapshot() == before


# --- Admin -------------------------------------------------------------------------------------


@pytest.fixture
def admin(client: Client) -> Client:
    boss: User = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(boss)
    return client


@pytest.mark.parametrize(
    ("row", "errors"),
    [
        ({"price": "12.50"}, {"price": [NO_DECIMALS]}),
        ({"price": "1200"}, {}),
    ],
)
def test_the_admin_refuses_a_yen_price_with_decimals_beside_the_field(
    admin, yen_product, row, errors
):
    # given
    page = f"/admin/catalog/product/{yen_product.pk}/change/"
    data = new_row(page_data(admin.get(page)), "variants", sku="YEN-2", is_active=True, **row)
    before = catalog_state()

    # when
    response = admin.post(page, data)

    # then
    if errors:
        assert response.status_code == 200
        (variants, _media) = response.context["inline_admin_formsets"]
        assert variants.formset.errors[1] == errors
        assert catalog_state() == before
    else:
        assert response.status_code == 302
        assert ProductVariant.objects.get(sku="YEN-2").price == Decimal("1200")


def test_the_admin_refuses_changing_a_yen_price_to_one_with_decimals(admin, yen_product):
    # given
    page = f"/admin/catalog/product/{yen_product.pk}/change/"
    data = page_data(admin.get(page))
    data["variants-0-price"] = "1199.50"
    before = catalog_state()

    # when
    response = admin.post(page, data)

    # then
    assert response.status_code == 200
    (variants, _media) = response.context["inline_admin_formsets"]
    assert variants.formset.errors[0] == {"price": [NO_DECIMALS]}
    assert catalog_state() == before


# --- Import ------------------------------------------------------------------------------------


def test_the_import_reports_a_yen_price_with_decimals_as_a_row_error(
    tmp_path: Path, yen_product, settings
):
    # given: a yen product, and a store since moved to euros
    settings.STORE_CURRENCY = "EUR"
    lines = [
        "product,sku,name,price",
        ",YEN-1,,1199.50",  # 2: the yen variant's own currency decides
        "p,YEN-1,,",  # 3: binds group p to the yen product
        "p,YEN-3,,99.99",  # 4: a new variant of the yen product
        ",EUR-1,Mug,12.50",  # 5: a new product in the store's euros
        ",YEN-4,Cup,1200",  # 6
    ]

    # when
    _error, output, errors = import_failing(csv_file(tmp_path, "\n".join(lines) + "\n"))

    # then
    assert errors.splitlines() == [f"line 2: price: {NO_DECIMALS}", f"line 4: price: {NO_DECIMALS}"]
    assert output == "2 created, 0 updated, 1 unchanged, 2 failed\n"
    assert ProductVariant.objects.get(sku="YEN-1").price == Decimal("1200")
    assert ProductVariant.objects.get(sku="EUR-1").currency == "EUR"


def test_the_import_refuses_prices_in_a_three_decimal_store(tmp_path: Path, settings):
    settings.STORE_CURRENCY = "KWD"

    _error, _output, errors = import_failing(csv_file(tmp_path, "sku,name,price\nLAMP,Lamp,3\n"))

    assert errors == "line 2: price: KWD has three decimal places, which prices cannot hold.\n"
    assert not ProductVariant.objects.exists()
