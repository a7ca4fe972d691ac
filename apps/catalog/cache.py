"""Cache keys of the catalog's read models, and their invalidation on commit.

A product's public detail is cached once, under its id, with a per-product generation.
A SKU lookup finds the product id first (`catalog:v3:sku:<SKU>`: the product of an active
variant with that SKU, or absent). A variant's SKU and product never change and variants
are never deleted, so that entry is retired only when a SKU is created or a variant's
activity changes. So a change to a product, to its attribute values or media, or to the
price, stock or values of any of its variants, retires exactly one detail entry, which
every lookup of the product (its id, each of its SKUs) reads. List pages carry a
catalog-wide list generation in their key, so any product change retires every cached
page at once.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction

from ecommerce import caching

# Every key starts with this. Bump the version whenever a cached body changes shape (a
# field added, renamed or reformatted): a deploy then reads fresh entries instead of
# serving the old shape until the TTL runs out. v2: category as {id, slug, name} in lists,
# prices with their currency's places. v3: entries carry their ETag and render time
# (ecommerce.caching.stamp).
PREFIX = "catalog:v3"

DETAIL = "product_detail"
# SKU -> product id lookups, counted apart from the details they lead to.
SKU = "product_sku"
LIST = "product_list"
LIST_GENERATION_KEY = f"{PREFIX}:list:gen"


# A product's detail is DETAIL_KEY_PREFIX + its id; a list page LIST_KEY_PREFIX + the list
# generation + ":" + its query's digest (apps.catalog.selectors.list_page_digest).
DETAIL_KEY_PREFIX = f"{PREFIX}:product:"
LIST_KEY_PREFIX = f"{PREFIX}:list:"


def detail_key(product_id: int) -> str:
    return f"{DETAIL_KEY_PREFIX}{product_id}"


def list_page_key(generation: str, digest: str) -> str:
    return f"{LIST_KEY_PREFIX}{generation}:{digest}"


def detail_generation_key(product_id: int) -> str:
    return f"{PREFIX}:product:{product_id}:gen"


def sku_key(sku: str) -> str:
    """Where the id of the product selling `sku` is cached (any letter case)."""
    return f"{PREFIX}:sku:{sku.upper()}"


def sku_generation_key(sku: str) -> str:
    return f"{sku_key(sku)}:gen"


def invalidate_products_on_commit(product_ids: Iterable[int], *, skus: Iterable[str] = ()) -> None:
    """Retire the cached details of `product_ids` and every list page, once committed.

    `skus` are SKUs whose lookup changes: new ones (perhaps cached as unknown) and those
    of variants (de)activated. A rolled-back transaction never runs the callback, so it
    invalidates nothing.
    """
    ids = sorted(set(product_ids))
    new_skus = sorted({sku.upper() for sku in skus})

    def invalidate() -> None:
        caching.invalidate(
            name=DETAIL,
            generation_keys=[
                LIST_GENERATION_KEY,
                *map(detail_generation_key, ids),
                *map(sku_generation_key, new_skus),
            ],
            keys=[*(detail_key(pk) for pk in ids), *map(sku_key, new_skus)],
        )

    transaction.on_commit(invalidate)
