"""Attributes with their choice values, and product types, through the API: public reads,
catalog managers' writes, and what a change does to the products that show them."""

from __future__ import annotations

import pytest

from apps.catalog.models import Attribute, AttributeValue, ProductType
from tests.catalog.asserts import assert_invalid, assert_problem, catalog_snapshot

ATTRIBUTES = "/api/attributes"
TYPES = "/api/product-types"


def tee_body() -> dict:
    return {
        "name": "Tee",
        "product_type": "t-shirt",
        "attributes": {"material": "Cotton", "width": 50},
        "variants": [
            {"sku": "TEE-M", "price": "10.00", "attributes": {"size": "m", "colour": "black"}},
            {"sku": "TEE-L", "price": "12.00", "attributes": {"size": "l", "colour": "black"}},
        ],
    }


# --- /api/attributes ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_anyone_lists_attributes_with_their_choice_values_in_order(api_client, tee_type):
    # when
    response = api_client.get(ATTRIBUTES)

    # then
    assert response.status_code == 200
    page = response.json()
    assert page["count"] == 5
    rows = {row["slug"]: row for row in page["results"]}
    assert [row["slug"] for row in page["results"]] == [
        "colour",
        "material",
        "organic",
        "size",
        "width",
    ]
    size = rows["size"]
    assert {key: size[key] for key in ("name", "input_type", "unit", "filterable")} == {
        "name": "Size",
        "input_type": "choice",
        "unit": "",
        "filterable": True,
    }
    assert [(v["slug"], v["name"], v["sort_order"]) for v in size["values"]] == [
        ("s", "S", 0),
        ("m", "M", 1),
        ("l", "L", 2),
    ]
    assert (rows["width"]["input_type"], rows["width"]["unit"], rows["width"]["values"]) == (
        "number",
        "cm",
        [],
    )


@pytest.mark.django_db
def test_made_values_of_text_attributes_are_not_listed_as_choices(
    manager_client, api_client, tee_type
):
    # given: a product gives material a text value
    assert manager_client.post("/api/products", tee_body(), format="json").status_code == 201

    # when
    response = api_client.get(f"{ATTRIBUTES}/material")

    # then
    assert response.status_code == 200
    assert response.json()["values"] == []
    assert AttributeValue.objects.filter(attribute__slug="material").count() == 1


@pytest.mark.django_db
def test_a_manager_declares_a_choice_attribute_with_its_values(manager_client, api_client):
    # when
    response = manager_client.post(
        ATTRIBUTES,
        {
            "name": "Fit",
            "slug": "fit",
            "values": [
                {"name": "Slim"},
                {"name": "Relaxed fit", "slug": "relaxed"},
                {"name": "Oversize", "sort_order": 10},
            ],
        },
        format="json",
    )

    # then
    assert response.status_code == 201, response.content
    assert response["Location"] == "/api/attributes/fit/"
    body = response.json()
    assert (body["input_type"], body["filterable"]) == ("choice", True)
    assert [(v["slug"], v["name"], v["sort_order"]) for v in body["values"]] == [
        ("slim", "Slim", 0),
        ("relaxed", "Relaxed fit", 1),
        ("oversize", "Oversize", 10),
    ]
    assert api_client.get(f"{ATTRIBUTES}/fit").json() == body


@pytest.mark.django_db
def test_a_number_attribute_takes_a_unit_and_no_declared_values(manager_client, tee_type):
    # given
    before = catalog_snapshot()

    # when
    refused = manager_client.post(
        ATTRIBUTES,
        {"name": "Depth", "slug": "depth", "input_type": "number", "values": [{"name": "10"}]},
        format="json",
    )
    # then
    assert_problem(refused, 400, "invalid_attributes")
    assert catalog_snapshot() == before

    # when
    created = manager_client.post(
        ATTRIBUTES,
        {"name": "Depth", "slug": "depth", "input_type": "number", "unit": "mm"},
        format="json",
    )
    # then
    assert created.status_code == 201, created.content
    assert (created.json()["unit"], created.json()["values"]) == ("mm", [])


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"name": "Size again", "slug": "size"}, 409, "slug_taken"),
        (
            {"name": "Fit", "slug": "fit", "values": [{"name": "A"}, {"name": "a"}]},
            409,
            "slug_taken",
        ),
        (
            {"name": "Fit", "slug": "fit", "values": [{"name": "X", "slug": "x"}, {"name": "x"}]},
            409,
            "slug_taken",
        ),
        ({"name": "Fit", "slug": "fit", "values": [{"name": "!!!"}]}, 400, "invalid_attributes"),
        ({"name": "Fit", "slug": "fit", "input_type": "colour"}, 400, "validation_error"),
        ({"name": "Fit", "slug": "f i t"}, 400, "validation_error"),
        ({"name": "", "slug": "fit"}, 400, "validation_error"),
        ({"name": "Fit", "slug": "fit", "values": "slim"}, 400, "validation_error"),
        ({"name": "Fit", "slug": "fit", "values": [{"name": "x" * 201}]}, 400, "validation_error"),
        ({"name": "Fit", "slug": "fit", "unit": "x" * 17}, 400, "validation_error"),
        ({"name": "Fit", "slug": "fit", "filterable": "perhaps"}, 400, "validation_error"),
        ({"name": 5, "slug": "fit"}, 400, "validation_error"),
    ],
)
def test_a_bad_attribute_is_refused_and_nothing_is_stored(
    manager_client, tee_type, body, status, code
):
    # given
    before = catalog_snapshot()

    # when
    response = manager_client.post(ATTRIBUTES, body, format="json")

    # then
    assert_problem(response, status, code, extra=("slug",) if code == "slug_taken" else ())
    assert catalog_snapshot() == before


@pytest.mark.django_db
def test_values_are_added_after_the_others(manager_client, tee_type):
    # when
    response = manager_client.post(
        f"{ATTRIBUTES}/size/values", {"values": [{"name": "XL"}, {"name": "XXL"}]}, format="json"
    )

    # then
    assert response.status_code == 201, response.content
    assert [(v["slug"], v["sort_order"]) for v in response.json()["values"]] == [
        ("xl", 3),
        ("xxl", 4),
    ]
    listed = manager_client.get(f"{ATTRIBUTES}/size").json()["values"]
    assert [v["slug"] for v in listed] == ["s", "m", "l", "xl", "xxl"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("size", {"values": [{"name": "XL"}, {"name": "M"}]}, 409, "slug_taken"),
        ("size", {"values": [{"name": "XL"}, {"name": "xl"}]}, 409, "slug_taken"),
        ("material", {"values": [{"name": "Wool"}]}, 400, "invalid_attributes"),
        ("size", {"values": []}, 400, "validation_error"),
        ("size", {"values": [{"slug": "xl"}]}, 400, "validation_error"),
        ("size", {}, 400, "validation_error"),
        ("nope", {"values": [{"name": "XL"}]}, 404, "attribute_not_found"),
    ],
)
def test_bad_values_are_refused_and_nothing_is_stored(
    manager_client, tee_type, path, body, status, code
):
    # given
    before = catalog_snapshot()

    # when
    response = manager_client.post(f"{ATTRIBUTES}/{path}/values", body, format="json")

    # then
    extra = {"slug_taken": ("slug",), "attribute_not_found": ("slug",)}.get(code, ())
    assert_problem(response, status, code, extra=extra)
    assert catalog_snapshot() == before


@pytest.mark.django_db(transaction=True)  # cached reads: invalidated on commit
def test_renaming_an_attribute_shows_in_the_products_that_carry_it(
    manager_client, api_client, tee_type
):
    # given
    manager_client.post("/api/products", tee_body(), format="json")
    assert api_client.get("/api/products/TEE-M").status_code == 200  # cached

    # when
    response = manager_client.patch(
        f"{ATTRIBUTES}/size", {"name": "Size (EU)", "filterable": False}, format="json"
    )

    # then
    assert response.status_code == 200, response.content
    assert (response.json()["name"], response.json()["filterable"]) == ("Size (EU)", False)
    variants = api_client.get("/api/products/TEE-L").json()["variants"]
    assert {row["name"] for v in variants for row in v["attributes"]} == {"Colour", "Size (EU)"}


@pytest.mark.django_db
def test_the_type_of_an_attribute_changes_only_while_it_has_no_values(manager_client, tee_type):
    # given
    before = catalog_snapshot()

    # when
    refused = manager_client.patch(f"{ATTRIBUTES}/size", {"input_type": "text"}, format="json")
    changed = manager_client.patch(f"{ATTRIBUTES}/width", {"input_type": "text"}, format="json")

    # then
    assert_problem(refused, 400, "invalid_attributes")
    assert changed.status_code == 200, changed.content
    assert Attribute.objects.get(slug="width").input_type == "text"
    after = catalog_snapshot()
    assert {k: v for k, v in after.items() if k != "attributes"} == {
        k: v for k, v in before.items() if k != "attributes"
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("size", {"name": ""}, 400, "validation_error"),
        ("size", {"input_type": "colour"}, 400, "validation_error"),
        ("size", {"slug": "sizes"}, None, None),  # ignored: a slug never changes
        ("nope", {"name": "X"}, 404, "attribute_not_found"),
    ],
)
def test_a_bad_attribute_update_changes_nothing(manager_client, tee_type, path, body, status, code):
    # given
    before = catalog_snapshot()

    # when
    response = manager_client.patch(f"{ATTRIBUTES}/{path}", body, format="json")

    # then
    if status is None:
        assert response.status_code == 200
        assert response.json()["slug"] == "size"
    else:
        assert_problem(response, status, code, extra=("slug",) if status == 404 else ())
        assert catalog_snapshot() == before


# --- /api/product-types ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_anyone_reads_product_types_with_their_attributes(api_client, tee_type):
    # when
    listed = api_client.get(TYPES)
    one = api_client.get(f"{TYPES}/t-shirt")

    # then
    assert listed.status_code == one.status_code == 200
    assert listed.json()["results"] == [one.json()]
    assert one.json() == {
        "id": tee_type.pk,
        "slug": "t-shirt",
        "name": "T-shirt",
        "tax_class": "standard",
        "product_attributes": ["material", "organic", "width"],
        "variant_attributes": ["colour", "size"],
    }
    assert_problem(api_client.get(f"{TYPES}/nope"), 404, "product_type_not_found", extra=("slug",))


@pytest.mark.django_db
def test_a_manager_creates_a_product_type(manager_client, tee_type):
    # when
    response = manager_client.post(
        TYPES,
        {"name": "Mug", "slug": "mug", "product_attributes": ["width", "material"]},
        format="json",
    )

    # then
    assert response.status_code == 201, response.content
    assert response["Location"] == "/api/product-types/mug/"
    assert response.json()["product_attributes"] == ["material", "width"]
    assert response.json()["variant_attributes"] == []
    assert response.json()["tax_class"] == "standard"
    mug = ProductType.objects.get(slug="mug")
    assert sorted(mug.product_attributes.values_list("slug", flat=True)) == ["material", "width"]


@pytest.mark.django_db
def test_a_manager_sets_and_changes_the_tax_class_of_a_type(manager_client, tee_type):
    # when
    created = manager_client.post(
        TYPES, {"name": "Book", "slug": "book", "tax_class": "reduced"}, format="json"
    )
    changed = manager_client.patch(f"{TYPES}/t-shirt", {"tax_class": "zero"}, format="json")

    # then
    assert (created.status_code, changed.status_code) == (201, 200), changed.content
    assert created.json()["tax_class"] == "reduced"
    assert changed.json()["tax_class"] == "zero"
    assert ProductType.objects.get(slug="book").tax_class == "reduced"
    tee_type.refresh_from_db()
    assert (tee_type.tax_class, tee_type.name) == ("zero", "T-shirt")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "status", "code", "pointer"),
    [
        ({"name": "Tee", "slug": "t-shirt"}, 409, "slug_taken", None),
        (
            {
                "name": "X",
                "slug": "x",
                "product_attributes": ["size"],
                "variant_attributes": ["size"],
            },
            400,
            "invalid_attributes",
            None,
        ),
        (
            {"name": "X", "slug": "x", "product_attributes": ["nope"]},
            400,
            None,
            "#/product_attributes",
        ),
        (
            {"name": "X", "slug": "x", "variant_attributes": "size"},
            400,
            None,
            "#/variant_attributes",
        ),
        ({"name": "X", "slug": "x", "variant_attributes": [5]}, 400, None, "#/variant_attributes"),
        (
            {"name": "X", "slug": "x", "variant_attributes": [f"a{n}" for n in range(31)]},
            400,
            None,
            "#/variant_attributes",
        ),
        ({"name": "X", "slug": "x y"}, 400, None, "#/slug"),
        ({"name": "X", "slug": "x", "tax_class": "not a slug"}, 400, None, "#/tax_class"),
        ({"name": "X", "slug": "x", "tax_class": "x" * 33}, 400, None, "#/tax_class"),
    ],
)
def test_a_bad_product_type_is_refused_and_nothing_is_stored(
    manager_client, tee_type, body, status, code, pointer
):
    # given
    before = catalog_snapshot()

    # when
    response = manager_client.post(TYPES, body, format="json")

    # then
    if pointer:
        assert_invalid(response, pointer)
    else:
        assert_problem(response, status, code, extra=("slug",) if code == "slug_taken" else ())
    assert catalog_snapshot() == before


@pytest.mark.django_db(transaction=True)  # cached reads: invalidated on commit
def test_an_attribute_a_type_stops_declaring_leaves_its_products(
    manager_client, api_client, tee_type
):
    # given
    manager_client.post("/api/products", tee_body(), format="json")
    assert len(api_client.get("/api/products/TEE-M").json()["attributes"]) == 2  # cached

    # when: width and colour are no longer declared; organic moves to the variants
    response = manager_client.patch(
        f"{TYPES}/t-shirt",
        {
            "name": "Tee",
            "product_attributes": ["material"],
            "variant_attributes": ["size", "organic"],
        },
        format="json",
    )

    # then
    assert response.status_code == 200, response.content
    assert response.json()["name"] == "Tee"
    detail = api_client.get("/api/products/TEE-M").json()
    assert detail["product_type"] == {"slug": "t-shirt", "name": "Tee"}
    assert [row["attribute"] for row in detail["attributes"]] == ["material"]
    assert [[row["attribute"] for row in v["attributes"]] for v in detail["variants"]] == [
        ["size"],
        ["size"],
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("t-shirt", {"variant_attributes": ["material"]}, 400, "invalid_attributes"),
        ("t-shirt", {"product_attributes": ["nope"]}, 400, "validation_error"),
        ("t-shirt", {"name": ""}, 400, "validation_error"),
        ("t-shirt", {"tax_class": ""}, 400, "validation_error"),
        ("nope", {"name": "X"}, 404, "product_type_not_found"),
    ],
)
def test_a_bad_product_type_update_changes_nothing(
    manager_client, tee_type, path, body, status, code
):
    # given
    manager_client.post("/api/products", tee_body(), format="json")
    before = catalog_snapshot()

    # when
    response = manager_client.patch(f"{TYPES}/{path}", body, format="json")

    # then
    assert_problem(response, status, code, extra=("slug",) if status == 404 else ())
    assert catalog_snapshot() == before


# --- Who may write ------------------------------------------------------------------------------

WRITES = [
    ("post", ATTRIBUTES, {"name": "Fit", "slug": "fit"}),
    ("patch", f"{ATTRIBUTES}/size", {"name": "Sizes"}),
    ("post", f"{ATTRIBUTES}/size/values", {"values": [{"name": "XL"}]}),
    ("post", TYPES, {"name": "Mug", "slug": "mug"}),
    ("patch", f"{TYPES}/t-shirt", {"name": "Tee"}),
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
def test_only_catalog_staff_write_attributes_and_types(
    client_of, tee_type, kind, status, code, method, path, body
):
    # given
    before = catalog_snapshot()

    # when
    response = getattr(client_of(kind), method)(path, body, format="json")

    # then
    assert_problem(response, status, code)
    assert catalog_snapshot() == before
