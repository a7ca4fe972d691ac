"""Reads of the catalog: querysets for staff, cached rendered JSON for the public."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import BooleanField, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.functions import Upper
from rest_framework.renderers import JSONRenderer

from apps.catalog import cache
from apps.catalog.exceptions import ProductNotFound
from apps.catalog.models import Category, Product, StockMovement
from apps.catalog.serializers import ProductDetailOutputSerializer
from ecommerce import caching

# Query parameters that change a public list page; anything else is ignored (and not keyed).
LIST_PARAMS = (
    "category",
    "min_price",
    "max_price",
    "in_stock",
    "search",
    "ordering",
    "page",
    "page_size",
)


def products(*, include_inactive: bool = False) -> QuerySet[Product]:
    queryset = Product.objects.select_related("category")
    return queryset if include_inactive else queryset.filter(is_active=True)


def lookup_filter(lookup: str) -> dict[str, Any]:
    """A product is addressed by SKU (any case) or numeric id."""
    return {"pk": int(lookup)} if lookup.isdigit() else {"sku__iexact": lookup}


def get_product(*, lookup: str, include_inactive: bool = False) -> Product:
    product = products(include_inactive=include_inactive).filter(**lookup_filter(lookup)).first()
    if product is None:
        raise ProductNotFound(lookups=[lookup])
    return product


def render_json(data: Any) -> bytes:
    return JSONRenderer().render(data)


def product_detail_json(*, lookup: str) -> bytes:
    """The public detail of an active product as JSON bytes, read through the cache.

    Raises ProductNotFound for unknown and inactive products.
    """
    cache_lookup = f"id:{int(lookup)}" if lookup.isdigit() else f"sku:{lookup.lower()}"

    def compute() -> bytes | None:
        product = products().filter(**lookup_filter(lookup)).first()
        return None if product is None else render_json(ProductDetailOutputSerializer(product).data)

    body = caching.read_through(
        name=cache.DETAIL,
        key=cache.detail_key(cache_lookup),
        generation_key=cache.detail_generation_key(cache_lookup),
        compute=compute,
        ttl_seconds=settings.CATALOG_CACHE_TTL_SECONDS,
    )
    if body is None:
        raise ProductNotFound(lookups=[lookup])
    return body


def product_list_json(*, query: Mapping[str, str], render: Callable[[], bytes]) -> bytes:
    """A public list page as JSON bytes, read through the cache.

    The key holds the catalog's list generation, so any product change retires every page.
    """
    normalized = "&".join(f"{name}={query[name]}" for name in LIST_PARAMS if name in query)
    digest = hashlib.blake2b(normalized.encode(), digest_size=16).hexdigest()
    generation = caching.current_generation(cache.LIST, cache.LIST_GENERATION_KEY)
    if generation is None:  # cache unavailable
        return render()
    body = caching.read_through(
        name=cache.LIST,
        key=f"catalog:list:{generation.decode()}:{digest}",
        generation_key=cache.LIST_GENERATION_KEY,
        compute=render,
        ttl_seconds=settings.CATALOG_CACHE_TTL_SECONDS,
    )
    return body if body is not None else render()


# Bounds on one public search, so an anonymous caller cannot make one request cost much.
SEARCH_MAX_CHARS = 100
SEARCH_MAX_WORDS = 8
# The stored document the GIN index catalog_product_search covers (migration catalog.0005):
# name and SKU cut into words at every run of non-alphanumerics. Not a model field: only
# this query reads it (tests/catalog/test_search.py checks that the plan uses the index).
SEARCH_DOCUMENT_SQL = '"catalog_product"."search_document"'
_WORD = re.compile(r"[^\W_]+")


def search_words(terms: Iterable[str]) -> list[str]:
    """The words of a search, lower-cased, as the index cuts them (`T-Shirt`: `t`, `shirt`)."""
    return [word for term in terms for word in _WORD.findall(term.lower())]


def search_products(queryset: QuerySet[Product], *, words: Sequence[str]) -> QuerySet[Product]:
    """The products whose name or SKU has a word starting with each of `words`.

    One-character words match whole words only: as prefixes they would match half the
    catalog. On PostgreSQL this is a full-text match served by the GIN index; embedded
    SQLite falls back to a substring match. Callers bound `words` (SEARCH_MAX_WORDS).
    """
    if not words:
        return queryset.none()
    if connection.vendor != "postgresql":
        for word in words:
            queryset = queryset.filter(Q(name__icontains=word) | Q(sku__icontains=word))
        return queryset
    # Words are alphanumeric only, so they cannot carry tsquery syntax; the SQL around
    # them is a constant and they travel as a parameter.
    tsquery = " & ".join(word if len(word) == 1 else f"{word}:*" for word in words)
    match = f"{SEARCH_DOCUMENT_SQL} @@ to_tsquery('simple'::regconfig, %s)"
    # The match is stated twice on purpose. PostgreSQL guesses 0.5% of the table for a
    # prefix it has no statistics on (a SKU's digits), so a search that finds one product
    # was planned as a walk of the whole name index in search of a first page of "475"
    # rows. Stated twice, the guess is squared: a search is then read from the GIN index
    # and sorted (cost bounded by its matches), and the walk is left to words so common
    # that it ends within a few hundred rows. The second test is free (index condition).
    return queryset.filter(
        RawSQL(  # noqa: S611
            f"({match}) AND ({match})", (tsquery, tsquery), output_field=BooleanField()
        )
    )


def movements_of(*, product: Product) -> QuerySet[StockMovement]:
    return StockMovement.objects.filter(product=product).select_related("actor")


def category_tree(*, include_inactive: bool = False) -> list[Category]:
    """Root categories, each with `tree_children` filled, from one query.

    Without `include_inactive` an inactive category hides its whole subtree.
    """
    queryset = (
        Category.objects.all() if include_inactive else Category.objects.filter(is_active=True)
    )
    by_parent: dict[int | None, list[Category]] = {}
    nodes = list(queryset.order_by("name"))
    for node in nodes:
        by_parent.setdefault(node.parent_id, []).append(node)
    for node in nodes:
        node.tree_children = by_parent.get(node.pk, [])  # type: ignore[attr-defined]
    return by_parent.get(None, [])


def products_for_order(*, lookups: Iterable[str]) -> dict[str, Product]:
    """Active products keyed by the lookup each was asked for (SKU in any case, or id).

    Unknown and inactive products are absent from the result. One query, served by the
    primary key and the unique index on UPPER(sku).
    """
    wanted = list(dict.fromkeys(lookups))
    ids = [int(value) for value in wanted if value.isdigit()]
    skus = [value.upper() for value in wanted if not value.isdigit()]
    rows = (
        Product.objects.filter(is_active=True)
        .annotate(sku_upper=Upper("sku"))
        .filter(Q(pk__in=ids) | Q(sku_upper__in=skus))
    )
    found: dict[str, Product] = {}
    for product in rows:
        found[str(product.pk)] = product
        found[product.sku.upper()] = product
    return {
        value: found[key]
        for value in wanted
        if (key := value if value.isdigit() else value.upper()) in found
    }
