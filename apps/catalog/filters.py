"""List filters for products (validated: a bad value is a 400, never a 500)."""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from drf_spectacular.utils import extend_schema_field

from apps.catalog.models import Product
from ecommerce.api import identifiers
from ecommerce.api.filters import FilterSet, OrderingFilter, StrictBooleanFilter

CATEGORY_PATTERN = r"^[-a-zA-Z0-9_]{1,120}$"
# The same, anchored at the very end: Python's `$` also matches before a final newline.
_CATEGORY = re.compile(r"\A[-a-zA-Z0-9_]{1,120}\Z")


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

    def filter(self, qs: QuerySet[Product], value: Decimal | None) -> QuerySet[Product]:
        if value is None:
            return qs
        lower = self.lookup_expr == "gte"
        if value > PRICE_MAX:
            return qs.none() if lower else qs
        value = value.quantize(CENT, rounding=ROUND_CEILING if lower else ROUND_FLOOR)
        return super().filter(qs, value)


class ProductFilter(FilterSet):
    category = CategoryFilter(method="filter_category", regex=_CATEGORY, strip=False)
    min_price = PriceFilter(field_name="price", lookup_expr="gte")
    max_price = PriceFilter(field_name="price", lookup_expr="lte")
    in_stock = StrictBooleanFilter(method="filter_in_stock")

    class Meta:
        model = Product
        fields = ("category", "min_price", "max_price", "in_stock")

    def filter_category(
        self, queryset: QuerySet[Product], name: str, value: str
    ) -> QuerySet[Product]:
        if value.isdigit():  # ASCII: the pattern let nothing else through
            if not identifiers.is_id(value):
                return queryset.none()  # no category has this id
            return queryset.filter(category_id=identifiers.parse_id(value))
        return queryset.filter(category__slug=value)

    def filter_in_stock(
        self, queryset: QuerySet[Product], name: str, value: bool | None
    ) -> QuerySet[Product]:
        if value is None:
            return queryset
        return queryset.filter(Q(stock__gt=0) if value else Q(stock=0))


class ProductOrdering(OrderingFilter):
    """`?ordering=price|-price|name|-name|newest|oldest` (and the raw field names)."""

    aliases = {"newest": "-created_at", "oldest": "created_at"}
