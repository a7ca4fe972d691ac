"""The products API: public reads with filters and pages, staff writes of one-variant
products through the single-SKU body (variants have their own module), and the ledger
rows a product's creation writes."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from rest_framework import serializers

from apps.catalog.models import Category, Product, ProductVariant
from apps.inventory.models import StockMovement
from ecommerce.api.permissions import Role
from tests.catalog.asserts import (
    assert_invalid,
    assert_problem,
    catalog_snapshot,
    ledger_rows,
)
from tests.catalog.factories import CategoryFactory, make_product
from tests.catalog.helpers import stock_of
from tests.users.factories import UserFactory

PRODUCTS = "/api/products"


def skus(response: Any) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["sku"] for row in response.json()["results"]]


def timestamp(value: Any) -> str:
    return serializers.DateTimeField().to_representation(value)


def product_of(sku: str) -> Product:
    """The product selling `sku` (any letter case)."""
    return ProductVariant.objects.select_related("product").get(sku__iexact=sku).product


def variant_of(variant: ProductVariant) -> dict[str, Any]:
    """A variant as the detail shows it, built from the database."""
    attributes = [
        {
            "attribute": row.attribute.slug,
            "name": row.attribute.name,
            "value": row.value.name,
            "slug": row.value.slug,
        }
        for row in variant.attribute_assignments.select_related("attribute", "value").order_by(
            "attribute__name"
        )
    ]
    stock = stock_of(variant.pk)
    return {
        "id": variant.pk,
        "sku": variant.sku,
        "name": variant.name,
        "price": f"{variant.price:.2f}",
        "currency": variant.currency,
        "attributes": attributes,
        "stock": stock,
        "in_stock": stock > 0,
        "is_active": variant.is_active,
    }


def detail_of(product: Product, *, staff: bool = False) -> dict[str, Any]:
    """The detail body the API must answer for `product`, built from the database rows.

    The public sees the active variants only; catalog staff see every one.
    """
    product = Product.objects.select_related("category", "product_type").get(pk=product.pk)
    category, product_type = product.category, product.product_type
    variants = ProductVariant.objects.filter(product=product).order_by("sort_order", "pk")
    shown = [variant_of(v) for v in (variants if staff else variants.filter(is_active=True))]
    stock = sum(variant["stock"] for variant in shown)
    return {
        "id": product.pk,
        "sku": shown[0]["sku"] if shown else None,
        "name": product.name,
        "description": product.description,
        "price": f"{product.price:.2f}",
        "currency": product.currency,
        "category": None
        if category is None
        else {"id": category.pk, "slug": category.slug, "name": category.name},
        "product_type": None
        if product_type is None
        else {"slug": product_type.slug, "name": product_type.name},
        "attributes": [
            {
                "attribute": row.attribute.slug,
                "name": row.attribute.name,
                "value": row.value.name,
                "slug": row.value.slug,
            }
            for row in product.attribute_assignments.select_related("attribute", "value").order_by(
                "attribute__name"
            )
        ],
        "variants": shown,
        "media": [],
        "stock": stock,
        "in_stock": stock > 0,
        "is_active": product.is_active,
        "created_at": timestamp(product.created_at),
        "updated_at": timestamp(product.updated_at),
    }


@pytest.fixture
def categories() -> dict[str, Category]:
    return {
        "mugs": CategoryFactory(name="Mugs", slug="mugs"),
        "teas": CategoryFactory(name="Teas", slug="teas"),
    }


@pytest.fixture
def shelf(categories: dict[str, Category]) -> dict[str, Product]:
    """Four products for sale (created in this order: tea, mug, pot, cup) and one retired."""
    tea = make_product(
        sku="tea-3", name="Green Tea", price="19.99", stock=12, category=categories["teas"]
    )
    mug = make_product(
        sku="MUG-1", name="Blue Mug", price="9.50", stock=3, category=categories["mugs"]
    )
    pot = make_product(sku="pot-4", name="Teapot", price="35.00", stock=1)
    cup = make_product(
        sku="cup-2", name="Espresso Cup", price="4.00", stock=0, category=categories["mugs"]
    )
    old = make_product(
        sku="old-5",
        name="Chipped Mug",
        price="1.00",
        stock=7,
        category=categories["mugs"],
        is_active=False,
    )
    return {"tea": tea, "mug": mug, "pot": pot, "cup": cup, "old": old}


# --- GET /api/products: pages ---------------------------------------------------------------


@pytest.mark.django_db
def test_list_rows_are_lean_with_money_as_a_string_and_its_currency(api_client, shelf):
    # when
    response = api_client.get(PRODUCTS)

    # then
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    page = response.json()
    assert (page["count"], page["next"], page["previous"]) == (4, None, None)
    assert page["results"][0] == {
        "id": shelf["mug"].pk,
        "sku": "MUG-1",
        "name": "Blue Mug",
        "price": "9.50",
        "currency": "EUR",
        "category": {"id": shelf["mug"].category_id, "slug": "mugs", "name": "Mugs"},
        "stock": 3,
        "in_stock": True,
        "thumbnail": None,
    }
    assert [row["sku"] for row in page["results"]] == ["MUG-1", "cup-2", "tea-3", "pot-4"]


@pytest.mark.django_db
def test_list_pages_carry_the_count_and_relative_links(api_client):
    # given: 25 products, the default page holds 20
    for n in range(1, 26):
        make_product(sku=f"item-{n:02d}", name=f"Item {n:02d}")

    # when
    first = api_client.get(PRODUCTS)
    second = api_client.get(f"{PRODUCTS}?page=2")

    # then
    assert (first.json()["count"], first.json()["next"], first.json()["previous"]) == (
        25,
        "/api/products?page=2",
        None,
    )
    assert skus(first) == [f"item-{n:02d}" for n in range(1, 21)]
    assert (second.json()["count"], second.json()["next"], second.json()["previous"]) == (
        25,
        None,
        "/api/products",
    )
    assert skus(second) == [f"item-{n:02d}" for n in range(21, 26)]


@pytest.mark.django_db
def test_page_links_keep_the_page_size_and_the_filters(api_client):
    # given
    for n in range(1, 8):
        make_product(sku=f"item-{n}", name=f"Item {n}")
    make_product(sku="other", name="Other")

    # when
    response = api_client.get(f"{PRODUCTS}?search=item&page_size=3&page=2")

    # then
    page = response.json()
    assert page["count"] == 7
    assert page["next"] == "/api/products?page=3&page_size=3&search=item"
    assert page["previous"] == "/api/products?page_size=3&search=item"
    assert skus(response) == ["item-4", "item-5", "item-6"]


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["page=2", "page=99999999999999999999", "page=2&page_size=4"])
def test_a_page_out_of_range_is_a_404_problem(api_client, shelf, query):
    # when
    response = api_client.get(f"{PRODUCTS}?{query}")

    # then
    body = assert_problem(response, 404, "not_found")
    assert body["detail"] == "Invalid page."


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "pointer", "detail"),
    [
        ("page=0", "#/page", "Ensure this value is greater than or equal to 1."),
        ("page=abc", "#/page", "A whole number is required."),
        ("page=last", "#/page", "A whole number is required."),
        ("page=%C2%B2", "#/page", "A whole number is required."),
        ("page_size=0", "#/page_size", "Ensure this value is greater than or equal to 1."),
        ("page_size=101", "#/page_size", "Ensure this value is less than or equal to 100."),
        ("page_size=ten", "#/page_size", "A whole number is required."),
    ],
)
def test_a_malformed_page_or_page_size_is_a_400_not_a_silent_default(
    api_client, shelf, query, pointer, detail
):
    # when
    response = api_client.get(f"{PRODUCTS}?{query}")

    # then
    body = assert_problem(response, 400, "validation_error")
    assert body["errors"] == [{"pointer": pointer, "detail": detail, "code": "invalid"}]


# --- GET /api/products: filters, search, ordering ---------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("category=mugs", ["MUG-1", "cup-2"]),
        ("category=teas", ["tea-3"]),
        ("category=nothing-here", []),
        ("min_price=9.50", ["MUG-1", "tea-3", "pot-4"]),
        ("max_price=19.99", ["MUG-1", "cup-2", "tea-3"]),
        ("min_price=9.50&max_price=19.99", ["MUG-1", "tea-3"]),
        ("min_price=9.51&max_price=19.98", []),
        ("in_stock=true", ["MUG-1", "tea-3", "pot-4"]),
        ("in_stock=True", ["MUG-1", "tea-3", "pot-4"]),
        ("in_stock=1", ["MUG-1", "tea-3", "pot-4"]),
        ("in_stock=false", ["cup-2"]),
        ("in_stock=0", ["cup-2"]),
        ("search=mug", ["MUG-1"]),
        ("search=TEA", ["tea-3", "pot-4"]),
        ("search=cup-2", ["cup-2"]),
        ("search=POT-4", ["pot-4"]),
        ("search=mug-1", ["MUG-1"]),
        ("search=nothing", []),
        ("category=mugs&in_stock=true", ["MUG-1"]),
        ("search=tea&max_price=20&ordering=-price", ["tea-3"]),
    ],
)
def test_list_filters_and_search_show_active_products_only(api_client, shelf, query, expected):
    # when
    response = api_client.get(f"{PRODUCTS}?{query}")

    # then
    assert skus(response) == expected
    assert response.json()["count"] == len(expected)


@pytest.mark.django_db
def test_category_filter_takes_the_numeric_id_too(api_client, shelf, categories):
    # when
    response = api_client.get(f"{PRODUCTS}?category={categories['mugs'].pk}")

    # then
    assert skus(response) == ["MUG-1", "cup-2"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("ordering", "expected"),
    [
        ("price", ["cup-2", "MUG-1", "tea-3", "pot-4"]),
        ("-price", ["pot-4", "tea-3", "MUG-1", "cup-2"]),
        ("name", ["MUG-1", "cup-2", "tea-3", "pot-4"]),
        ("-name", ["pot-4", "tea-3", "cup-2", "MUG-1"]),
        ("newest", ["cup-2", "pot-4", "MUG-1", "tea-3"]),
        ("oldest", ["tea-3", "MUG-1", "pot-4", "cup-2"]),
    ],
)
def test_list_orders_by_price_name_and_age(api_client, shelf, ordering, expected):
    # when
    response = api_client.get(f"{PRODUCTS}?ordering={ordering}")

    # then
    assert skus(response) == expected


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "pointer", "detail"),
    [
        ("min_price=abc", "#/min_price", "Enter a number."),
        ("max_price=ten", "#/max_price", "Enter a number."),
        ("in_stock=maybe", "#/in_stock", "Use true or false."),
        ("in_stock=yes", "#/in_stock", "Use true or false."),
    ],
)
def test_a_bad_filter_value_is_a_400_problem_pointing_at_it(
    api_client, shelf, query, pointer, detail
):
    # when
    response = api_client.get(f"{PRODUCTS}?{query}")

    # then
    errors = assert_invalid(response, pointer)
    assert errors[0]["detail"] == detail


@pytest.mark.django_db
def test_a_catalog_manager_lists_inactive_products_too(manager_client, shelf):
    # when
    response = manager_client.get(f"{PRODUCTS}?category=mugs")

    # then
    assert skus(response) == ["MUG-1", "old-5", "cup-2"]


# --- GET /api/products/{sku} ----------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["tea-3", "tea-3/", "TEA-3", "{id}", "{id}/"])
def test_detail_answers_by_sku_in_any_case_or_by_id_with_or_without_slash(api_client, shelf, path):
    # given
    tea = shelf["tea"]

    # when
    response = api_client.get(f"{PRODUCTS}/{path.format(id=tea.pk)}")

    # then
    assert response.status_code == 200
    assert response.json() == {
        **detail_of(tea),
        "sku": "tea-3",
        "name": "Green Tea",
        "price": "19.99",
        "currency": "EUR",
        "stock": 12,
        "in_stock": True,
        "is_active": True,
    }


@pytest.mark.django_db
def test_detail_price_is_a_two_place_string_in_the_store_currency(api_client, settings):
    # given
    settings.STORE_CURRENCY = "USD"
    make_product(sku="lamp", price=Decimal("20"))

    # when
    response = api_client.get(f"{PRODUCTS}/lamp")

    # then
    assert (response.json()["price"], response.json()["currency"]) == ("20.00", "USD")


@pytest.mark.django_db
@pytest.mark.parametrize("lookup", ["nope", "nope/", "999999999"])
def test_an_unknown_product_is_a_404_problem(api_client, shelf, lookup):
    # when
    response = api_client.get(f"{PRODUCTS}/{lookup}")

    # then
    body = assert_problem(response, 404, "product_not_found", extra=("products",))
    assert body["products"] == [lookup.rstrip("/")]


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["anonymous", "customer", "support"])
def test_an_inactive_product_is_hidden_from_the_public(client_of, shelf, kind):
    # when
    by_sku = client_of(kind).get(f"{PRODUCTS}/old-5")
    by_id = client_of(kind).get(f"{PRODUCTS}/{shelf['old'].pk}")

    # then
    assert_problem(by_sku, 404, "product_not_found", extra=("products",))
    assert_problem(by_id, 404, "product_not_found", extra=("products",))


@pytest.mark.django_db
@pytest.mark.parametrize("role", [Role.CATALOG_MANAGER, Role.ADMIN])
def test_an_inactive_product_is_visible_to_catalog_staff(client_for, shelf, role):
    # when
    response = client_for(UserFactory(roles=[role])).get(f"{PRODUCTS}/old-5")

    # then
    assert response.status_code == 200
    assert response.json() == detail_of(shelf["old"], staff=True)
    assert response.json()["is_active"] is False


# --- Who may write ----------------------------------------------------------------------------

FULL_BODY = {
    "name": "Blue Mug XL",
    "description": "Bigger",
    "price": "11.00",
    "category": None,
    "is_active": True,
}
WRITES = [
    ("post", PRODUCTS, {"sku": "new-1", "name": "New", "price": "5.00", "stock": 3}),
    ("patch", f"{PRODUCTS}/MUG-1", {"price": "1.00"}),
    ("put", f"{PRODUCTS}/MUG-1", FULL_BODY),
    ("delete", f"{PRODUCTS}/MUG-1", None),
    ("post", f"{PRODUCTS}/MUG-1/variants", {"sku": "MUG-1-XL", "price": "12.00"}),
    ("patch", "/api/variants/MUG-1", {"price": "1.00"}),
    ("get", "/api/variants/MUG-1", None),
]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("anonymous", 401, "not_authenticated"),
        ("customer", 403, "permission_denied"),
        ("support", 403, "permission_denied"),
    ],
)
@pytest.mark.parametrize(("method", "path", "body"), WRITES)
def test_only_catalog_staff_write_products_or_read_variants_alone(
    client_of, shelf, kind, status, code, method, path, body
):
    # given
    client = client_of(kind)
    before = catalog_snapshot()

    # when
    response = getattr(client, method)(path, body, format="json")

    # then
    assert_problem(response, status, code)
    assert catalog_snapshot() == before


# --- POST /api/products ---------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("role", [Role.CATALOG_MANAGER, Role.ADMIN])
def test_catalog_staff_create_a_product_whose_initial_stock_is_one_restock(
    client_for, categories, role
):
    # given
    staff = UserFactory(roles=[role])

    # when
    response = client_for(staff).post(
        PRODUCTS,
        {
            "sku": "Kettle-9",
            "name": "Kettle",
            "description": "Steel, 1.7 l",
            "price": "24.90",
            "category": "teas",
            "stock": 6,
        },
        format="json",
    )

    # then
    assert response.status_code == 201, response.content
    product = product_of("Kettle-9")
    [variant] = ProductVariant.objects.filter(product=product)
    assert response["Location"] == "/api/products/Kettle-9/"
    assert response.json() == detail_of(product, staff=True)
    assert (
        product.name,
        product.description,
        product.price,
        product.currency,
        product.category,
        product.product_type,
        product.is_active,
    ) == ("Kettle", "Steel, 1.7 l", Decimal("24.90"), "EUR", categories["teas"], None, True)
    assert (variant.sku, variant.name, variant.price, variant.currency, variant.is_active) == (
        "Kettle-9",
        "",
        Decimal("24.90"),
        "EUR",
        True,
    )
    assert stock_of(variant.pk) == 6
    assert ledger_rows(variant) == [(6, 6, "restock", "initial stock")]
    assert StockMovement.objects.get(variant=variant).actor == staff


@pytest.mark.django_db
def test_a_product_created_without_stock_has_an_empty_ledger(manager_client, categories):
    # when
    response = manager_client.post(
        PRODUCTS,
        {"sku": "filter-7", "name": "Filter", "price": "3", "category": categories["mugs"].pk},
        format="json",
    )

    # then
    assert response.status_code == 201, response.content
    product = product_of("filter-7")
    assert (stock_of(product.variants.get().pk), product.price, product.category) == (
        0,
        Decimal("3.00"),
        categories["mugs"],
    )
    assert product.description == ""
    assert response.json()["price"] == "3.00"
    assert response.json()["in_stock"] is False
    assert ledger_rows(product) == []


VALID_CREATE = {"sku": "kettle-9", "name": "Kettle", "price": "24.90", "category": "teas"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "pointer", "detail"),
    [
        ({"price": "0"}, "#/price", "Ensure this value is greater than or equal to 0.01."),
        ({"price": "0.00"}, "#/price", "Ensure this value is greater than or equal to 0.01."),
        ({"price": "-1.00"}, "#/price", "Ensure this value is greater than or equal to 0.01."),
        ({"price": -5}, "#/price", "Ensure this value is greater than or equal to 0.01."),
        ({"price": "1.999"}, "#/price", "Ensure that there are no more than 2 decimal places."),
        ({"price": "abc"}, "#/price", "A valid number is required."),
        ({"price": None}, "#/price", "This field may not be null."),
        ({"category": "nope"}, "#/category", "Unknown category: nope."),
        ({"category": 999999999}, "#/category", "Unknown category: 999999999."),
        ({"sku": "bad sku"}, "#/sku", "This value does not match the required pattern."),
        ({"sku": "mug/1"}, "#/sku", "This value does not match the required pattern."),
        ({"sku": "-lead"}, "#/sku", "This value does not match the required pattern."),
        ({"sku": "12345"}, "#/sku", "This value does not match the required pattern."),
        ({"sku": ""}, "#/sku", "This field may not be blank."),
        ({"name": ""}, "#/name", "This field may not be blank."),
        ({"stock": -1}, "#/stock", "Ensure this value is greater than or equal to 0."),
        ({"stock": "many"}, "#/stock", "A valid integer is required."),
    ],
)
def test_a_bad_product_is_refused_with_a_pointer_and_nothing_is_created(
    manager_client, shelf, change, pointer, detail
):
    # given
    before = catalog_snapshot()

    # when
    response = manager_client.post(PRODUCTS, {**VALID_CREATE, **change}, format="json")

    # then
    errors = assert_invalid(response, pointer)
    assert errors[0]["detail"] == detail
    assert catalog_snapshot() == before


@pytest.mark.django_db
@pytest.mark.parametrize("sku", ["tea-3", "TEA-3", "Tea-3", "old-5"])
def test_a_taken_sku_in_any_letter_case_is_a_409(manager_client, shelf, sku):
    # given
    before = catalog_snapshot()

    # when
    response = manager_client.post(PRODUCTS, {**VALID_CREATE, "sku": sku}, format="json")

    # then
    body = assert_problem(response, 409, "sku_taken", extra=("sku",))
    assert body["sku"] == sku
    assert catalog_snapshot() == before


# --- PATCH and PUT /api/products/{sku} -------------------------------------------------------


@pytest.mark.django_db
def test_patch_changes_the_given_fields_but_never_sku_or_stock(manager_client, shelf):
    # given
    mug = shelf["mug"]
    ledger_before = ledger_rows(mug)

    # when
    response = manager_client.patch(
        f"{PRODUCTS}/MUG-1",
        {"name": "Big Blue Mug", "price": "12.25", "sku": "stolen", "stock": 99},
        format="json",
    )

    # then
    assert response.status_code == 200, response.content
    mug.refresh_from_db()
    [variant] = ProductVariant.objects.filter(product=mug)
    assert (variant.sku, mug.name, mug.price, variant.price, mug.category.slug) == (
        "MUG-1",
        "Big Blue Mug",
        Decimal("12.25"),
        Decimal("12.25"),
        "mugs",
    )
    assert stock_of(variant.pk) == 3
    assert response.json() == detail_of(mug, staff=True)
    assert ledger_rows(mug) == ledger_before
    assert not ProductVariant.objects.filter(sku__iexact="stolen").exists()


@pytest.mark.django_db
def test_put_replaces_every_descriptive_field_but_never_sku_or_stock(manager_client, shelf):
    # given
    mug = shelf["mug"]

    # when
    response = manager_client.put(
        f"{PRODUCTS}/mug-1/", {**FULL_BODY, "sku": "stolen", "stock": 0}, format="json"
    )

    # then
    assert response.status_code == 200, response.content
    mug.refresh_from_db()
    [variant] = ProductVariant.objects.filter(product=mug)
    assert (variant.sku, mug.name, mug.description, variant.price, mug.price, mug.category) == (
        "MUG-1",
        "Blue Mug XL",
        "Bigger",
        Decimal("11.00"),
        Decimal("11.00"),
        None,
    )
    assert stock_of(variant.pk) == 3
    assert response.json() == detail_of(mug, staff=True)


@pytest.mark.django_db
def test_put_without_every_field_is_refused(manager_client, shelf):
    # given
    before = catalog_snapshot()

    # when
    response = manager_client.put(f"{PRODUCTS}/MUG-1", {"name": "Only a name"}, format="json")

    # then
    body = assert_problem(response, 400, "validation_error")
    # price is optional even on PUT: a product with several variants has no one price
    assert [error["pointer"] for error in body["errors"]] == [
        "#/description",
        "#/category",
        "#/is_active",
    ]
    assert catalog_snapshot() == before


@pytest.mark.django_db
def test_a_manager_reactivates_an_inactive_product_by_its_id(manager_client, shelf):
    # given
    old = shelf["old"]

    # when
    response = manager_client.patch(f"{PRODUCTS}/{old.pk}", {"is_active": True}, format="json")

    # then
    assert response.status_code == 200, response.content
    old.refresh_from_db()
    assert old.is_active is True
    assert response.json()["is_active"] is True


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "pointer"),
    [
        ({"price": "0"}, "#/price"),
        ({"price": "-3.00"}, "#/price"),
        ({"price": "1.999"}, "#/price"),
        ({"price": "cheap"}, "#/price"),
        ({"category": "nope"}, "#/category"),
        ({"name": ""}, "#/name"),
        ({"is_active": "perhaps"}, "#/is_active"),
    ],
)
def test_a_bad_update_is_refused_and_changes_nothing(manager_client, shelf, change, pointer):
    # given
    before = catalog_snapshot()

    # when
    response = manager_client.patch(f"{PRODUCTS}/MUG-1", change, format="json")

    # then
    assert_invalid(response, pointer)
    assert catalog_snapshot() == before


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["patch", "put", "delete"])
def test_writing_an_unknown_product_is_a_404(manager_client, shelf, method):
    # given
    before = catalog_snapshot()

    # when
    response = getattr(manager_client, method)(f"{PRODUCTS}/nope", FULL_BODY, format="json")

    # then
    assert_problem(response, 404, "product_not_found", extra=("products",))
    assert catalog_snapshot() == before


# --- DELETE /api/products/{sku} ----------------------------------------------------------------


@pytest.mark.django_db
def test_delete_deactivates_and_never_removes_the_product(manager_client, api_client, shelf):
    # given
    mug = shelf["mug"]
    ledger_before = ledger_rows(mug)

    # when
    response = manager_client.delete(f"{PRODUCTS}/MUG-1")
    again = manager_client.delete(f"{PRODUCTS}/mug-1/")

    # then
    assert (response.status_code, response.content) == (204, b"")
    assert again.status_code == 204
    mug.refresh_from_db()
    assert (mug.is_active, stock_of(mug.variant.pk), mug.price) == (False, 3, Decimal("9.50"))
    assert ledger_rows(mug) == ledger_before
    assert_problem(
        api_client.get(f"{PRODUCTS}/MUG-1"), 404, "product_not_found", extra=("products",)
    )
    assert manager_client.get(f"{PRODUCTS}/MUG-1").json()["is_active"] is False
