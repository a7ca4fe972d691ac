"""List filters for products (validated: a bad value is a 400, never a 500)."""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from rest_framework.filters import OrderingFilter

from apps.catalog.models import Product


class StrictBooleanField(forms.Field):
    """`true` or `false` (any case; `1`/`0` too). Anything else is invalid.

    django-filter's BooleanFilter reads the value through NullBooleanSelect, which turns
    every unknown value into "no filter", so `?in_stock=yes` would list everything.
    """

    default_error_messages = {"invalid": "Use true or false."}
    VALUES = {"true": True, "1": True, "false": False, "0": False}

    def to_python(self, value: Any) -> bool | None:
        if value in self.empty_values:
            return None
        try:
            return self.VALUES[str(value).strip().lower()]
        except KeyError:
            raise ValidationError(self.error_messages["invalid"], code="invalid") from None


class StrictBooleanFilter(django_filters.Filter):
    field_class = StrictBooleanField


class ProductFilter(django_filters.FilterSet):
    category = django_filters.CharFilter(method="filter_category")
    min_price = django_filters.NumberFilter(field_name="price", lookup_expr="gte")
    max_price = django_filters.NumberFilter(field_name="price", lookup_expr="lte")
    in_stock = StrictBooleanFilter(method="filter_in_stock")

    class Meta:
        model = Product
        fields = ("category", "min_price", "max_price", "in_stock")

    def filter_category(
        self, queryset: QuerySet[Product], name: str, value: str
    ) -> QuerySet[Product]:
        if value.isdigit():
            return queryset.filter(category_id=int(value))
        return queryset.filter(category__slug=value)

    def filter_in_stock(
        self, queryset: QuerySet[Product], name: str, value: bool | None
    ) -> QuerySet[Product]:
        if value is None:
            return queryset
        return queryset.filter(Q(stock__gt=0) if value else Q(stock=0))


class ProductOrdering(OrderingFilter):
    """`?ordering=price|-price|name|-name|newest|oldest` (and the raw field names)."""

    ALIASES = {"newest": "-created_at", "oldest": "created_at"}

    def remove_invalid_fields(
        self, queryset: QuerySet[Product], fields: list[str], view: Any, request: Any
    ) -> list[str]:
        fields = [self.ALIASES.get(field, field) for field in fields]
        return super().remove_invalid_fields(queryset, fields, view, request)
