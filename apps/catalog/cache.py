"""Cache keys of the catalog's read models, and their invalidation on commit.

Product details are cached under each way they are looked up (`id:` and `sku:`) with a
per-product generation; list pages carry a catalog-wide list generation in their key, so
any product change retires every cached page at once.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction

from ecommerce import caching

DETAIL = "product_detail"
LIST = "product_list"
LIST_GENERATION_KEY = "catalog:list:gen"


def detail_key(lookup: str) -> str:
    """`lookup` is `id:<pk>` or `sku:<sku>`."""
    return f"catalog:product:{lookup}"


def detail_generation_key(lookup: str) -> str:
    return f"catalog:product:{lookup}:gen"


def lookups_for(*, pk: int, sku: str) -> tuple[str, str]:
    return (f"id:{pk}", f"sku:{sku.lower()}")


def invalidate_products_on_commit(products: Iterable[tuple[int, str]]) -> None:
    """Retire cached details of `(pk, sku)` pairs and every list page, once committed.

    A rolled-back transaction never runs the callback, so it invalidates nothing.
    """
    lookups = [lookup for pk, sku in products for lookup in lookups_for(pk=pk, sku=sku)]

    def invalidate() -> None:
        caching.invalidate(
            name=DETAIL,
            generation_keys=[LIST_GENERATION_KEY, *map(detail_generation_key, lookups)],
            keys=[detail_key(lookup) for lookup in lookups],
        )

    transaction.on_commit(invalidate)
