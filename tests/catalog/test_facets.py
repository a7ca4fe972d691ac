"""Product list filters (attributes, price, category subtree, stock, country) and facet
counts, on one known catalog: every expected figure below is counted by hand from it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.catalog import services
from apps.catalog.models import Attribute, AttributeValue, Category, Product, ProductType
from apps.catalog.services import VariantSpec
from tests.catalog.asserts import assert_invalid
from tests.inventory.factories import make_warehouse, put_stock

pytestmark = pytest.mark.django_db

PRODUCTS = "/api/products"


def _attribute(slug: str, values: list[str], *, filterable: bool = True) -> Attribute:
    attribute = Attribute.objects.create(name=slug.title(), slug=slug, filterable=filterable)
    for order, name in enumerate(values):
        AttributeValue.objects.create(
            attribute=attribute, name=name, slug=name.lower(), sort_order=order
        )
    return attribute


def _variant(sku: str, price: str, colour: str, size: str, **extra: Any) -> VariantSpec:
    return VariantSpec(
        sku=sku, price=Decimal(price), attributes={"colour": colour, "size": size}, **extra
    )


@pytest.fixture
def shop() -> dict[str, Any]:
    """Five listed products and one retired one:

    | product      | category        | material | variants (colour size price: stock)          |
    | Black Tee    | clothing>tops>tees | cotton | black s 10: us 5; black m 12: none            |
    | Rainbow Tee  | clothing>tops   | cotton   | white m 20: eu 3; red l 25: us 1              |
    | Wool Jumper  | clothing        | wool     | black l 50: anywhere 2; white s 45: none      |
    | Plain Mug    | home            | -        | (no attributes) 8: closed warehouse 10        |
    | Ghost Tee    | clothing>bottoms | wool    | red m 30 INACTIVE: us 4; white l 30: none     |
    | Old Tee      | tees, RETIRED   | cotton   | black m 15: us 9                              |

    Warehouses: us serves US, eu serves DE and AT, anywhere has no zone (serves all),
    closed is inactive. The default warehouse holds nothing.
    """
    colour = _attribute("colour", ["Black", "White", "Red"])
    size = _attribute("size", ["S", "M", "L"])
    material = _attribute("material", ["Cotton", "Wool"])
    care = _attribute("care", ["Hand wash"], filterable=False)
    tee = ProductType.objects.create(name="Garment", slug="garment")
    tee.product_attributes.set([material, care])
    tee.variant_attributes.set([colour, size])
    clothing = Category.objects.create(name="Clothing", slug="clothing")
    tops = Category.objects.create(name="Tops", slug="tops", parent=clothing)
    tees = Category.objects.create(name="Tees", slug="tees", parent=tops)
    bottoms = Category.objects.create(name="Bottoms", slug="bottoms", parent=clothing)
    home = Category.objects.create(name="Home", slug="home")
    us = make_warehouse("us", countries=["US"])
    eu = make_warehouse("eu", countries=["DE", "AT"])
    anywhere = make_warehouse("anywhere")
    closed = make_warehouse("closed", is_active=False)

    def product(name: str, category: Category, material: str | None, *variants: VariantSpec):
        return services.create_product(
            name=name,
            category=category,
            product_type=tee if material else None,
            attributes={"material": material, "care": "Hand wash"} if material else {},
            variants=list(variants),
        )

    black_tee = product(
        "Black Tee",
        tees,
        "cotton",
        _variant("TEE-BLK-S", "10.00", "black", "s"),
        _variant("TEE-BLK-M", "12.00", "black", "m"),
    )
    rainbow = product(
        "Rainbow Tee",
        tops,
        "cotton",
        _variant("TEE-WHT-M", "20.00", "white", "m"),
        _variant("TEE-RED-L", "25.00", "red", "l"),
    )
    jumper = product(
        "Wool Jumper",
        clothing,
        "wool",
        _variant("JMP-BLK-L", "50.00", "black", "l"),
        _variant("JMP-WHT-S", "45.00", "white", "s"),
    )
    mug = product("Plain Mug", home, None, VariantSpec(sku="MUG-1", price=Decimal("8.00")))
    ghost = product(
        "Ghost Tee",
        bottoms,
        "wool",
        _variant("GHO-RED-M", "30.00", "red", "m", is_active=False),
        _variant("GHO-WHT-L", "30.00", "white", "l"),
    )
    old = product("Old Tee", tees, "cotton", _variant("OLD-BLK-M", "15.00", "black", "m"))
    services.deactivate_product(product=old)
    stock = {
        ("TEE-BLK-S", us): 5,
        ("TEE-WHT-M", eu): 3,
        ("TEE-RED-L", us): 1,
        ("JMP-BLK-L", anywhere): 2,
        ("MUG-1", closed): 10,
        ("GHO-RED-M", us): 4,
        ("OLD-BLK-M", us): 9,
    }
    for (sku, warehouse), quantity in stock.items():
        variant_id = Product.objects.get(variants__sku=sku).variants.get(sku=sku).pk
        put_stock(variant_id, warehouse, quantity)
    return {
        "products": [black_tee, rainbow, jumper, mug, ghost],
        "categories": {"clothing": clothing, "tops": tops, "tees": tees, "home": home},
    }


def names(response: Any) -> list[str]:
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["count"] == len(body["results"])
    return sorted(row["name"] for row in body["results"])


def facets_of(response: Any) -> dict[str, dict[str, int]]:
    assert response.status_code == 200, response.content
    return {
        attribute: {value["slug"]: value["count"] for value in values}
        for attribute, values in response.json()["facets"].items()
    }


# --- Filters -----------------------------------------------------------------------------------


@pytest.mark.usefixtures("shop")
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, ["Black Tee", "Ghost Tee", "Plain Mug", "Rainbow Tee", "Wool Jumper"]),
        ({"attr": "colour:black"}, ["Black Tee", "Wool Jumper"]),
        # values of one attribute are alternatives
        (
            {"attr": ["colour:black", "colour:white"]},
            ["Black Tee", "Ghost Tee", "Rainbow Tee", "Wool Jumper"],
        ),
        # different attributes must all hold, for ONE variant
        ({"attr": ["colour:black", "size:l"]}, ["Wool Jumper"]),
        ({"attr": ["colour:red", "size:m"]}, []),  # red L and white M: no red M on sale
        ({"attr": ["colour:red", "colour:white", "size:m"]}, ["Rainbow Tee"]),
        # a product-level value, with a variant-level one
        ({"attr": "material:cotton"}, ["Black Tee", "Rainbow Tee"]),
        ({"attr": ["material:cotton", "colour:white"]}, ["Rainbow Tee"]),
        ({"attr": ["material:wool", "size:m"]}, []),  # Ghost Tee's M is not on sale
        # an unknown value, an unknown or unfilterable attribute: nothing matches
        ({"attr": "colour:purple"}, []),
        ({"attr": "nope:black"}, []),
        ({"attr": "care:hand-wash"}, []),
        ({"attr": ["colour:black", "nope:black"]}, []),
        # some active variant in the range (Black Tee sells from 10.00, its M at 12.00)
        ({"min_price": "11", "max_price": "12"}, ["Black Tee"]),
        ({"min_price": "20", "max_price": "26"}, ["Rainbow Tee"]),
        ({"min_price": "46"}, ["Wool Jumper"]),
        ({"max_price": "9.999"}, ["Plain Mug"]),
        ({"min_price": "1e30"}, []),
        ({"min_price": "46", "attr": "colour:white"}, []),  # the white jumper is 45.00
        # the category and its subtree
        ({"category": "clothing"}, ["Black Tee", "Ghost Tee", "Rainbow Tee", "Wool Jumper"]),
        ({"category": "tops"}, ["Black Tee", "Rainbow Tee"]),
        ({"category": "tees"}, ["Black Tee"]),
        ({"category": "nowhere"}, []),
        ({"category": "99999999999999999999"}, []),
        # stock: any warehouse (Plain Mug's is closed, still on hand); inactive variants no
        ({"in_stock": "true"}, ["Black Tee", "Plain Mug", "Rainbow Tee", "Wool Jumper"]),
        ({"in_stock": "false"}, ["Ghost Tee"]),
        ({"in_stock": "true", "attr": "size:m"}, ["Rainbow Tee"]),  # Black Tee's M: none
        # availability in the caller's country: active warehouses serving it
        ({"country": "US"}, ["Black Tee", "Rainbow Tee", "Wool Jumper"]),
        ({"country": "de"}, ["Rainbow Tee", "Wool Jumper"]),
        ({"country": "FR"}, ["Wool Jumper"]),
        ({"country": "DE", "attr": "colour:red"}, []),  # the red one is stocked for the US
        ({"country": "DE", "max_price": "21"}, ["Rainbow Tee"]),
    ],
)
def test_the_list_filters(api_client, query, expected):
    # when
    response = api_client.get(PRODUCTS, query)

    # then
    assert names(response) == expected


def test_a_category_by_id_takes_its_subtree(api_client, shop):
    # when
    response = api_client.get(PRODUCTS, {"category": shop["categories"]["tops"].pk})

    # then
    assert names(response) == ["Black Tee", "Rainbow Tee"]


# --- Facets ------------------------------------------------------------------------------------


def test_facet_counts_on_the_whole_catalog(api_client, shop):
    # when
    response = api_client.get(PRODUCTS, {"facets": "colour,size,material"})

    # then: matching products per value, inactive variants and retired products left out
    assert facets_of(response) == {
        "colour": {"black": 2, "white": 3, "red": 1},
        "size": {"s": 2, "m": 2, "l": 3},
        "material": {"cotton": 2, "wool": 2},
    }
    assert response.json()["facets"]["colour"][0] == {"slug": "black", "name": "Black", "count": 2}
    assert list(response.json()["facets"]) == ["colour", "size", "material"]


def test_a_facet_leaves_out_its_own_filter_but_applies_the_others(api_client, shop):
    # when
    response = api_client.get(PRODUCTS, {"attr": "colour:black", "facets": "colour,size,material"})

    # then: colour is counted as if unfiltered; size and material among black variants
    assert names(response) == ["Black Tee", "Wool Jumper"]
    assert facets_of(response) == {
        "colour": {"black": 2, "white": 3, "red": 1},
        "size": {"s": 1, "m": 1, "l": 1},
        "material": {"cotton": 1, "wool": 1},
    }


def test_facets_count_within_the_search_price_and_country(api_client, shop):
    # when
    searched = api_client.get(PRODUCTS, {"search": "tee", "facets": "colour"})
    in_germany = api_client.get(PRODUCTS, {"country": "DE", "facets": "colour,size"})
    cheap = api_client.get(PRODUCTS, {"max_price": "20", "facets": "size"})

    # then
    assert facets_of(searched) == {"colour": {"black": 1, "white": 2, "red": 1}}
    assert facets_of(in_germany) == {"colour": {"black": 1, "white": 1}, "size": {"m": 1, "l": 1}}
    assert facets_of(cheap) == {"size": {"s": 1, "m": 2}}


def test_a_facet_with_no_matching_value_is_an_empty_list(api_client, shop):
    # when
    response = api_client.get(PRODUCTS, {"category": "home", "facets": "colour"})

    # then
    assert names(response) == ["Plain Mug"]
    assert response.json()["facets"] == {"colour": []}


def test_an_unknown_or_unfilterable_facet_is_an_empty_list(api_client, shop):
    # when
    response = api_client.get(PRODUCTS, {"facets": "nope,care,size"})
    only_unknown = api_client.get(PRODUCTS, {"facets": "nope"})

    # then
    assert response.json()["facets"] == {
        "nope": [],
        "care": [],
        "size": [
            {"slug": "s", "name": "S", "count": 2},
            {"slug": "m", "name": "M", "count": 2},
            {"slug": "l", "name": "L", "count": 3},
        ],
    }
    assert only_unknown.json()["facets"] == {"nope": []}


def test_no_facets_no_member(api_client, shop):
    # when
    response = api_client.get(PRODUCTS)

    # then
    assert "facets" not in response.json()


def test_all_facets_are_counted_in_one_query(api_client, shop, django_user_model):
    # given: the first request of each shape fills the cache; catalog staff read uncached
    def queries(params: dict[str, str]) -> list[str]:
        with CaptureQueriesContext(connection) as captured:
            assert api_client.get(PRODUCTS, params).status_code == 200
        return [query["sql"] for query in captured.captured_queries]

    # when
    plain = queries({"search": "tee"})
    one = queries({"search": "tee", "facets": "colour"})
    three = queries({"search": "tee", "facets": "colour,size,material", "attr": "colour:red"})

    # then: facets cost the attribute lookup, however many there are: they are counted in
    # the one statement that also counts the matches and reads the page's ids
    assert len(one) == len(plain) + 1
    assert len(three) == len(one)
    assert sum("facet_value" in sql for sql in three) == 1
    assert sum("facet_value" in sql for sql in plain) == 0


def test_cached_pages_key_on_every_filter(api_client, shop):
    # given: a page cached for black
    assert names(api_client.get(PRODUCTS, {"attr": "colour:black"})) == [
        "Black Tee",
        "Wool Jumper",
    ]

    # when: other attr values, a country, facets
    both = api_client.get(PRODUCTS, {"attr": ["colour:black", "colour:red"]})
    reordered = api_client.get(PRODUCTS, {"attr": ["colour:red", "colour:black"]})
    in_germany = api_client.get(PRODUCTS, {"attr": "colour:black", "country": "DE"})
    faceted = api_client.get(PRODUCTS, {"attr": "colour:black", "facets": "size"})

    # then
    assert names(both) == names(reordered) == ["Black Tee", "Rainbow Tee", "Wool Jumper"]
    assert names(in_germany) == ["Wool Jumper"]
    assert facets_of(faceted) == {"size": {"s": 1, "m": 1, "l": 1}}


def test_page_links_keep_every_attribute_value(api_client, shop):
    # when
    response = api_client.get(
        PRODUCTS, {"attr": ["colour:white", "colour:black"], "page_size": 1, "facets": "size"}
    )

    # then
    next_link = response.json()["next"]
    assert next_link.startswith(f"{PRODUCTS}?")
    assert "attr=colour%3Ablack" in next_link
    assert "attr=colour%3Awhite" in next_link
    assert "facets=size" in next_link
    assert response.json()["count"] == 4
    following = api_client.get(next_link).json()
    assert following["count"] == 4
    assert following["results"][0]["name"] != response.json()["results"][0]["name"]


# --- Bad input: 400 problem+json ---------------------------------------------------------------


@pytest.mark.usefixtures("shop")
@pytest.mark.parametrize(
    ("query", "pointer"),
    [
        ({"attr": "colour"}, "#/attr"),
        ({"attr": "colour:"}, "#/attr"),
        ({"attr": ":black"}, "#/attr"),
        ({"attr": "colour:bl ack"}, "#/attr"),
        ({"attr": "colour:black\x00"}, "#/attr"),
        ({"attr": ""}, "#/attr"),
        ({"attr": [f"colour:v{n}" for n in range(21)]}, "#/attr"),
        ({"facets": "colour,"}, "#/facets"),
        ({"facets": "a,b,c,d,e,f"}, "#/facets"),
        ({"facets": ""}, "#/facets"),
        ({"country": "DEU"}, "#/country"),
        ({"country": "D1"}, "#/country"),
        ({"country": ""}, "#/country"),
        ({"min_price": "-1"}, "#/min_price"),
        ({"max_price": "NaN"}, "#/max_price"),
        ({"in_stock": "maybe"}, "#/in_stock"),
        ({"category": "a/b"}, "#/category"),
    ],
)
def test_bad_filters_are_a_400_problem(api_client, query, pointer):
    # when
    response = api_client.get(PRODUCTS, query)

    # then
    assert_invalid(response, pointer)


def test_the_schema_documents_the_new_parameters_and_facets(api_client):
    # when
    schema = api_client.get("/api/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

    # then
    operation = schema["paths"]["/api/products/"]["get"]
    parameters = {parameter["name"]: parameter for parameter in operation["parameters"]}
    assert parameters["attr"]["schema"]["type"] == "array"
    assert parameters["attr"]["schema"]["maxItems"] == 20
    assert parameters["facets"]["schema"]["pattern"].startswith("^")
    assert parameters["country"]["schema"]["pattern"] == "^[A-Za-z]{2}$"
    page = operation["responses"]["200"]["content"]["application/json"]["schema"]
    if "$ref" in page:
        page = schema["components"]["schemas"][page["$ref"].rsplit("/", 1)[1]]
    assert "facets" in page["properties"]


@pytest.mark.usefixtures("shop")
@pytest.mark.parametrize(
    "query",
    [
        {"category": "0", "facets": "colour"},
        {"category": "nowhere", "facets": "colour,size"},
        {"attr": "0:0", "category": "0", "country": "AA", "facets": "0", "in_stock": "true"},
        {"attr": "0:0", "facets": "colour", "min_price": "0", "max_price": "0"},
        {"search": "---", "facets": "colour"},
    ],
)
def test_facets_of_an_empty_list_are_empty(api_client, query):
    # when
    response = api_client.get(PRODUCTS, query)

    # then
    assert names(response) == []
    assert all(values == [] for values in response.json()["facets"].values())
