"""Reads of the catalog: querysets for staff, cached rendered JSON for the public."""

from __future__ import annotations

import contextlib
import functools
import hashlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any, cast
from urllib.parse import urlencode

from django.conf import settings
from django.db import connection
from django.db.models import OuterRef, Prefetch, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce, Upper
from django.http import QueryDict
from rest_framework.renderers import JSONRenderer

from apps.catalog import cache, search
from apps.catalog.exceptions import AttributeNotFound, ProductNotFound, ProductTypeNotFound
from apps.catalog.models import (
    AssignedProductAttribute,
    AssignedVariantAttribute,
    Attribute,
    AttributeValue,
    Category,
    Product,
    ProductMedia,
    ProductType,
    ProductVariant,
)
from apps.catalog.serializers import ProductDetailOutputSerializer
from ecommerce import caching
from ecommerce.db import prepared
from ecommerce.db.joined import Joined, link
from ecommerce.db.router import use_replica

# Query parameters that change a public list page; anything else is ignored (and not keyed).
LIST_PARAMS = (
    "category",
    "min_price",
    "max_price",
    "in_stock",
    "country",
    "attr",
    "facets",
    "search",
    "ordering",
    "page",
    "page_size",
)
# Of those, the ones read with all their values (the others: the last one given).
REPEATED_LIST_PARAMS = frozenset({"attr"})


def _active_variants(include_inactive: bool) -> QuerySet[ProductVariant]:
    variants = ProductVariant.objects.all()
    return variants if include_inactive else variants.filter(is_active=True)


def with_stock(variants: QuerySet[ProductVariant]) -> QuerySet[ProductVariant]:
    """Variants annotated with `stock_total`: units on hand in every warehouse.

    Stock rows belong to apps.inventory; the catalog only reads their sum, through the
    reverse relation, to show availability.
    """
    return variants.annotate(stock_total=Coalesce(Sum("stocks__quantity"), 0))


def products(*, include_inactive: bool = False) -> QuerySet[Product]:
    """Products with `first_sku` and `stock_total` (over their listed variants) annotated,
    and `first_media_thumbnails` (the first image's thumbnails: the list row's picture)."""
    listed = _active_variants(include_inactive).filter(product=OuterRef("pk"))
    stock = (
        listed.order_by().values("product").annotate(total=Sum("stocks__quantity")).values("total")
    )
    first_media = ProductMedia.objects.filter(product=OuterRef("pk")).order_by("sort_order", "pk")
    queryset = Product.objects.select_related("category", "product_type").annotate(
        first_sku=Subquery(listed.order_by("sort_order", "pk").values("sku")[:1]),
        stock_total=Coalesce(Subquery(stock), 0),
        first_media_thumbnails=Subquery(first_media.values("thumbnails")[:1]),
    )
    if include_inactive:
        return queryset
    # A product whose variants are all off sale cannot be bought: it is not listed either.
    return queryset.filter(is_active=True).filter(search.on_sale())


def _assigned_variant_values() -> QuerySet[AssignedVariantAttribute]:
    """Variant attribute values in a stable order: by attribute name, as attributes list."""
    return AssignedVariantAttribute.objects.select_related("attribute", "value").order_by(
        "attribute__name", "attribute_id"
    )


def with_details(
    products_: QuerySet[Product], *, include_inactive: bool = False
) -> QuerySet[Product]:
    """Everything the detail shows, in a constant number of queries whatever the number of
    variants, attributes and images: variants (with stock and attribute values), the
    product's attribute values, and its media."""
    variant_values = _assigned_variant_values()
    return products_.prefetch_related(
        Prefetch(
            "variants",
            queryset=with_stock(_active_variants(include_inactive))
            .order_by("sort_order", "pk")
            .prefetch_related(Prefetch("attribute_assignments", queryset=variant_values)),
            to_attr="listed_variants",
        ),
        Prefetch(
            "attribute_assignments",
            queryset=AssignedProductAttribute.objects.select_related("attribute", "value").order_by(
                "attribute__name", "attribute_id"
            ),
        ),
        Prefetch("media", queryset=ProductMedia.objects.order_by("sort_order", "pk")),
    )


def lookup_filter(lookup: str) -> dict[str, Any]:
    """A product is addressed by its numeric id or by any of its variants' SKUs."""
    if lookup.isdigit():
        return {"pk": int(lookup)}
    return {"pk__in": ProductVariant.objects.filter(sku__iexact=lookup).values("product_id")}


def get_product(*, lookup: str, include_inactive: bool = False) -> Product:
    product = (
        with_details(products(include_inactive=include_inactive), include_inactive=include_inactive)
        .filter(**lookup_filter(lookup))
        .first()
    )
    if product is None:
        raise ProductNotFound(lookups=[lookup])
    return product


def get_variant(*, sku: str, include_inactive: bool = False) -> ProductVariant:
    """A variant by SKU (any letter case), with its product. Raises ProductNotFound."""
    variant = (
        with_stock(_active_variants(include_inactive))
        .select_related("product")
        .prefetch_related(Prefetch("attribute_assignments", queryset=_assigned_variant_values()))
        .filter(sku__iexact=sku)
        .first()
    )
    if variant is None or (not include_inactive and not variant.product.is_active):
        raise ProductNotFound(lookups=[sku])
    return variant


def render_json(data: Any) -> bytes:
    return JSONRenderer().render(data)


def _product_id_for_sku(sku: str, piggyback: caching.Piggyback | None = None) -> int | None:
    """The id of the product an active variant's SKU belongs to, read through the cache.

    A variant's product never changes; its activity does, and each change of it (like the
    creation of a SKU) retires this entry on commit.
    """

    def compute() -> bytes | None:
        product_id = (
            ProductVariant.objects.filter(sku__iexact=sku, is_active=True).values_list(
                "product_id", flat=True
            )
        ).first()
        return None if product_id is None else str(product_id).encode()

    found = caching.read_through(
        name=cache.SKU,
        key=cache.sku_key(sku),
        generation_key=cache.sku_generation_key(sku),
        compute=compute,
        ttl_seconds=settings.CATALOG_CACHE_TTL_SECONDS,
        piggyback=piggyback,
    )
    return None if found is None else int(found)


def product_detail_json(*, lookup: str, piggyback: caching.Piggyback | None = None) -> bytes:
    """The public detail of an active product as a stamped cache entry (JSON bytes with
    their ETag and render time: `ecommerce.caching.Stamped.of` reads it), read through the
    cache.

    `lookup` is a product id or any of its variants' SKUs; both read one cached entry per
    product. Raises ProductNotFound for unknown and inactive products. `piggyback`'s
    commands go with the first cache read.
    """
    if lookup.isdigit():
        product_id: int | None = int(lookup)
    else:
        product_id = _product_id_for_sku(lookup, piggyback)
        piggyback = None  # it went with the SKU's lookup
    if product_id is None:
        raise ProductNotFound(lookups=[lookup])

    def compute() -> bytes | None:
        product = with_details(products()).filter(pk=product_id).first()
        if product is None:
            return None
        return caching.stamp(render_json(ProductDetailOutputSerializer(product).data))

    body = caching.read_through(
        name=cache.DETAIL,
        key=cache.detail_key(product_id),
        generation_key=cache.detail_generation_key(product_id),
        compute=compute,
        ttl_seconds=settings.CATALOG_CACHE_TTL_SECONDS,
        piggyback=piggyback,
    )
    if body is None:
        raise ProductNotFound(lookups=[lookup])
    return body


def list_page_digest(query: Mapping[str, str]) -> str:
    """What a list page's cache key holds of its query: the parameters in LIST_PARAMS.

    A repeated parameter (`attr`) keys on all its values, in any order; values are
    URL-encoded so no value can pass for another parameter.
    """
    normalized = urlencode(
        [
            (name, value)
            for name in LIST_PARAMS
            if name in query
            for value in (
                sorted(query.getlist(name))
                if name in REPEATED_LIST_PARAMS and isinstance(query, QueryDict)
                else [query[name]]  # the value the list reads: a QueryDict's last
            )
        ]
    )
    return hashlib.blake2b(normalized.encode(), digest_size=16).hexdigest()


def product_list_json(
    *,
    query: Mapping[str, str],
    render: Callable[[], bytes],
    piggyback: caching.Piggyback | None = None,
) -> bytes:
    """A public list page as a stamped cache entry (see `product_detail_json`), read
    through the cache. `render` returns the page's bare JSON bytes.

    The key holds the catalog's list generation, so any product change retires every page.
    """
    digest = list_page_digest(query)
    generation = caching.current_generation(
        cache.LIST, cache.LIST_GENERATION_KEY, piggyback=piggyback
    )
    if generation is None:  # cache unavailable: every page is a query, the replica takes them
        with use_replica():
            return caching.stamp(render())
    body = caching.read_through(
        name=cache.LIST,
        key=cache.list_page_key(generation.decode(), digest),
        generation_key=cache.LIST_GENERATION_KEY,
        compute=lambda: caching.stamp(render()),
        ttl_seconds=settings.CATALOG_CACHE_TTL_SECONDS,
    )
    return body if body is not None else caching.stamp(render())


def category_tree(*, include_inactive: bool = False) -> list[Category]:
    """Root categories, each with `tree_children` filled, from one query.

    Without `include_inactive` an inactive category hides its whole subtree. The public
    tree may come from the read replica (staff, who edit it, read theirs from the primary).
    """
    queryset = (
        Category.objects.all() if include_inactive else Category.objects.filter(is_active=True)
    )
    by_parent: dict[int | None, list[Category]] = {}
    with contextlib.nullcontext() if include_inactive else use_replica():
        nodes = list(queryset.order_by("name"))
    for node in nodes:
        by_parent.setdefault(node.parent_id, []).append(node)
    for node in nodes:
        node.tree_children = by_parent.get(node.pk, [])  # type: ignore[attr-defined]
    return by_parent.get(None, [])


def variants_for_order(*, lookups: Iterable[str]) -> dict[str, ProductVariant]:
    """Active variants of active products, keyed by the lookup each was asked for.

    A lookup is a variant SKU (any letter case), or a numeric product id when that product
    sells exactly one active variant (a product with several needs a SKU: it is absent
    from the result then, like unknown and inactive ones). One query, served by the
    unique index on UPPER(sku) and the variant's product index.
    """
    wanted = list(dict.fromkeys(lookups))
    ids = [int(value) for value in wanted if value.isdigit()]
    skus = [value.upper() for value in wanted if not value.isdigit()]
    rows: Iterable[ProductVariant]
    if connection.vendor == "postgresql":
        rows = _variants_for_order_joined(ids, skus)
    else:
        rows = (
            ProductVariant.objects.filter(is_active=True, product__is_active=True)
            # The product type too: pricing reads its tax class for every line.
            .select_related("product", "product__product_type")
            .annotate(sku_upper=Upper("sku"))
            .filter(Q(product_id__in=ids) | Q(sku_upper__in=skus))
        )
    found: dict[str, ProductVariant] = {}
    per_product: dict[int, list[ProductVariant]] = {}
    for variant in rows:
        if variant.sku.upper() in skus:
            found[variant.sku.upper()] = variant
        per_product.setdefault(variant.product_id, []).append(variant)
    for product_id in ids:
        variants = per_product.get(product_id, [])
        if len(variants) == 1:
            found[str(product_id)] = variants[0]
    return {
        value: found[key]
        for value in wanted
        if (key := value if value.isdigit() else value.upper()) in found
    }


# `variants_for_order` on PostgreSQL: every order and priced cart reads it, and compiling
# its select_related cost a millisecond of CPU each time (ecommerce/db/joined.py).
_VARIANT = Joined(ProductVariant, "v")
_PRODUCT = Joined(Product, "p")
_PRODUCT_TYPE = Joined(ProductType, "t")
_VARIANTS_FOR_ORDER_SQL = f"""
SELECT {_VARIANT.columns()}, {_PRODUCT.columns()}, {_PRODUCT_TYPE.columns()}
FROM catalog_productvariant v
JOIN catalog_product p ON p.id = v.product_id
LEFT JOIN catalog_producttype t ON t.id = p.product_type_id
WHERE v.is_active AND p.is_active AND ({{lookup}})
"""  # noqa: S608 (the select lists come from the models' fields)


@functools.lru_cache(maxsize=256)
def _variants_for_order_sql(ids: int, skus: int) -> str:
    """The read for `ids` product ids and `skus` SKUs, one placeholder each: prepared
    (ecommerce/db/prepared.py), its generic plan then knows how many rows each lookup
    wants and is kept. With `= ANY(array)` it assumed ten, looked ten times worse than
    planning for the values at hand, and the read was planned again on every order."""
    lookups = []
    if ids:
        lookups.append(f"v.product_id IN ({', '.join(['%s'] * ids)})")
    if skus:
        lookups.append(f"UPPER(v.sku) IN ({', '.join(['%s'] * skus)})")
    return _VARIANTS_FOR_ORDER_SQL.format(lookup=" OR ".join(lookups))


def _variants_for_order_joined(ids: list[int], skus: list[str]) -> list[ProductVariant]:
    if not (ids or skus):
        return []
    with connection.cursor() as cursor:
        prepared.execute(cursor, (_variants_for_order_sql(len(ids), len(skus)), [*ids, *skus]))
        rows = cursor.fetchall()
    variants = []
    for row in rows:
        # Inner joins: the variant and its product are never missing.
        variant = cast(ProductVariant, _VARIANT.instance(row, 0))
        product = cast(Product, _PRODUCT.instance(row, _VARIANT.width))
        link(product, "product_type", _PRODUCT_TYPE.instance(row, _VARIANT.width + _PRODUCT.width))
        link(variant, "product", product)
        variants.append(variant)
    return variants


def attributes() -> QuerySet[Attribute]:
    """Attributes with their choice values in `choice_values` (two queries in all)."""
    return Attribute.objects.prefetch_related(
        Prefetch(
            "values",
            queryset=AttributeValue.objects.filter(
                attribute__input_type=Attribute.InputType.CHOICE
            ).order_by("sort_order", "name", "pk"),
            to_attr="choice_values",
        )
    ).order_by("name", "pk")


def get_attribute(*, slug: str) -> Attribute:
    """An attribute by slug, with its choice values. Raises AttributeNotFound."""
    attribute = attributes().filter(slug=slug).first()
    if attribute is None:
        raise AttributeNotFound(slug=slug)
    return attribute


def product_types() -> QuerySet[ProductType]:
    """Product types with their declared attributes (three queries in all)."""
    ordered = Attribute.objects.order_by("slug")
    return ProductType.objects.prefetch_related(
        Prefetch("product_attributes", queryset=ordered),
        Prefetch("variant_attributes", queryset=ordered),
    ).order_by("name", "pk")


def get_product_type(*, slug: str) -> ProductType:
    """A product type by slug, with its attributes. Raises ProductTypeNotFound."""
    product_type = product_types().filter(slug=slug).first()
    if product_type is None:
        raise ProductTypeNotFound(slug=slug)
    return product_type
