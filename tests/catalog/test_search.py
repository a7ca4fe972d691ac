"""`?search=` on the product list: what it matches, its bounds, and that PostgreSQL answers
it from the full-text GIN index (migration catalog.0005) rather than by reading the table."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test import RequestFactory
from rest_framework.request import Request

from apps.catalog import selectors
from apps.catalog.models import Product
from apps.catalog.search import SEARCH_PATTERN, ProductSearchFilter
from tests.catalog.asserts import assert_invalid
from tests.catalog.factories import make_product

pytestmark = pytest.mark.django_db

PRODUCTS = "/api/products"


def skus(response: Any) -> list[str]:
    assert response.status_code == 200, response.content
    assert response.json()["count"] == len(response.json()["results"])
    return sorted(row["sku"] for row in response.json()["results"])


@pytest.fixture
def wardrobe() -> None:
    make_product(sku="TEE-NAV-M-000123", name="Classic Navy Cotton T-Shirt")
    make_product(sku="TEE-BLU-S-000124", name="Slim Blue Linen T-Shirt")
    make_product(sku="SWT-BLU-L-000200", name="Blue Wool Sweater")
    make_product(sku="MUG-S-1", name="Café Crème Mug")
    make_product(sku="JNS-BLK-M-000300", name="Slim Black Jeans", is_active=False)


# --- What a search matches ---------------------------------------------------------------------


@pytest.mark.usefixtures("wardrobe")
@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("shirt", ["TEE-BLU-S-000124", "TEE-NAV-M-000123"]),
        ("t-shirt", ["TEE-BLU-S-000124", "TEE-NAV-M-000123"]),
        ("BLU", ["SWT-BLU-L-000200", "TEE-BLU-S-000124"]),
        ("blu shi", ["TEE-BLU-S-000124"]),
        ("blue,wool", ["SWT-BLU-L-000200"]),
        ('"navy cotton"', ["TEE-NAV-M-000123"]),
        ("classic navy cotton", ["TEE-NAV-M-000123"]),
        ("tee-nav", ["TEE-NAV-M-000123"]),
        ("000200", ["SWT-BLU-L-000200"]),
        ("café", ["MUG-S-1"]),
        ("CRÈME", ["MUG-S-1"]),
        # A one-letter word is a whole word (the size S), not a prefix of half the catalog.
        ("s", ["MUG-S-1", "TEE-BLU-S-000124"]),
        ("slim", ["TEE-BLU-S-000124"]),  # the slim jeans are retired
        ("shrit", []),  # no fuzzy matching
        ("otton", []),  # words match from their start
        ("---", []),
        ("  ", ["MUG-S-1", "SWT-BLU-L-000200", "TEE-BLU-S-000124", "TEE-NAV-M-000123"]),
    ],
)
def test_search_matches_every_word_as_a_word_prefix_of_name_or_sku(api_client, search, expected):
    # when
    response = api_client.get(PRODUCTS, {"search": search})

    # then
    assert skus(response) == expected


@pytest.mark.usefixtures("wardrobe")
def test_search_words_that_look_like_tsquery_syntax_are_plain_words(api_client):
    # when
    negated = api_client.get(PRODUCTS, {"search": "blue & !wool"})
    operators = api_client.get(PRODUCTS, {"search": "blue | (:* <-> 'x' ) \\"})

    # then: `!` negates nothing, and only words remain (blue, x: nothing has both)
    assert skus(negated) == ["SWT-BLU-L-000200"]
    assert skus(operators) == []


# --- Bounds: a 400 problem, not a slow query ---------------------------------------------------


@pytest.mark.usefixtures("wardrobe")
def test_a_search_of_the_maximum_length_and_word_count_is_answered(api_client):
    # given: 8 words, 100 characters
    search = "blue " * 7 + "b" * 65
    assert (len(search), len(search.split())) == (100, 8)

    # when
    response = api_client.get(PRODUCTS, {"search": search})

    # then
    assert skus(response) == []


@pytest.mark.parametrize(
    ("search", "detail"),
    [
        ("x" * 101, "A search is at most 100 characters."),
        ("a b c d e f g h i", "A search has at most 8 words."),
        ("a,b,c,d,e,f,g,h,i", "A search has at most 8 words."),
        ("a\tb\nc d e f g h i", "A search has at most 8 words."),
        ("blue\x00", "A search cannot contain control characters."),
        ("blue\x1bshirt", "A search cannot contain control characters."),
        ("blue\x85", "A search cannot contain control characters."),
        ("\x1f", "A search cannot contain control characters."),
    ],
    ids=[
        "101-chars",
        "9-words",
        "9-words-by-commas",
        "9-words-by-tabs-and-newlines",
        "nul",
        "escape",
        "c1-control",
        "only-a-control",
    ],
)
def test_a_search_past_its_bounds_is_a_400_problem(api_client, search, detail):
    # given
    make_product(sku="blue-1", name="Blue")

    # when
    response = api_client.get(PRODUCTS, {"search": search})

    # then
    errors = assert_invalid(response, "#/search")
    assert [error["detail"] for error in errors] == [detail]


def test_the_schema_publishes_the_search_bound(api_client):
    # when
    schema = api_client.get("/api/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

    # then
    (operation,) = [
        item["get"] for path, item in schema["paths"].items() if path.rstrip("/") == PRODUCTS
    ]
    (search,) = [p for p in operation["parameters"] if p["name"] == "search"]
    assert search["schema"] == {"type": "string", "maxLength": 100, "pattern": SEARCH_PATTERN}


# --- The index serves the query ----------------------------------------------------------------


def plan_of(search: str, *, count: bool) -> str:
    request = Request(RequestFactory().get(PRODUCTS, {"search": search}))
    queryset = ProductSearchFilter().filter_queryset(request, selectors.products(), None)
    if count:
        sql, params = queryset.values("pk").query.sql_with_params()
        with connection.cursor() as cursor:
            # The SQL is Django's own compilation of the queryset; the words are parameters.
            cursor.execute(f"EXPLAIN SELECT count(*) FROM ({sql}) AS page", params)  # noqa: S608
            return "\n".join(row[0] for row in cursor.fetchall())
    return queryset.order_by("name", "pk")[:20].explain()


@pytest.mark.parametrize("search", ["shirt", "blu shi", "tee-nav 000123"])
@pytest.mark.parametrize("count", [True, False], ids=["count", "page"])
def test_the_search_query_is_answered_from_the_full_text_index(search, count):
    # given: a catalog large enough to plan for, with the table scan priced out, so a plan
    # without the index means the query's expression no longer matches the index's
    assert connection.vendor == "postgresql"
    Product.objects.bulk_create(
        Product(sku=f"MUG-{n:05d}", name=f"Stoneware Mug {n}", price=Decimal("1.00"))
        for n in range(2000)
    )
    make_product(sku="TEE-NAV-M-000123", name="Classic Navy Cotton T-Shirt")
    make_product(sku="TEE-BLU-S-000124", name="Slim Blue Linen T-Shirt")
    with connection.cursor() as cursor:
        # Rows inserted since the index was built wait in its pending list, which the
        # planner prices as a scan of the list; autovacuum flushes it in real life.
        cursor.execute("SELECT gin_clean_pending_list('catalog_product_search'::regclass)")
        cursor.execute("ANALYZE catalog_product")
        cursor.execute("SET LOCAL enable_seqscan = off")

    # when
    plan = plan_of(search, count=count)

    # then
    assert "Bitmap Index Scan on catalog_product_search" in plan, plan
    assert "Seq Scan on catalog_product" not in plan, plan


@pytest.mark.parametrize(
    "search",
    [
        "",
        "blue",
        "blu shi\n",
        " ,blue,\tshirt ",
        "a b c d e f g h",
        "a b c d e f g h i",
        "tee-nav-m-1-2 blue wool x y",
        "\u3000",
        "blue\x00",
        "\x1f",
        "blue\x85",
        "x" * 100,
        "x" * 101,
    ],
)
def test_the_published_pattern_accepts_exactly_what_the_server_answers(api_client, search):
    # when
    response = api_client.get(PRODUCTS, {"search": search})
    schema_accepts = len(search) <= 100 and re.match(SEARCH_PATTERN, search) is not None

    # then
    assert response.status_code == (200 if schema_accepts else 400)
