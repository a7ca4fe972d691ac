"""Products with variants through the API: creating them with attribute values, adding
and changing variants, what the product type accepts, SKUs unique in any letter case,
and the product's price always its cheapest active variant's."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from rest_framework.test import APIClient

from apps.catalog.models import Product, ProductType, ProductVariant
from apps.inventory import services as inventory_services
from ecommerce.api.permissions import Role
from tests.catalog.asserts import assert_invalid, assert_problem, catalog_snapshot, ledger_rows
from tests.catalog.factories import make_product
from tests.catalog.helpers import assert_ledger_matches, stock_of
from tests.users.factories import UserFactory

PRODUCTS = "/api/products"
VARIANTS = "/api/variants"


def tee_body(**change: Any) -> dict[str, Any]:
    """A t-shirt in black M (19.90, 4 units) and white L (17.50, no stock)."""
    return {
        "name": "Organic tee",
        "description": "Soft.",
        "product_type": "t-shirt",
        "attributes": {"material": "Organic cotton", "width": 52.5, "organic": True},
        "variants": [
            {
                "sku": "TEE-BLK-M",
                "name": "M / Black",
                "price": "19.90",
                "attributes": {"colour": "black", "size": "m"},
                "stock": 4,
            },
            {
                "sku": "TEE-WHT-L",
                "name": "L / White",
                "price": "17.50",
                "attributes": {"colour": "White", "size": "L"},
            },
        ],
        **change,
    }


def values(rows: list[dict[str, str]]) -> dict[str, str]:
    return {row["attribute"]: row["slug"] for row in rows}


def price_of(product: Product) -> tuple[Decimal, str]:
    product.refresh_from_db()
    return product.price, product.currency


@pytest.fixture
def tee(manager_client: APIClient, tee_type: ProductType) -> Product:
    response = manager_client.post(PRODUCTS, tee_body(), format="json")
    assert response.status_code == 201, response.content
    return Product.objects.get(pk=response.json()["id"])


# --- POST /api/products with variants -----------------------------------------------------------


@pytest.mark.django_db
def test_a_product_is_created_with_its_variants_and_attribute_values(
    manager_client, tee_type, manager
):
    # when
    response = manager_client.post(PRODUCTS, tee_body(), format="json")

    # then
    assert response.status_code == 201, response.content
    body = response.json()
    assert response["Location"] == "/api/products/TEE-BLK-M/"
    assert (body["sku"], body["price"], body["currency"], body["stock"]) == (
        "TEE-BLK-M",
        "17.50",
        "EUR",
        4,
    )
    assert body["product_type"] == {"slug": "t-shirt", "name": "T-shirt"}
    assert body["attributes"] == [
        {
            "attribute": "material",
            "name": "Material",
            "value": "Organic cotton",
            "slug": "organic-cotton",
        },
        {"attribute": "organic", "name": "Organic", "value": "Yes", "slug": "true"},
        {"attribute": "width", "name": "Width", "value": "52.5 cm", "slug": "52-5"},
    ]
    assert [
        (v["sku"], v["name"], v["price"], v["stock"], v["in_stock"], values(v["attributes"]))
        for v in body["variants"]
    ] == [
        ("TEE-BLK-M", "M / Black", "19.90", 4, True, {"colour": "black", "size": "m"}),
        ("TEE-WHT-L", "L / White", "17.50", 0, False, {"colour": "white", "size": "l"}),
    ]
    black, white = ProductVariant.objects.filter(product_id=body["id"]).order_by("sort_order")
    assert ledger_rows(black) == [(4, 4, "restock", "initial stock")]
    assert ledger_rows(white) == []
    assert stock_of(black.pk) == 4
    assert_ledger_matches(black.pk, white.pk)


@pytest.mark.django_db
def test_the_public_detail_answers_by_any_variant_sku_and_by_id(api_client, tee):
    # when
    by_first = api_client.get(f"{PRODUCTS}/TEE-BLK-M")
    by_second = api_client.get(f"{PRODUCTS}/tee-wht-l")
    by_id = api_client.get(f"{PRODUCTS}/{tee.pk}")

    # then
    assert by_first.status_code == by_second.status_code == by_id.status_code == 200
    assert by_first.json() == by_second.json() == by_id.json()
    assert [v["sku"] for v in by_first.json()["variants"]] == ["TEE-BLK-M", "TEE-WHT-L"]


INVALID_ATTRIBUTES = [
    pytest.param({"attributes": {"fabric": "silk"}}, id="unknown-product-attribute"),
    pytest.param({"attributes": {"colour": "black"}}, id="variant-attribute-on-the-product"),
    pytest.param({"attributes": {"width": "wide"}}, id="number-not-a-number"),
    pytest.param({"attributes": {"width": True}}, id="number-a-boolean"),
    pytest.param({"attributes": {"width": 1e15}}, id="number-too-large"),
    pytest.param({"attributes": {"width": "0.0000001"}}, id="number-too-precise"),
    pytest.param({"attributes": {"width": "NaN"}}, id="number-nan"),
    pytest.param({"attributes": {"width": "1e999999999"}}, id="number-huge-exponent"),
    pytest.param({"attributes": {"width": "1e-999999999"}}, id="number-tiny-exponent"),
    pytest.param({"attributes": {"organic": "maybe"}}, id="boolean-not-a-boolean"),
    pytest.param({"attributes": {"organic": 1}}, id="boolean-a-number"),
    pytest.param({"product_type": None}, id="values-without-a-type"),
]


@pytest.mark.django_db
@pytest.mark.parametrize("change", INVALID_ATTRIBUTES)
def test_product_values_the_type_refuses_are_a_400_and_nothing_is_stored(
    manager_client, tee_type, change
):
    # given
    before = catalog_snapshot()

    # when
    response = manager_client.post(PRODUCTS, tee_body(**change), format="json")

    # then
    assert_problem(response, 400, "invalid_attributes")
    assert catalog_snapshot() == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    "attributes",
    [
        pytest.param({"colour": "purple"}, id="choice-that-does-not-exist"),
        pytest.param({"size": "xxl"}, id="another-missing-choice"),
        pytest.param({"size": True}, id="choice-given-a-boolean"),
        pytest.param({"material": "cotton"}, id="product-attribute-on-a-variant"),
        pytest.param({"weight": 3}, id="unknown-variant-attribute"),
    ],
)
def test_a_bad_value_on_the_last_variant_stores_none_of_them(manager_client, tee_type, attributes):
    # given
    body = tee_body()
    body["variants"][1]["attributes"] = attributes
    before = catalog_snapshot()

    # when
    response = manager_client.post(PRODUCTS, body, format="json")

    # then
    problem = assert_problem(response, 400, "invalid_attributes")
    assert problem["detail"]
    assert catalog_snapshot() == before
    assert not ProductVariant.objects.filter(sku__iexact="TEE-BLK-M").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("first", "second"),
    [("TEE-1", "TEE-1"), ("TEE-1", "tee-1"), ("Tee-1", "TEE-1")],
)
def test_two_variants_sharing_a_sku_in_one_request_are_a_409(manager_client, first, second):
    # given
    make_product(sku="other", stock=2)
    before = catalog_snapshot()
    body = {
        "name": "Twins",
        "variants": [{"sku": first, "price": "5.00", "stock": 3}, {"sku": second, "price": "6.00"}],
    }

    # when
    response = manager_client.post(PRODUCTS, body, format="json")

    # then
    problem = assert_problem(response, 409, "sku_taken", extra=("sku",))
    assert problem["sku"] == second
    assert catalog_snapshot() == before


@pytest.mark.django_db
@pytest.mark.parametrize("sku", ["TEE-WHT-L", "tee-wht-l", "Tee-Wht-L"])
def test_a_sku_of_another_products_variant_in_any_case_is_a_409(manager_client, tee, sku):
    # given
    before = catalog_snapshot()
    body = {
        "name": "Clash",
        "variants": [{"sku": "fresh-1", "price": "5.00", "stock": 1}, {"sku": sku, "price": "6"}],
    }

    # when
    created = manager_client.post(PRODUCTS, body, format="json")
    added = manager_client.post(
        f"{PRODUCTS}/TEE-BLK-M/variants", {"sku": sku, "price": "5.00", "stock": 2}, format="json"
    )

    # then
    assert assert_problem(created, 409, "sku_taken", extra=("sku",))["sku"] == sku
    assert assert_problem(added, 409, "sku_taken", extra=("sku",))["sku"] == sku
    assert catalog_snapshot() == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "pointer"),
    [
        ({"variants": []}, "#/variants"),
        ({"variants": "TEE"}, "#/variants"),
        ({"variants": [{"sku": "ok-1"}]}, "#/variants/0/price"),
        ({"variants": [{"sku": "bad sku", "price": "1.00"}]}, "#/variants/0/sku"),
        ({"variants": [{"sku": "ok-1", "price": "1.00", "stock": -1}]}, "#/variants/0/stock"),
        (
            {"variants": [{"sku": "ok-1", "price": "1", "attributes": []}]},
            "#/variants/0/attributes",
        ),
        (
            {"variants": [{"sku": "ok-1", "price": "1", "attributes": {"size": {"a": 1}}}]},
            "#/variants/0/attributes",
        ),
        ({"variants": [{"sku": f"v-{n}", "price": "1"} for n in range(101)]}, "#/variants"),
        ({"attributes": {"material": ""}}, "#/attributes"),
        ({"attributes": {"material": "a\u0000b"}}, "#/attributes"),
        ({"attributes": {"bad slug!": "x"}}, "#/attributes"),
        ({"attributes": {f"a{n}": "x" for n in range(31)}}, "#/attributes"),
        ({"product_type": "no-such-type"}, "#/product_type"),
        ({"product_type": 7}, "#/product_type"),
    ],
)
def test_a_malformed_variant_body_is_a_400_pointing_at_it(
    manager_client, tee_type, change, pointer
):
    # given
    before = catalog_snapshot()

    # when
    response = manager_client.post(PRODUCTS, tee_body(**change), format="json")

    # then
    assert_invalid(response, pointer)
    assert catalog_snapshot() == before


@pytest.mark.django_db
def test_a_lone_surrogate_in_a_value_is_a_400_not_a_500(manager_client, tee_type):
    # given: JSON may escape a lone surrogate, which UTF-8 (and so PostgreSQL) cannot hold
    before = catalog_snapshot()
    body = b'{"name": "T", "sku": "t-1", "price": "1", "product_type": "t-shirt", '
    body += b'"attributes": {"material": "\\ud800"}}'

    # when
    response = manager_client.post(PRODUCTS, body, content_type="application/json")

    # then
    assert_invalid(response, "#/attributes")
    assert catalog_snapshot() == before


@pytest.mark.django_db
def test_variants_and_the_single_sku_body_together_are_refused(manager_client, tee_type):
    # given
    before = catalog_snapshot()

    # when
    response = manager_client.post(PRODUCTS, tee_body(sku="TEE", price="3.00"), format="json")

    # then
    assert_problem(response, 400, "validation_error")
    assert catalog_snapshot() == before


# --- Product types and their values -------------------------------------------------------------


@pytest.mark.django_db(transaction=True)  # cached reads: invalidated on commit
def test_a_product_type_change_drops_the_values_the_new_type_lacks(manager_client, tee, api_client):
    # given: a type declaring only material for products and only size for variants
    response = manager_client.post(
        "/api/product-types",
        {
            "name": "Basic",
            "slug": "basic",
            "product_attributes": ["material"],
            "variant_attributes": ["size"],
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    assert api_client.get(f"{PRODUCTS}/TEE-BLK-M").status_code == 200  # cached

    # when
    response = manager_client.patch(
        f"{PRODUCTS}/TEE-BLK-M", {"product_type": "basic"}, format="json"
    )

    # then
    assert response.status_code == 200, response.content
    body = api_client.get(f"{PRODUCTS}/TEE-BLK-M").json()
    assert body == response.json()
    assert body["product_type"] == {"slug": "basic", "name": "Basic"}
    assert values(body["attributes"]) == {"material": "organic-cotton"}
    assert [values(v["attributes"]) for v in body["variants"]] == [{"size": "m"}, {"size": "l"}]


@pytest.mark.django_db
def test_removing_the_type_drops_every_value(manager_client, tee):
    # when
    response = manager_client.patch(f"{PRODUCTS}/{tee.pk}", {"product_type": None}, format="json")

    # then
    assert response.status_code == 200, response.content
    assert response.json()["product_type"] is None
    assert response.json()["attributes"] == []
    assert [v["attributes"] for v in response.json()["variants"]] == [[], []]


@pytest.mark.django_db
def test_values_given_with_a_type_change_are_checked_against_the_new_type(manager_client, tee):
    # given
    manager_client.post(
        "/api/product-types",
        {"name": "Basic", "slug": "basic", "variant_attributes": ["size"]},
        format="json",
    )
    before = catalog_snapshot()

    # when: width belongs to the old type only
    response = manager_client.patch(
        f"{PRODUCTS}/{tee.pk}",
        {"product_type": "basic", "attributes": {"width": 40}},
        format="json",
    )

    # then
    assert_problem(response, 400, "invalid_attributes")
    assert catalog_snapshot() == before


@pytest.mark.django_db
def test_patch_replaces_given_values_keeps_the_others_and_null_removes_one(manager_client, tee):
    # when
    response = manager_client.patch(
        f"{PRODUCTS}/{tee.pk}",
        {"attributes": {"material": "Linen", "width": None}},
        format="json",
    )

    # then
    assert response.status_code == 200, response.content
    assert values(response.json()["attributes"]) == {"material": "linen", "organic": "true"}


@pytest.mark.django_db
@pytest.mark.parametrize("change", INVALID_ATTRIBUTES[:-1])
def test_a_product_update_the_type_refuses_stores_nothing(manager_client, tee, change):
    # given
    before = catalog_snapshot()

    # when
    response = manager_client.patch(
        f"{PRODUCTS}/{tee.pk}", {"name": "Renamed", **change}, format="json"
    )

    # then
    assert_problem(response, 400, "invalid_attributes")
    assert catalog_snapshot() == before


@pytest.mark.django_db
def test_equal_texts_share_one_value_and_colliding_slugs_do_not(manager_client, tee_type):
    # when: three products whose materials slugify alike, and one with the same text
    made = [
        manager_client.post(
            PRODUCTS,
            {
                "name": f"Tee {n}",
                "product_type": "t-shirt",
                "attributes": {"material": material},
                "sku": f"tee-{n}",
                "price": "9.00",
            },
            format="json",
        )
        for n, material in enumerate(["Red wine", "red-wine", "Red wine", "日本"])
    ]

    # then
    assert [response.status_code for response in made] == [201] * 4
    shown = [response.json()["attributes"][0] for response in made]
    assert [row["value"] for row in shown] == ["Red wine", "red-wine", "Red wine", "日本"]
    assert shown[0]["slug"] == shown[2]["slug"] == "red-wine"
    assert len({shown[0]["slug"], shown[1]["slug"], shown[3]["slug"]}) == 3


# --- Old single-SKU bodies on products with several variants ------------------------------------


@pytest.mark.django_db
def test_patching_the_price_of_a_product_with_several_variants_is_a_400(manager_client, tee):
    # given
    before = catalog_snapshot()

    # when: name and price together; the name must not be stored either
    response = manager_client.patch(
        f"{PRODUCTS}/TEE-BLK-M", {"name": "Renamed", "price": "1.00"}, format="json"
    )

    # then
    assert_problem(response, 400, "invalid_input")
    assert catalog_snapshot() == before


@pytest.mark.django_db
def test_put_without_a_price_works_on_a_product_with_several_variants(manager_client, tee):
    # when
    response = manager_client.put(
        f"{PRODUCTS}/{tee.pk}",
        {"name": "Tee", "description": "", "category": None, "is_active": True},
        format="json",
    )

    # then
    assert response.status_code == 200, response.content
    assert (response.json()["name"], response.json()["price"]) == ("Tee", "17.50")
    assert values(response.json()["attributes"]) == {
        "material": "organic-cotton",
        "organic": "true",
        "width": "52-5",
    }


# --- POST /api/products/{lookup}/variants, GET and PATCH /api/variants/{sku} --------------------


@pytest.mark.django_db
def test_a_variant_is_added_with_its_values_and_opening_stock(manager_client, tee, manager):
    # when
    response = manager_client.post(
        f"{PRODUCTS}/{tee.pk}/variants",
        {
            "sku": "TEE-BLK-S",
            "name": "S / Black",
            "price": "15.00",
            "attributes": {"colour": "black", "size": "s"},
            "weight_grams": 180,
            "stock": 7,
        },
        format="json",
    )

    # then
    assert response.status_code == 201, response.content
    assert response["Location"] == "/api/variants/TEE-BLK-S/"
    variant = ProductVariant.objects.get(sku="TEE-BLK-S")
    assert response.json() == {
        "id": variant.pk,
        "sku": "TEE-BLK-S",
        "name": "S / Black",
        "price": "15.00",
        "currency": "EUR",
        "attributes": [
            {"attribute": "colour", "name": "Colour", "value": "Black", "slug": "black"},
            {"attribute": "size", "name": "Size", "value": "S", "slug": "s"},
        ],
        "stock": 7,
        "in_stock": True,
        "is_active": True,
    }
    assert (variant.product_id, variant.weight_grams, variant.sort_order) == (tee.pk, 180, 2)
    assert price_of(tee) == (Decimal("15.00"), "EUR")
    assert ledger_rows(variant) == [(7, 7, "restock", "initial stock")]
    assert manager_client.get(f"{VARIANTS}/tee-blk-s").json() == response.json()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (
            {"sku": "TEE-X", "price": "5", "attributes": {"colour": "red"}},
            400,
            "invalid_attributes",
        ),
        ({"sku": "TEE-X", "price": "5", "attributes": {"fabric": "x"}}, 400, "invalid_attributes"),
        ({"sku": "TEE-X", "price": "0"}, 400, "validation_error"),
        ({"sku": "TEE-X"}, 400, "validation_error"),
        ({"sku": "TEE-X", "price": "5", "stock": 1_000_001}, 400, "validation_error"),
        ({"sku": "TEE-X", "price": "5", "weight_grams": -1}, 400, "validation_error"),
        ({"sku": "TEE-BLK-M", "price": "5"}, 409, "sku_taken"),
    ],
)
def test_a_bad_variant_is_refused_and_nothing_is_stored(manager_client, tee, body, status, code):
    # given
    before = catalog_snapshot()

    # when
    response = manager_client.post(f"{PRODUCTS}/TEE-WHT-L/variants", body, format="json")

    # then
    assert_problem(response, status, code, extra=("sku",) if code == "sku_taken" else ())
    assert catalog_snapshot() == before


@pytest.mark.django_db
def test_adding_a_variant_to_an_unknown_product_is_a_404(manager_client, tee):
    # given
    before = catalog_snapshot()

    # when
    response = manager_client.post(
        f"{PRODUCTS}/nope/variants", {"sku": "NEW-1", "price": "5"}, format="json"
    )

    # then
    assert_problem(response, 404, "product_not_found", extra=("products",))
    assert catalog_snapshot() == before


@pytest.mark.django_db
def test_a_variant_patch_changes_its_values_and_price(manager_client, tee):
    # when
    response = manager_client.patch(
        f"{VARIANTS}/tee-wht-l",
        {"price": "21.00", "name": "L / Black", "attributes": {"colour": "black"}},
        format="json",
    )

    # then
    assert response.status_code == 200, response.content
    assert (response.json()["sku"], response.json()["price"], response.json()["name"]) == (
        "TEE-WHT-L",
        "21.00",
        "L / Black",
    )
    assert values(response.json()["attributes"]) == {"colour": "black", "size": "l"}
    assert price_of(tee) == (Decimal("19.90"), "EUR")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"attributes": {"colour": "purple"}}, 400, "invalid_attributes"),
        ({"attributes": {"material": "wool"}}, 400, "invalid_attributes"),
        ({"price": "1.00", "attributes": {"size": "xxl"}}, 400, "invalid_attributes"),
        ({"price": "-1"}, 400, "validation_error"),
        ({"is_active": "nope"}, 400, "validation_error"),
        ({"attributes": "black"}, 400, "validation_error"),
    ],
)
def test_a_bad_variant_patch_stores_nothing(manager_client, tee, body, status, code):
    # given
    before = catalog_snapshot()

    # when
    response = manager_client.patch(f"{VARIANTS}/TEE-BLK-M", body, format="json")

    # then
    assert_problem(response, status, code)
    assert catalog_snapshot() == before


@pytest.mark.django_db
def test_a_variant_patch_never_changes_its_sku(manager_client, tee):
    # when
    response = manager_client.patch(
        f"{VARIANTS}/TEE-BLK-M", {"sku": "STOLEN", "name": "M"}, format="json"
    )

    # then
    assert response.status_code == 200, response.content
    assert response.json()["sku"] == "TEE-BLK-M"
    assert not ProductVariant.objects.filter(sku__iexact="stolen").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "patch"])
def test_an_unknown_variant_is_a_404(manager_client, tee, method):
    # when
    response = getattr(manager_client, method)(f"{VARIANTS}/NOPE", {"name": "x"}, format="json")

    # then
    assert_problem(response, 404, "product_not_found", extra=("products",))


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("anonymous", 401, "not_authenticated"),
        ("customer", 403, "permission_denied"),
        ("support", 403, "permission_denied"),
    ],
)
def test_only_catalog_staff_create_products_with_variants(client_of, tee_type, kind, status, code):
    # given
    before = catalog_snapshot()

    # when
    response = client_of(kind).post(PRODUCTS, tee_body(), format="json")

    # then
    assert_problem(response, status, code)
    assert catalog_snapshot() == before


# --- Deactivated variants -----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)  # cached reads: invalidated on commit
def test_a_deactivated_variant_leaves_the_public_detail_and_cannot_be_ordered(
    manager_client, api_client, client_for, tee
):
    # given
    assert api_client.get(f"{PRODUCTS}/TEE-WHT-L").status_code == 200  # cached, by its SKU
    inventory_services.restock(
        variant_id=ProductVariant.objects.get(sku="TEE-WHT-L").pk, quantity=5
    )
    buyer = client_for(UserFactory(roles=[Role.CUSTOMER]))

    # when
    response = manager_client.patch(f"{VARIANTS}/TEE-WHT-L", {"is_active": False}, format="json")

    # then
    assert response.status_code == 200, response.content
    assert response.json()["is_active"] is False
    public = api_client.get(f"{PRODUCTS}/TEE-BLK-M").json()
    assert [v["sku"] for v in public["variants"]] == ["TEE-BLK-M"]
    assert (public["price"], public["stock"]) == ("19.90", 4)
    assert_problem(
        api_client.get(f"{PRODUCTS}/TEE-WHT-L"), 404, "product_not_found", extra=("products",)
    )
    staff = manager_client.get(f"{PRODUCTS}/TEE-WHT-L").json()
    assert [(v["sku"], v["is_active"]) for v in staff["variants"]] == [
        ("TEE-BLK-M", True),
        ("TEE-WHT-L", False),
    ]
    ordered = buyer.post(
        "/api/orders",
        {"items": [{"id": "TEE-WHT-L", "quantity": 1}], "payment_token": "tok_success"},
        format="json",
    )
    assert_problem(ordered, 400, "product_unavailable", extra=("products",))
    white = ProductVariant.objects.get(sku="TEE-WHT-L")
    assert stock_of(white.pk) == 5

    # and when it comes back, so does its SKU
    manager_client.patch(f"{VARIANTS}/TEE-WHT-L", {"is_active": True}, format="json")
    assert api_client.get(f"{PRODUCTS}/tee-wht-l").json()["price"] == "17.50"


@pytest.mark.django_db(transaction=True)  # cached reads: invalidated on commit
def test_a_product_with_no_variant_on_sale_leaves_the_public_list_and_detail(
    manager_client, api_client
):
    # given
    mug = make_product(sku="MUG-1", stock=3)
    assert [row["sku"] for row in api_client.get(PRODUCTS).json()["results"]] == ["MUG-1"]

    # when
    response = manager_client.patch(f"{VARIANTS}/MUG-1", {"is_active": False}, format="json")

    # then
    assert response.status_code == 200, response.content
    assert api_client.get(PRODUCTS).json()["results"] == []
    assert_problem(
        api_client.get(f"{PRODUCTS}/{mug.pk}"), 404, "product_not_found", extra=("products",)
    )
    staff_rows = manager_client.get(PRODUCTS).json()["results"]
    # staff see every variant, on sale or not
    assert [(row["id"], row["sku"], row["stock"]) for row in staff_rows] == [(mug.pk, "MUG-1", 3)]


@pytest.mark.django_db
def test_a_products_id_orders_its_only_active_variant(manager_client, client_for, tee):
    # given
    buyer = client_for(UserFactory(roles=[Role.CUSTOMER]))
    body = {"items": [{"id": str(tee.pk), "quantity": 1}], "payment_token": "tok_success"}
    assert_problem(buyer.post("/api/orders", body, format="json"), 400, "invalid_order")
    manager_client.patch(f"{VARIANTS}/TEE-WHT-L", {"is_active": False}, format="json")

    # when
    response = buyer.post("/api/orders", body, format="json")

    # then
    assert response.status_code == 201, response.content
    assert [item["sku"] for item in response.json()["items"]] == ["TEE-BLK-M"]


# --- The product's price is its cheapest active variant's ---------------------------------------


@pytest.mark.django_db(transaction=True)  # cached reads: invalidated on commit
def test_the_product_price_follows_its_cheapest_active_variant_through_every_change(
    manager_client, api_client, tee
):
    def shown() -> tuple[str, str, str]:
        detail = api_client.get(f"{PRODUCTS}/{tee.pk}").json()["price"]
        listed = api_client.get(PRODUCTS).json()["results"][0]["price"]
        return f"{price_of(tee)[0]:.2f}", detail, listed

    # created: 19.90 and 17.50
    assert shown() == ("17.50", "17.50", "17.50")

    # a cheaper variant is added
    manager_client.post(f"{PRODUCTS}/{tee.pk}/variants", {"sku": "TEE-S", "price": "12.00"})
    assert shown() == ("12.00", "12.00", "12.00")

    # the cheapest one's price goes up past the others
    manager_client.patch(f"{VARIANTS}/TEE-S", {"price": "25.00"}, format="json")
    assert shown() == ("17.50", "17.50", "17.50")

    # the cheapest one is deactivated
    manager_client.patch(f"{VARIANTS}/TEE-WHT-L", {"is_active": False}, format="json")
    assert shown() == ("19.90", "19.90", "19.90")

    # a price change of an inactive variant does not count
    manager_client.patch(f"{VARIANTS}/TEE-WHT-L", {"price": "1.00"}, format="json")
    assert shown() == ("19.90", "19.90", "19.90")

    # reactivated, it counts again
    manager_client.patch(f"{VARIANTS}/TEE-WHT-L", {"is_active": True}, format="json")
    assert shown() == ("1.00", "1.00", "1.00")

    # with none active, the cheapest of all
    for sku in ("TEE-BLK-M", "TEE-WHT-L", "TEE-S"):
        manager_client.patch(f"{VARIANTS}/{sku}", {"is_active": False}, format="json")
    tee.refresh_from_db()
    assert tee.price == Decimal("1.00")


@pytest.mark.django_db
def test_patching_a_one_variant_products_price_sets_its_variants(manager_client, api_client):
    # given
    lamp = make_product(sku="lamp", price="20.00")

    # when
    response = manager_client.patch(f"{PRODUCTS}/lamp", {"price": "22.50"}, format="json")

    # then
    assert response.status_code == 200, response.content
    assert response.json()["price"] == response.json()["variants"][0]["price"] == "22.50"
    assert ProductVariant.objects.get(sku="lamp").price == Decimal("22.50")
    assert price_of(lamp) == (Decimal("22.50"), "EUR")


@pytest.mark.django_db(transaction=True)
def test_concurrent_price_changes_of_two_variants_leave_the_cheapest_as_the_price(tee):
    """Each change recomputes the product's price under its row lock, so the second to
    commit sees the first's price: never a price no active variant has."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from django.db import connection

    from apps.catalog import services

    black = ProductVariant.objects.get(sku="TEE-BLK-M")
    white = ProductVariant.objects.get(sku="TEE-WHT-L")
    barrier = Barrier(2)

    def set_price(variant_id: int, price: str) -> None:
        try:
            variant = ProductVariant.objects.select_related("product").get(pk=variant_id)
            barrier.wait(timeout=10)
            services.update_variant(variant=variant, price=Decimal(price))
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=2) as pool:
        for black_price, white_price in [("5.00", "30.00"), ("40.00", "6.00"), ("7.00", "8.00")]:
            # each goes below the other's old price: a stale read would keep the old minimum
            list(
                pool.map(
                    lambda args: set_price(*args),
                    [(black.pk, black_price), (white.pk, white_price)],
                )
            )
            tee.refresh_from_db()
            assert tee.price == min(Decimal(black_price), Decimal(white_price))
