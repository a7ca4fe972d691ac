"""List filters and facet counts for products (validated: a bad value is a 400, never a 500).

Most filters are about what can be bought, so they are variant-level and one variant must
meet them all: a product matches `?attr=colour:black&attr=size:m&max_price=20&country=DE`
when one of its active variants is black (or the product itself is), in size M, at most
20.00, and in stock in a warehouse serving Germany. Within one attribute the values are
alternatives (`attr=size:m&attr=size:l`: M or L); across attributes all must hold.

- `attr=<attribute slug>:<value slug>`, repeatable (ATTR_MAX_VALUES at most): a malformed
  one is a 400; an attribute that is unknown or not filterable, or a value it does not
  have, matches nothing, as an unknown category does (values come and go, a stale link is
  not an error, and a well-formed request the schema accepts is never refused).
- `min_price`/`max_price`: some active variant's price is in the range.
- `category`: the category and its whole subtree.
- `in_stock=true`: some active variant has units; `false`: none has.
- `country=DE`: some active variant has units in an active warehouse serving DE (one whose
  shipping zones list it, or that has no zones). The warehouses are read by one small query
  on inventory's Warehouse model found through the app registry, not by importing
  apps.inventory (the catalog sits below it), and not by a join on zone countries, which
  SQLite (embedded mode) cannot query inside JSON.
- `facets=colour,size` (FACETS_MAX at most): the page also carries, per attribute, each
  value with the number of matching products, in one query for all of them (on
  PostgreSQL the statement that also counts the matches and reads the page: read_list;
  an unknown or unfilterable attribute gets an empty list). Counts are disjunctive: a facet's own
  `attr` filter is left out of its counts, so each count is what the list holds after
  also choosing that value alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

import django_filters
from django import forms
from django.apps import apps as django_apps
from django.core.exceptions import EmptyResultSet, ValidationError
from django.db import connection, transaction
from django.db.models import (
    Exists,
    F,
    FilteredRelation,
    OuterRef,
    Q,
    QuerySet,
    TextField,
)
from django.http import QueryDict
from django_filters import utils as filter_utils
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema_field
from rest_framework.request import Request

from apps.catalog.models import (
    AssignedProductAttribute,
    AssignedVariantAttribute,
    Attribute,
    AttributeValue,
    Category,
    Product,
    ProductVariant,
)
from apps.catalog.search import RANK, SEARCH_RANKED, SEARCH_TEXT, TEXT_RANK, ProductColumn
from ecommerce.api import identifiers
from ecommerce.api.filters import FilterSet, OrderingFilter, StrictBooleanFilter
from ecommerce.api.pagination import PageNumberPagination

CATEGORY_PATTERN = r"^[-a-zA-Z0-9_]{1,120}$"
# The same, anchored at the very end: Python's `$` also matches before a final newline.
_CATEGORY = re.compile(r"\A[-a-zA-Z0-9_]{1,120}\Z")
ATTR_PATTERN = r"^[-a-zA-Z0-9_]{1,120}:[-a-zA-Z0-9_]{1,200}$"
_ATTR = re.compile(r"\A([-a-zA-Z0-9_]{1,120}):([-a-zA-Z0-9_]{1,200})\Z")
# Bounds on one public list request: each value and each facet costs the query a join.
ATTR_MAX_VALUES = 20
FACETS_MAX = 5
FACETS_PATTERN = rf"^[-a-zA-Z0-9_]{{1,120}}(,[-a-zA-Z0-9_]{{1,120}}){{0,{FACETS_MAX - 1}}}$"
_FACETS = re.compile(rf"\A[-a-zA-Z0-9_]{{1,120}}(,[-a-zA-Z0-9_]{{1,120}}){{0,{FACETS_MAX - 1}}}\Z")
COUNTRY_PATTERN = r"^[A-Za-z]{2}$"
_COUNTRY = re.compile(r"\A[A-Za-z]{2}\Z")


@extend_schema_field(
    {"type": "string", "pattern": CATEGORY_PATTERN, "description": "A category slug or id."}
)
class CategoryFilter(django_filters.Filter):
    """A category by slug or numeric id; anything else is a 400 (not an empty page)."""

    field_class = forms.RegexField


# The price column: numeric(12, 2), positive.
PRICE_MAX = Decimal("9999999999.99")
CENT = Decimal("0.01")


class AsciiDecimalField(forms.DecimalField):
    """Django's DecimalField reads any Unicode digits (`١٢` is 12); a price is ASCII."""

    def to_python(self, value: Any) -> Decimal | None:
        if isinstance(value, str) and not value.isascii():
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        result: Decimal | None = super().to_python(value)
        return result


@extend_schema_field({"type": "number", "minimum": 0, "maximum": 1e50})
class PriceFilter(django_filters.NumberFilter):
    """A price bound, rounded to the column's cents the way that keeps its meaning.

    PostgreSQL refuses numerics past its range (`1e-999999` is a 500 there), so the value
    is brought to the column's scale first: a lower bound rounds up, an upper bound down.
    """

    field_class = AsciiDecimalField

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(min_value=0, **kwargs)

    def bound(self, value: Decimal | None) -> Decimal | None:
        """The bound to compare prices with, or None when it bounds nothing. A lower bound
        above every price stays above them all (one cent past the column's maximum)."""
        if value is None:
            return None
        lower = self.lookup_expr == "gte"
        if value > PRICE_MAX:
            return PRICE_MAX + CENT if lower else None
        return value.quantize(CENT, rounding=ROUND_CEILING if lower else ROUND_FLOOR)


class MultipleValueField(forms.Field):
    """Every value of a repeated query parameter, each checked against `regex`."""

    widget = forms.SelectMultiple
    default_error_messages = {
        "invalid": "Give attribute:value, both slugs (colour:black).",
        "too_many": f"At most {ATTR_MAX_VALUES} values.",
    }

    def to_python(self, value: Any) -> list[tuple[str, str]]:
        if value in self.empty_values:
            return []
        values = list(value) if isinstance(value, list | tuple) else [value]
        values = [item for item in values if item != ""]  # FilterSet refuses empty ones
        if len(values) > ATTR_MAX_VALUES:
            raise ValidationError(self.error_messages["too_many"], code="too_many")
        pairs = []
        for item in values:
            match = _ATTR.match(item) if isinstance(item, str) else None
            if match is None:
                raise ValidationError(self.error_messages["invalid"], code="invalid")
            pairs.append((match[1], match[2]))
        return list(dict.fromkeys(pairs))


@extend_schema_field(
    {
        "type": "array",
        "items": {"type": "string", "pattern": ATTR_PATTERN},
        "maxItems": ATTR_MAX_VALUES,
        "description": "`attribute:value` by slugs, repeatable: values of one attribute are "
        "alternatives, different attributes must all hold, and one variant must match every "
        "variant-level value. An unknown or unfilterable attribute or value matches nothing.",
    }
)
class AttributeFilter(django_filters.Filter):
    field_class = MultipleValueField


class FacetsField(forms.Field):
    default_error_messages = {
        "invalid": f"Give at most {FACETS_MAX} attribute slugs, separated by commas."
    }

    def to_python(self, value: Any) -> list[str]:
        if value in self.empty_values:
            return []
        if not isinstance(value, str) or not _FACETS.match(value):
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        return list(dict.fromkeys(value.split(",")))


@extend_schema_field(
    {
        "type": "string",
        "pattern": FACETS_PATTERN,
        "description": f"Up to {FACETS_MAX} filterable attributes, by slug: the page then "
        "carries `facets`, each value's count of matching products (leaving out the "
        "attribute's own `attr` filter).",
    }
)
class FacetsFilter(django_filters.Filter):
    field_class = FacetsField


class CountryField(forms.Field):
    default_error_messages = {"invalid": "Give a two-letter ISO country code (DE)."}

    def to_python(self, value: Any) -> str | None:
        if value in self.empty_values:
            return None
        if not isinstance(value, str) or not _COUNTRY.match(value):
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        return value.upper()


@extend_schema_field(
    {
        "type": "string",
        "pattern": COUNTRY_PATTERN,
        "description": "Only products in stock in a warehouse that ships to this country.",
    }
)
class CountryFilter(django_filters.Filter):
    field_class = CountryField


@dataclass(frozen=True)
class FacetAttribute:
    id: int | None  # None: no filterable attribute has this slug
    slug: str


@dataclass(frozen=True)
class ListFilters:
    """What a list request asked for, resolved: the variant-level conditions and facets."""

    # attribute id -> the value ids any of which it may have (empty: no value is known)
    groups: dict[int, list[int]] = field(default_factory=dict)
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    in_stock: bool | None = None
    # Warehouses serving the caller's country; None: no country given.
    warehouse_ids: list[int] | None = None
    facets: list[FacetAttribute] = field(default_factory=list)

    @property
    def restricts_variants(self) -> bool:
        return bool(
            self.groups
            or self.min_price is not None
            or self.max_price is not None
            or self.in_stock
            or self.warehouse_ids is not None
        )

    def _stock_lookups(self) -> dict[str, Any]:
        lookups: dict[str, Any] = {"stocks__quantity__gt": 0}
        if self.warehouse_ids is not None:
            lookups["stocks__warehouse_id__in"] = self.warehouse_ids
        return lookups

    def variants(self, *, except_attribute: int | None = None) -> QuerySet[ProductVariant]:
        """Active variants meeting every variant-level condition (but the one attribute's)."""
        variants = ProductVariant.objects.filter(is_active=True)
        if self.min_price is not None:
            variants = variants.filter(price__gte=self.min_price)
        if self.max_price is not None:
            variants = variants.filter(price__lte=self.max_price)
        if self.in_stock or self.warehouse_ids is not None:
            variants = variants.filter(**self._stock_lookups())
        for attribute_id, value_ids in self.groups.items():
            if attribute_id == except_attribute:
                continue
            # Uncorrelated: each set is read once (by the value index) and hashed.
            on_product = AssignedProductAttribute.objects.filter(value_id__in=value_ids)
            on_variant = AssignedVariantAttribute.objects.filter(value_id__in=value_ids)
            variants = variants.filter(
                Q(product_id__in=on_product.values("product_id"))
                | Q(pk__in=on_variant.values("variant_id"))
            )
        return variants.order_by()

    def apply(self, products: QuerySet[Product]) -> QuerySet[Product]:
        if self.in_stock is False:
            stocked = ProductVariant.objects.filter(
                product_id=OuterRef("pk"), is_active=True, **self._stock_lookups()
            )
            products = products.filter(~Exists(stocked))
        if self.restricts_variants:
            products = products.filter(Exists(self.variants().filter(product_id=OuterRef("pk"))))
        return products


def _category_subtree(root_id: int) -> list[int]:
    """The ids of a category and all its descendants (one query: categories are few)."""
    children: dict[int | None, list[int]] = {}
    for pk, parent_id in Category.objects.values_list("pk", "parent_id"):
        children.setdefault(parent_id, []).append(pk)
    found, frontier = [root_id], [root_id]
    while frontier:
        frontier = [child for parent in frontier for child in children.get(parent, [])]
        found += frontier
    return found


def _serving_warehouses(country: str) -> list[int]:
    """Active warehouses shipping to `country`: a zone lists it, or it has no zone."""
    warehouse = django_apps.get_model("inventory", "Warehouse")
    zones: dict[int, list[list[str] | None]] = {}
    for pk, countries in warehouse.objects.filter(is_active=True).values_list(
        "pk", "shipping_zones__countries"
    ):
        zones.setdefault(pk, []).append(countries)
    return sorted(
        pk
        for pk, lists in zones.items()
        if lists == [None] or any(country in (codes or []) for codes in lists)
    )


class ProductFilter(FilterSet):
    category = CategoryFilter(regex=_CATEGORY, strip=False)
    min_price = PriceFilter(field_name="price", lookup_expr="gte")
    max_price = PriceFilter(field_name="price", lookup_expr="lte")
    in_stock = StrictBooleanFilter()
    country = CountryFilter()
    attr = AttributeFilter()
    facets = FacetsFilter()

    class Meta:
        model = Product
        fields = ("category", "min_price", "max_price", "in_stock", "country", "attr", "facets")

    def is_valid(self) -> bool:
        """Also resolve the attributes and values `attr` and `facets` name (one query)."""
        self.list_filters = ListFilters()
        if not super().is_valid():
            return False
        data = self.form.cleaned_data
        pairs: list[tuple[str, str]] = data.get("attr") or []
        facets: list[str] = data.get("facets") or []
        groups: dict[int, list[int]] = {}
        facet_attributes: list[FacetAttribute] = []
        if pairs or facets:
            slugs = {slug for slug, _ in pairs} | set(facets)
            attributes = Attribute.objects.filter(slug__in=slugs, filterable=True)
            if pairs:
                wanted = Q(values__slug__in={value for _, value in pairs})
                rows = attributes.annotate(
                    wanted=FilteredRelation("values", condition=wanted)
                ).values_list("pk", "slug", "wanted__pk", "wanted__slug")
            else:
                rows = [(pk, slug, None, None) for pk, slug in attributes.values_list("pk", "slug")]
            found: dict[str, int] = {}
            values: dict[tuple[str, str], int] = {}
            for pk, slug, value_pk, value_slug in rows:
                found[slug] = pk
                if value_pk is not None:
                    values[(slug, value_slug)] = value_pk
            for slug, value in pairs:
                # An attribute that is unknown or not filterable has no value to match.
                group = groups.setdefault(found.get(slug, -1 - len(groups)), [])
                if (slug, value) in values:
                    group.append(values[(slug, value)])
            facet_attributes = [FacetAttribute(id=found.get(slug), slug=slug) for slug in facets]
        country = data.get("country")
        self.list_filters = ListFilters(
            groups=groups,
            min_price=self.filters["min_price"].bound(data.get("min_price")),
            max_price=self.filters["max_price"].bound(data.get("max_price")),
            in_stock=data.get("in_stock"),
            warehouse_ids=None if country is None else _serving_warehouses(country),
            facets=facet_attributes,
        )
        return True

    def filter_queryset(self, queryset: QuerySet[Product]) -> QuerySet[Product]:
        category = self.form.cleaned_data.get("category")
        if category:
            queryset = self._in_category(queryset, category)
        self.base = queryset  # what the facets count within, before variant conditions
        return self.list_filters.apply(queryset)

    def _in_category(self, queryset: QuerySet[Product], value: str) -> QuerySet[Product]:
        if value.isdigit():  # ASCII: the pattern let nothing else through
            if not identifiers.is_id(value):
                return queryset.none()  # no category has this id
            root = Category.objects.filter(pk=identifiers.parse_id(value)).first()
        else:
            root = Category.objects.filter(slug=value).first()
        if root is None:
            return queryset.none()
        return queryset.filter(category_id__in=_category_subtree(root.pk))


class ProductFilterBackend(DjangoFilterBackend):
    """django-filter's backend, leaving the filterset on the view for the facets."""

    def filter_queryset(
        self, request: Request, queryset: QuerySet[Product], view: Any
    ) -> QuerySet[Product]:
        filterset = self.get_filterset(request, queryset, view)
        if filterset is None:
            return queryset
        if not filterset.is_valid():
            raise filter_utils.translate_validation(filterset.errors)
        view.product_filterset = filterset
        return filterset.qs


def _in(values: list[Any]) -> tuple[str, list[Any]]:
    """`IN (%s, ...)` for a non-empty list; an always-false test for an empty one."""
    if not values:
        return " IS NULL AND FALSE", []
    return f" IN ({', '.join(['%s'] * len(values))})", list(values)


# The SQL below is built from table names, fixed text and `%s` placeholders only: every
# value a request gives travels as a parameter.
def _stock_exists(filters: ListFilters) -> tuple[str, list[Any]]:
    """The variant `v` has units (in a warehouse serving the country, if one is given)."""
    stock = django_apps.get_model("inventory", "Stock")._meta.db_table
    where, params = "s.variant_id = v.id AND s.quantity > 0", list[Any]()
    if filters.warehouse_ids is not None:
        test, params = _in(filters.warehouse_ids)
        where += f" AND s.warehouse_id{test}"
    # After attribute values, few variants are left to test: OFFSET 0 keeps the test a
    # probe of the stock's variant index per variant, where the planner, blind to how few
    # (it cannot estimate the value sets), would hash every stock row first.
    probe = " OFFSET 0" if filters.groups else ""
    return f"EXISTS (SELECT 1 FROM {stock} s WHERE {where}{probe})", params  # noqa: S608


def _variant_conditions(
    filters: ListFilters, *, except_attribute: int | None
) -> tuple[str, list[Any]]:
    """The variant-level conditions, as SQL on a variant aliased `v` (ListFilters.variants
    in SQL, so the facet query can test them row by row inside its lateral join)."""
    product_values = AssignedProductAttribute._meta.db_table
    variant_values = AssignedVariantAttribute._meta.db_table
    parts, params = ["v.is_active"], []
    if filters.min_price is not None:
        parts.append("v.price >= %s")
        params.append(filters.min_price)
    if filters.max_price is not None:
        parts.append("v.price <= %s")
        params.append(filters.max_price)
    if filters.in_stock or filters.warehouse_ids is not None:
        stocked, stocked_params = _stock_exists(filters)
        parts.append(stocked)
        params += stocked_params
    for attribute_id, value_ids in filters.groups.items():
        if attribute_id == except_attribute:
            continue
        test, values = _in(value_ids)
        # Uncorrelated: each set is read once (by the value index) and hashed.
        parts.append(
            f"(v.product_id IN (SELECT pv.product_id FROM {product_values} pv "  # noqa: S608
            f"WHERE pv.value_id{test}) OR v.id IN (SELECT vv.variant_id FROM {variant_values} vv "
            f"WHERE vv.value_id{test}))"
        )
        params += values + values
    return " AND ".join(parts), params


def _facet_groups(filters: ListFilters) -> list[tuple[list[int], int | None]]:
    """The requested, known facets grouped by the conditions their counts share: a facet
    filtered by its own attribute leaves that filter out; the others share them all."""
    known = [facet.id for facet in filters.facets if facet.id is not None]
    groups: list[tuple[list[int], int | None]] = [
        ([attribute], attribute) for attribute in known if attribute in filters.groups
    ]
    shared = [attribute for attribute in known if attribute not in filters.groups]
    if shared:
        groups.append((shared, None))
    return groups


def _counted_values(filters: ListFilters, *, lateral: bool) -> tuple[str, list[Any]] | None:
    """SQL counting, per attribute value of the requested facets, the products of a CTE
    `matched` (columns `id`, and `facet_values` when `lateral`) that hold it: rows
    (facet_value, products). None when no requested facet is known.

    Each group of facets is counted on its own (groups hold different attributes, so no
    value is counted twice)."""
    groups = _facet_groups(filters)
    if not groups:
        return None
    product_values = AssignedProductAttribute._meta.db_table
    variant_values = AssignedVariantAttribute._meta.db_table
    values_table = AttributeValue._meta.db_table
    variants = ProductVariant._meta.db_table
    counts: list[str] = []
    params: list[Any] = []
    for attributes, left_out in groups:
        conditions, condition_params = _variant_conditions(filters, except_attribute=left_out)
        within, attribute_params = _in(attributes)
        if lateral and not condition_params and conditions == "v.is_active":
            # Nothing asked of the variants: the values each product offers are stored on
            # it (facet_values, migration catalog.0008), each once. Counted first, then
            # kept to the facets' attributes (tens of values, not a row per product).
            counts.append(
                "SELECT offered.value_id AS facet_value, COUNT(*) AS products "  # noqa: S608
                "FROM matched m CROSS JOIN LATERAL unnest(m.facet_values) AS offered(value_id) "
                "GROUP BY offered.value_id HAVING offered.value_id IN "
                f"(SELECT av.id FROM {values_table} av WHERE av.attribute_id{within})"
            )
            params += attribute_params
            continue
        held = (
            f"FROM {variants} v JOIN {variant_values} a ON a.variant_id = v.id "
            f"WHERE v.product_id = m.id AND a.attribute_id{within} AND {conditions}"
        )
        if lateral:
            on_variants = (
                "SELECT held.value_id AS facet_value, m.id AS facet_product FROM matched m "  # noqa: S608
                # OFFSET 0 keeps the planner from pulling the subquery up into a hash join.
                f"CROSS JOIN LATERAL (SELECT a.value_id {held} OFFSET 0) held"
            )
        else:  # SQLite (embedded) has no LATERAL; its planner walks from `matched` anyway
            joined = held[len("FROM ") :]
            on_variants = (
                "SELECT a.value_id AS facet_value, m.id AS facet_product "  # noqa: S608
                f"FROM matched m, {joined}"
            )
        on_product = (
            f"SELECT a.value_id, m.id FROM matched m JOIN {product_values} a "  # noqa: S608
            f"ON a.product_id = m.id WHERE a.attribute_id{within} AND EXISTS "
            f"(SELECT 1 FROM {variants} v WHERE v.product_id = m.id AND {conditions})"
        )
        params += attribute_params + condition_params + attribute_params + condition_params
        # Several variants of a product may hold a value: pairs are made distinct (hashed,
        # where COUNT(DISTINCT ...) would sort them all), then counted.
        counts.append(
            "SELECT facet_value, COUNT(*) AS products FROM (SELECT DISTINCT facet_value, "  # noqa: S608
            f"facet_product FROM ({on_variants} UNION ALL {on_product}) every_pair) pairs "
            "GROUP BY facet_value"
        )
    return " UNION ALL ".join(counts), params


def _facets_from(
    filters: ListFilters, rows: list[tuple[int, str, str, int]]
) -> dict[str, list[dict[str, Any]]]:
    """The `facets` member from (attribute id, value slug, value name, count) rows, in
    the values' order."""
    result: dict[int | None, list[dict[str, Any]]] = {facet.id: [] for facet in filters.facets}
    for attribute_id, slug, name, count in rows:
        result[attribute_id].append({"slug": slug, "name": name, "count": count})
    return {facet.slug: result[facet.id] for facet in filters.facets}


def facet_counts(filterset: ProductFilter | None) -> dict[str, list[dict[str, Any]]] | None:
    """Per requested facet, its values with the number of matching products, in one query.

    A product counts for a value when it holds it (product-level) and has an active variant
    meeting the other conditions, or when one of its active variants holds it and meets the
    other conditions itself. None when no facets were asked for.

    One statement: the matching products once (a materialized CTE: the search is not run
    again per facet), then per group of facets that share their conditions (every facet
    without an `attr` filter of its own shares them all) the values their products and
    variants hold. On PostgreSQL the variants are reached by a lateral join, product by
    product through the variant's product index: a hash join would read all 100,000.
    (PostgreSQL lists count them in the statement that reads the page: read_list.)
    """
    if filterset is None or not filterset.list_filters.facets:
        return None
    filters = filterset.list_filters
    empty = {facet.slug: [] for facet in filters.facets}
    lateral = connection.vendor == "postgresql"
    matched = filterset.base.order_by()
    if lateral:
        facet_values = ProductColumn("facet_values", TextField())
        matched = matched.annotate(offered_values=facet_values).values("pk", "offered_values")
    else:
        matched = matched.values("pk")
    try:
        base_sql, base_params = matched.query.sql_with_params()
    except EmptyResultSet:  # Django proved that nothing matches (`category=0`, no words)
        return empty
    counted = _counted_values(filters, lateral=lateral)
    if counted is None:
        return empty
    counted_sql, counted_params = counted
    # Every piece is Django's compilation of a queryset or fixed text; values are params.
    sql = (
        f"WITH matched ({'id, facet_values' if lateral else 'id'}) "  # noqa: S608
        f"AS MATERIALIZED ({base_sql}) "
        "SELECT value.attribute_id, value.slug, value.name, counted.products "
        f"FROM ({counted_sql}) counted "
        f"JOIN {AttributeValue._meta.db_table} value ON value.id = counted.facet_value "
        "ORDER BY value.attribute_id, value.sort_order, value.name, value.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*base_params, *counted_params])
        return _facets_from(filters, cursor.fetchall())


@dataclass(frozen=True)
class ListRead:
    """One page of a product list as read_list read it."""

    count: int  # products matching every filter
    ids: list[int]  # the page's products, in order
    facets: dict[str, list[dict[str, Any]]] | None  # None: none asked for


# The orderings read_list can apply to its CTE: a product field by its name in order_by.
_ORDER_COLUMNS = {"pk": "id", "id": "id", "name": "name", "price": "price", "created_at": "created"}
_ORDER_FIELDS = {"name": "name", "price": "price", "created": "created_at"}


def _order_sql(order_by: tuple[Any, ...]) -> str | None:
    """`ORDER BY` terms over read_list's `listed` CTE for a queryset's ordering of product
    fields, or None when it orders by anything else (the search rank among them)."""
    terms = []
    for term in order_by:
        column = _ORDER_COLUMNS.get(term.removeprefix("-")) if isinstance(term, str) else None
        if column is None:
            return None
        terms.append(f"{column} DESC" if term.startswith("-") else column)
    return ", ".join(terms) if terms else None


# The best first (ProductOrdering): the SEARCH_RANKED best matches by text rank, ordered by
# text rank plus the words' similarity to the name (search.py), then the others by text
# rank; the similarity is computed for those SEARCH_RANKED only (the CASE is lazy).
_BEST_FIRST = (
    "(SELECT id, rank, words, name_key, "
    "row_number() OVER (ORDER BY rank DESC, id) AS place FROM listed) best "
    "ORDER BY place > %s, "
    "CASE WHEN place <= %s THEN rank + word_similarity(words, name_key) ELSE rank END DESC, id"
)


def read_list(
    filterset: ProductFilter | None, queryset: QuerySet[Product], *, offset: int, limit: int
) -> ListRead | None:
    """A list page on PostgreSQL in one statement: its ids, the number of matches and the
    facet counts. None where the caller must read it with the ORM (another database, an
    ordering of another kind).

    The products the search and the category select (`filterset.base`) are matched once,
    into a materialized CTE with what ordering reads (the text rank, computed once per
    match); the variant-level filters then keep the listed ones, which are counted and
    ordered for the page (best first: _BEST_FIRST), while the facets count within all
    matched (each facet leaves its own filter out). Separate count, page and facet queries
    would each redo the match.
    """
    if connection.vendor != "postgresql" or filterset is None:
        return None
    base = filterset.base.order_by()
    ranked = RANK in base.query.annotations
    best_first = ranked and tuple(queryset.query.order_by) == (f"-{RANK}", "pk")
    order = _order_sql(tuple(queryset.query.order_by))
    if order is None and not best_first:
        return None
    filters = filterset.list_filters
    facets: dict[str, list[dict[str, Any]]] | None = (
        {facet.slug: [] for facet in filters.facets} if filters.facets else None
    )
    # The CTE's columns (by their name in it), only those something reads.
    columns: dict[str, Any] = {"id": F("pk")}
    if filters.facets:
        columns["facet_values"] = ProductColumn("facet_values", TextField())
    for term in queryset.query.order_by if not best_first else ():
        column = _ORDER_COLUMNS[str(term).removeprefix("-")]
        if column != "id":
            columns[column] = F(_ORDER_FIELDS[column])
    if best_first:
        columns["rank"] = F(TEXT_RANK)
        columns["words"] = F(SEARCH_TEXT)
        columns["name_key"] = ProductColumn("search_name", TextField())
    columns = {f"listed_{name}": expression for name, expression in columns.items()}
    try:
        base_sql, base_params = base.annotate(**columns).values(*columns).query.sql_with_params()
    except EmptyResultSet:  # Django proved that nothing matches (`category=0`, no words)
        return ListRead(count=0, ids=[], facets=facets)
    variants = ProductVariant._meta.db_table
    keep: list[str] = []
    keep_params: list[Any] = []
    # A search's matches are tested product by product (OFFSET 0 keeps the test a subplan
    # probing the variants' product index: with table scans off, see below, a join would
    # walk all 100,000 variants in index order); a browse may join them as it likes.
    per_product = " OFFSET 0" if ranked else ""
    if filters.restricts_variants:
        conditions, keep_params = _variant_conditions(filters, except_attribute=None)
        keep.append(
            f"EXISTS (SELECT 1 FROM {variants} v WHERE v.product_id = m.id AND {conditions}"  # noqa: S608
            f"{per_product})"
        )
    if filters.in_stock is False:
        stocked, stocked_params = _stock_exists(filters)
        keep.append(
            f"NOT EXISTS (SELECT 1 FROM {variants} v WHERE v.product_id = m.id "  # noqa: S608
            f"AND v.is_active AND {stocked}{per_product})"
        )
        keep_params += stocked_params
    selected = ", ".join(f"b.{alias} AS {alias.removeprefix('listed_')}" for alias in columns)
    # What the count and the page read (not the facets' arrays).
    names = [alias.removeprefix("listed_") for alias in columns]
    listed = ", ".join(f"m.{name}" for name in names if name != "facet_values")
    page = _BEST_FIRST if best_first else f"listed ORDER BY {order}"
    # Every piece is Django's compilation of a queryset or fixed text; values are params.
    sql = (
        f"WITH matched AS MATERIALIZED (SELECT {selected} FROM ({base_sql}) b), "  # noqa: S608
        f"listed AS (SELECT {listed} FROM matched m WHERE {' AND '.join(keep) or 'TRUE'}) "
        "SELECT NULL::bigint, NULL::text, NULL::text, (SELECT COUNT(*) FROM listed), "
        f"ARRAY(SELECT id FROM {page} LIMIT %s OFFSET %s)"
    )
    params: list[Any] = [*base_params, *keep_params]
    if best_first:
        params += [SEARCH_RANKED, SEARCH_RANKED]
    params += [limit, offset]
    counted = _counted_values(filters, lateral=True) if filters.facets else None
    if counted is not None:
        counted_sql, counted_params = counted
        sql += (
            " UNION ALL SELECT value.attribute_id, value.slug, value.name, counted.products, "  # noqa: S608
            "ARRAY[row_number() OVER "
            "(ORDER BY value.attribute_id, value.sort_order, value.name, value.id)] "
            f"FROM ({counted_sql}) counted "
            f"JOIN {AttributeValue._meta.db_table} value ON value.id = counted.facet_value"
        )
        params += counted_params
    with transaction.atomic(), connection.cursor() as cursor:
        # For this statement only (SET LOCAL): no JIT compilation, which its estimated cost
        # (a per-product join priced high) triggers at ~80 ms for a statement of a few ms;
        # and a search's matches read through its GIN index, never by a table scan that
        # tests every row's document (PostgreSQL prices a text match like a comparison,
        # so a word in a sixth of the catalog tips its estimate to a scan twice as slow).
        cursor.execute(
            "SELECT set_config('jit', 'off', true)"
            + (", set_config('enable_seqscan', 'off', true)" if ranked else "")
        )
        cursor.execute(sql, params)
        rows = cursor.fetchall()
        # A read: rolling back ends the settings here, within a caller's transaction too.
        transaction.set_rollback(True)
    # The first part's row is the count and the page (the only one without an attribute).
    ((_, _, _, count, ids),) = [row for row in rows if row[0] is None]
    values = [row for row in rows if row[0] is not None]
    if facets is not None:
        values.sort(key=lambda row: row[4][0])
        facets = _facets_from(filters, [row[:4] for row in values])
    return ListRead(count=count, ids=list(ids), facets=facets)


class ProductOrdering(OrderingFilter):
    """`?ordering=price|-price|name|-name|newest|oldest` (and the raw field names); best
    match first when searching without one."""

    aliases = {"newest": "-created_at", "oldest": "created_at"}

    def filter_queryset(self, request: Request, queryset: QuerySet[Any], view: Any) -> Any:
        if request.query_params.get(self.ordering_param) is None and (
            RANK in queryset.query.annotations
        ):
            return queryset.order_by(f"-{RANK}", "pk")
        return super().filter_queryset(request, queryset, view)


FACET_VALUE_SCHEMA = {
    "type": "object",
    "required": ["slug", "name", "count"],
    "properties": {
        "slug": {"type": "string"},
        "name": {"type": "string"},
        "count": {"type": "integer", "minimum": 1},
    },
}


# PostgreSQL's OFFSET is a bigint: a page number past it is past every page.
_OFFSET_MAX = 2**63 - 1


class _ReadPage:
    """A page already read, as Django's Paginator asks for it: the number of matches
    (`count()`) and the page's rows (the one slice it takes)."""

    def __init__(self, count: int, rows: list[Product]) -> None:
        self._count = count
        self._rows = rows

    def count(self) -> int:
        return self._count

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index: slice) -> list[Product]:
        return self._rows


class ProductPagination(PageNumberPagination):
    """Pages of products, which carry `facets` (in `self.facets`) when the request asked.

    On PostgreSQL a search, a request for facets or one with variant-level filters is read
    in two steps: the page's ids with the count and the facets in one statement
    (read_list), then those products with what a list row shows (first SKU, stock,
    thumbnail: per-row subqueries, so computed for the page's rows only, not for every
    match). A browse (of everything or of a category, in any order) is the count and the
    page as Django's paginator reads them: its page comes from an index in order, and its
    rows' subqueries run for those rows only.
    """

    def paginate_queryset(
        self, queryset: QuerySet[Product], request: Request, view: Any = None
    ) -> list[Product] | None:
        self.facets: dict[str, list[dict[str, Any]]] | None = None
        if view is None:
            return super().paginate_queryset(queryset, request, view)
        self.request = request
        size = self.get_page_size(request)
        number = self.get_page_number(request, None)
        offset = (number - 1) * size
        filterset: ProductFilter | None = getattr(view, "product_filterset", None)
        wants_facets = filterset is not None and bool(filterset.list_filters.facets)
        read = None
        # A plain browse (or one category's) reads its page from an index in name order:
        # the ORM's two queries do better than a statement that orders every match.
        filtered = filterset is not None and (
            filterset.list_filters.restricts_variants or filterset.list_filters.in_stock is False
        )
        ranked = RANK in queryset.query.annotations
        if offset + size <= _OFFSET_MAX and (ranked or wants_facets or filtered):
            read = read_list(filterset, queryset, offset=offset, limit=size)
        if read is None:
            # Count, then the page: its rows' subqueries run for the rows the index order
            # reaches (PostgreSQL evaluates them past the LIMIT).
            rows = super().paginate_queryset(queryset, request, view)
            self.facets = facet_counts(filterset)
            return rows
        products = view.get_queryset().filter(pk__in=read.ids).in_bulk() if read.ids else {}
        page = _ReadPage(read.count, [products[pk] for pk in read.ids if pk in products])
        rows = super().paginate_queryset(page, request, view)  # type: ignore[arg-type]
        self.facets = read.facets
        return rows

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        page = super().get_paginated_response_schema(schema)
        page["properties"]["facets"] = {
            "type": "object",
            "description": "Only with `facets`: per attribute slug, its values held by "
            "matching products, each with their number.",
            "additionalProperties": {"type": "array", "items": FACET_VALUE_SCHEMA},
            "example": {"colour": [{"slug": "black", "name": "Black", "count": 12}]},
        }
        return page

    def _base_url(self) -> str:
        """The base's page links, keeping every value of `attr` (the base keeps the last
        value of each parameter, which is what every other parameter means)."""
        if self.link_query_params is None:
            return super()._base_url()
        params = self.request.query_params
        query = QueryDict(mutable=True)
        for name in self.link_query_params:
            if name in params:
                query.setlist(
                    name, sorted(params.getlist(name)) if name == "attr" else [params[name]]
                )
        return f"{self.request.path}?{query.urlencode()}" if query else self.request.path
