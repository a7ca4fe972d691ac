"""`?search=` on the product list: what it matches (name, description, SKUs, attribute
values, typos), how it ranks, that the search document follows every write, its bounds,
and that PostgreSQL answers it from the GIN indexes of migration catalog.0008."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test import RequestFactory
from rest_framework.request import Request

from apps.catalog import selectors, services
from apps.catalog.models import Attribute, AttributeValue, Product, ProductType, ProductVariant
from apps.catalog.search import SEARCH_PATTERN, ProductSearchFilter, rebuild_search_documents
from apps.catalog.services import VariantSpec
from tests.catalog.asserts import assert_invalid
from tests.catalog.factories import make_product

pytestmark = pytest.mark.django_db

PRODUCTS = "/api/products"


def skus(response: Any) -> list[str]:
    assert response.status_code == 200, response.content
    assert response.json()["count"] == len(response.json()["results"])
    return sorted(row["sku"] for row in response.json()["results"])


def ranked(response: Any) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["name"] for row in response.json()["results"]]


@pytest.fixture
def wardrobe() -> None:
    make_product(sku="TEE-NAV-M-000123", name="Classic Navy Cotton T-Shirt")
    make_product(sku="TEE-BLU-S-000124", name="Slim Blue Linen T-Shirt")
    make_product(sku="SWT-BLU-L-000200", name="Blue Wool Sweater")
    make_product(sku="MUG-S-1", name="Café Crème Mug", description="Holds the morning's tea.")
    make_product(sku="JNS-BLK-M-000300", name="Slim Black Jeans", is_active=False)


# --- What a search matches ---------------------------------------------------------------------


@pytest.mark.usefixtures("wardrobe")
@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("shirt", ["TEE-BLU-S-000124", "TEE-NAV-M-000123"]),
        ("shirts", ["TEE-BLU-S-000124", "TEE-NAV-M-000123"]),  # stemmed
        ("t-shirt", ["TEE-BLU-S-000124", "TEE-NAV-M-000123"]),
        ("tshirt", ["TEE-BLU-S-000124", "TEE-NAV-M-000123"]),
        ("BLU", ["SWT-BLU-L-000200", "TEE-BLU-S-000124"]),
        ("blu shi", ["TEE-BLU-S-000124"]),
        ("blue,wool", ["SWT-BLU-L-000200"]),
        ('"navy cotton"', ["TEE-NAV-M-000123"]),
        ("classic navy cotton", ["TEE-NAV-M-000123"]),
        ("the navy shirt", ["TEE-NAV-M-000123"]),  # a stop word asks for nothing
        ("tee-nav", ["TEE-NAV-M-000123"]),
        ("000200", ["SWT-BLU-L-000200"]),
        ("café", ["MUG-S-1"]),
        ("CRÈME", ["MUG-S-1"]),
        ("morning tea", ["MUG-S-1"]),  # the description
        # A one-letter word is a whole word (the size S), not a prefix of half the catalog.
        ("s", ["MUG-S-1", "TEE-BLU-S-000124"]),
        ("slim", ["TEE-BLU-S-000124"]),  # the slim jeans are retired
        # typos, against the name
        ("tshrit", ["TEE-BLU-S-000124", "TEE-NAV-M-000123"]),
        ("cotten", ["TEE-NAV-M-000123"]),
        ("sweatr", ["SWT-BLU-L-000200"]),
        ("otton", ["TEE-NAV-M-000123"]),  # a dropped letter is a typo too
        ("ottn", []),  # but not two
        ("jeans", []),
        ("---", []),
        ("  ", ["MUG-S-1", "SWT-BLU-L-000200", "TEE-BLU-S-000124", "TEE-NAV-M-000123"]),
    ],
)
def test_search_matches_words_of_the_document_or_names_close_to_them(api_client, search, expected):
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


def test_a_name_match_ranks_above_a_description_match(api_client):
    # given: in name order the description match would come first
    make_product(sku="APR-1", name="Apron", description="Made of heavy linen.")
    make_product(sku="SHT-1", name="Zebra Linen Shirt")
    make_product(sku="MUG-2", name="Linen Mug Cosy", description="Linen, linen and linen.")

    # when
    best_first = api_client.get(PRODUCTS, {"search": "linen"})
    by_name = api_client.get(PRODUCTS, {"search": "linen", "ordering": "name"})

    # then
    assert ranked(best_first)[-1] == "Apron"
    assert set(ranked(best_first)[:2]) == {"Zebra Linen Shirt", "Linen Mug Cosy"}
    assert ranked(by_name) == ["Apron", "Linen Mug Cosy", "Zebra Linen Shirt"]


def test_an_exact_name_ranks_above_a_typo_match(api_client):
    # given
    make_product(sku="TEE-1", name="Tshirt Dress")
    make_product(sku="TEE-2", name="Plain T-Shirt", description="A tshirt.")

    # when
    response = api_client.get(PRODUCTS, {"search": "tshirt"})

    # then: both match; the one whose name holds the word exactly comes first
    assert ranked(response) == ["Tshirt Dress", "Plain T-Shirt"]


@pytest.fixture
def garment() -> ProductType:
    colour = Attribute.objects.create(name="Colour", slug="colour")
    for order, name in enumerate(["Burgundy", "Ivory"]):
        AttributeValue.objects.create(
            attribute=colour, name=name, slug=name.lower(), sort_order=order
        )
    material = Attribute.objects.create(name="Material", slug="material")
    AttributeValue.objects.create(attribute=material, name="Cashmere", slug="cashmere")
    AttributeValue.objects.create(attribute=material, name="Merino", slug="merino")
    kind = ProductType.objects.create(name="Garment", slug="garment")
    kind.product_attributes.set([material])
    kind.variant_attributes.set([colour])
    return kind


def _scarf(kind: ProductType) -> Product:
    return services.create_product(
        name="Scarf",
        product_type=kind,
        attributes={"material": "cashmere"},
        variants=[
            VariantSpec(sku="SCF-BRG", price=Decimal("30.00"), attributes={"colour": "burgundy"}),
            VariantSpec(sku="SCF-IVR", price=Decimal("30.00"), attributes={"colour": "ivory"}),
        ],
    )


def test_every_variant_sku_and_attribute_value_finds_its_product(api_client, garment):
    # given
    _scarf(garment)
    make_product(sku="HAT-1", name="Hat")

    # when / then
    for search in ("scf-brg", "SCF-IVR", "ivr", "burgundy", "ivory", "cashmere", "scarf ivory"):
        assert skus(api_client.get(PRODUCTS, {"search": search})) == ["SCF-BRG"], search
    assert skus(api_client.get(PRODUCTS, {"search": "merino"})) == []


def test_the_search_document_follows_every_write(
    api_client, garment, django_capture_on_commit_callbacks
):
    # given
    scarf = _scarf(garment)

    def found(search: str) -> bool:
        return skus(api_client.get(PRODUCTS, {"search": search})) == ["SCF-BRG"]

    assert found("scarf")
    assert found("ivory")

    # when: a variant is added, a product renamed and described, a value renamed
    with django_capture_on_commit_callbacks(execute=True):
        services.add_variant(
            product=scarf,
            spec=VariantSpec(
                sku="SCF-NEW-9", price=Decimal("31.00"), attributes={"colour": "ivory"}
            ),
        )
        services.update_product(product=scarf, name="Stole", description="Woven in Hawick.")
        AttributeValue.objects.filter(slug="ivory").update(name="Pearl")

    # then
    assert found("scf-new-9")
    assert found("stole")
    assert found("hawick")
    assert not found("scarf")
    assert found("pearl")
    assert not found("ivory")

    # when: the ivory variants are taken off sale, the product's material changes (and
    # the cached pages are retired, as on commit)
    with django_capture_on_commit_callbacks(execute=True):
        for sku in ("SCF-IVR", "SCF-NEW-9"):
            services.update_variant(variant=ProductVariant.objects.get(sku=sku), is_active=False)
        services.update_product(product=scarf, attributes={"material": "merino"})

    # then: their SKUs and values no longer find it, the new material does
    assert not found("scf-ivr")
    assert not found("pearl")
    assert found("merino")
    assert not found("cashmere")
    assert found("burgundy")

    # when: its last variant on sale is taken off sale, then put back
    with django_capture_on_commit_callbacks(execute=True):
        services.update_variant(variant=ProductVariant.objects.get(sku="SCF-BRG"), is_active=False)
    hidden = api_client.get(PRODUCTS, {"search": "stole"}).json()["count"]
    with django_capture_on_commit_callbacks(execute=True):
        services.update_variant(variant=ProductVariant.objects.get(sku="SCF-BRG"), is_active=True)

    # then: the product left the list (its `on_sale` column, migration 0009) and came back
    assert hidden == 0
    assert found("stole")


def _names_of(response: Any) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["name"] for row in response.json()["results"]]


def test_only_the_best_matches_by_text_rank_are_ranked_by_name_similarity_too(
    api_client, monkeypatch
):
    # given: the same text rank (the name holds `linen` once), older first; the newer
    # name holds the word exactly, the older one only as `linens` (stemmed alike)
    make_product(sku="LIN-1", name="Linens Bundle")
    make_product(sku="LIN-2", name="Grey Linen")

    # when: both are among the SEARCH_RANKED best, then only the first is
    both = api_client.get(PRODUCTS, {"search": "linen"})
    monkeypatch.setattr("apps.catalog.filters.SEARCH_RANKED", 1)
    first_only = api_client.get(PRODUCTS, {"search": "linen", "page_size": 2})  # not cached
    pages = [
        api_client.get(PRODUCTS, {"search": "linen", "page_size": 1, "page": n}) for n in (1, 2)
    ]

    # then: the similarity decides among the ranked ones; the rest follow by text rank
    # (here: by id), and pages neither repeat nor skip a product
    assert _names_of(both) == ["Grey Linen", "Linens Bundle"]
    assert _names_of(first_only) == ["Linens Bundle", "Grey Linen"]
    assert [name for page in pages for name in _names_of(page)] == _names_of(first_only)
    assert {page.json()["count"] for page in pages} == {2}


@pytest.mark.usefixtures("wardrobe")
@pytest.mark.parametrize("page", ["2", "99999999999999999999999"])
def test_a_search_page_past_the_last_is_a_404(api_client, page):
    # when
    response = api_client.get(PRODUCTS, {"search": "shirt", "facets": "colour", "page": page})

    # then
    assert response.status_code == 404, response.content
    assert response["Content-Type"].startswith("application/problem+json")


@pytest.mark.usefixtures("wardrobe")
def test_a_search_in_price_order_pages_through_every_match(api_client):
    # when
    pages = [
        api_client.get(
            PRODUCTS, {"search": "blue", "ordering": "-price,name", "page_size": 1, "page": n}
        )
        for n in (1, 2)
    ]

    # then
    assert [name for page in pages for name in _names_of(page)] == [
        "Blue Wool Sweater",
        "Slim Blue Linen T-Shirt",
    ]


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


@pytest.mark.parametrize("search", ["shirt", "blu shi", "tee-nav 000123", "tshrit"])
@pytest.mark.parametrize("count", [True, False], ids=["count", "page"])
def test_the_search_query_is_answered_from_the_gin_indexes(search, count):
    # given: a catalog large enough to plan for, with the table scan priced out, so a plan
    # without the index means the query's expression no longer matches the index's
    assert connection.vendor == "postgresql"
    products = Product.objects.bulk_create(
        Product(name=f"Stoneware Mug {n}", price=Decimal("1.00")) for n in range(2000)
    )
    ProductVariant.objects.bulk_create(
        ProductVariant(product=product, sku=f"MUG-{n:05d}", price=Decimal("1.00"))
        for n, product in enumerate(products)
    )
    make_product(sku="TEE-NAV-M-000123", name="Classic Navy Cotton T-Shirt")
    make_product(sku="TEE-BLU-S-000124", name="Slim Blue Linen T-Shirt")
    with connection.cursor() as cursor:
        # Rows inserted since the index was built wait in its pending list, which the
        # planner prices as a scan of the list; autovacuum flushes it in real life.
        for index in ("catalog_product_search", "catalog_product_search_name_trgm"):
            cursor.execute("SELECT gin_clean_pending_list(%s::regclass)", [index])
        cursor.execute("ANALYZE catalog_product")
        cursor.execute("SET LOCAL enable_seqscan = off")

    # when
    plan = plan_of(search, count=count)

    # then: the document's index, or for a typo (nothing has the word) the names' trigrams
    index = "catalog_product_search_name_trgm" if search == "tshrit" else "catalog_product_search "
    assert f"Bitmap Index Scan on {index}" in plan, plan
    assert "Seq Scan on catalog_product " not in plan, plan


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


def test_a_rebuild_writes_the_documents_the_triggers_keep(garment):
    # given: documents written by the triggers, one product per kind of content
    _scarf(garment)
    make_product(sku="MUG-9", name="Mug", description="Stoneware.")
    make_product(sku="OLD-1", name="Old", is_active=False)

    ProductVariant.objects.filter(sku="OLD-1").update(is_active=False)

    def documents() -> list[tuple[int, str, str, bool]]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, search_document::text, facet_values::text, on_sale "
                "FROM catalog_product ORDER BY id"
            )
            return cursor.fetchall()

    kept = documents()

    # when
    rebuilt = rebuild_search_documents()

    # then
    assert rebuilt == len(kept) == 3
    assert documents() == kept
    assert "'cashmer':" in kept[0][1]
    assert "'scf':" in kept[0][1]
    assert len(kept[0][2].strip("{}").split(",")) == 3  # cashmere, burgundy, ivory
    assert kept[2][2] == "{}"  # no variant attributes at all
    assert [row[3] for row in kept] == [True, True, False]  # OLD-1's one variant is off sale
