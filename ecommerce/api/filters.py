"""List filters that refuse what they do not understand (a 400) instead of ignoring it.

DRF's OrderingFilter drops unknown fields and django-filter's BooleanFilter reads `yes`
as "no filter": either way a typo silently lists everything in another order. Here every
value is checked, and the schema publishes exactly the values accepted.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import filters
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request


class StrictBooleanField(forms.Field):
    """`true` or `false` (any case; `1`/`0` too). Anything else is invalid."""

    default_error_messages = {"invalid": "Use true or false."}
    VALUES = {"true": True, "1": True, "false": False, "0": False}

    def to_python(self, value: Any) -> bool | None:
        if value in self.empty_values:
            return None
        try:
            return self.VALUES[str(value).strip().lower()]
        except KeyError:
            raise DjangoValidationError(self.error_messages["invalid"], code="invalid") from None


@extend_schema_field(OpenApiTypes.BOOL)
class StrictBooleanFilter(django_filters.Filter):
    field_class = StrictBooleanField


class UTCDateTimeField(django_filters.fields.IsoDateTimeField):
    """An ISO 8601 date-time, converted to UTC here.

    PostgreSQL refuses offsets beyond ±15:59 that ISO 8601 allows (`+22:45`), and an
    instant near year 1 or 9999 can leave the calendar once converted: both are a 400,
    not a database error.
    """

    default_error_messages = {"out_of_range": "The date-time is out of range."}

    def to_python(self, value: Any) -> datetime | None:
        parsed: datetime | None = super().to_python(value)
        if parsed is None or parsed.tzinfo is None:
            return parsed
        try:
            return parsed.astimezone(UTC)
        except OverflowError:
            raise DjangoValidationError(
                self.error_messages["out_of_range"], code="out_of_range"
            ) from None


class DateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UTCDateTimeField


class FilterSet(django_filters.FilterSet):
    """A FilterSet where a parameter that is present needs a value: `?status=` is a 400.

    django-filter reads an empty value as "no filter", which lists everything for what is
    more likely a client's bug than a wish.
    """

    def is_valid(self) -> bool:
        valid = bool(super().is_valid())
        if not self.is_bound:
            return valid
        for name in self.filters:
            if name in self.data and "" in self.data.getlist(name):
                self.form.add_error(name, "This parameter needs a value.")
                valid = False
        return valid


class SearchFilter(filters.SearchFilter):
    """DRF's search, with the schema saying what it refuses (NUL, a 400)."""

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters: list[dict[str, Any]] = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"] = {"type": "string", "pattern": r"^[^\u0000]*$"}
        return parameters


class OrderingFilter(filters.OrderingFilter):
    """`?ordering=` one of the view's `ordering_fields`, each optionally prefixed `-` for
    descending, or an alias; several joined by commas. Anything else is a 400, also on a
    list that takes no ordering (no `ordering_fields`): a typo never lists silently in
    another order.

    A view names a public field that reads another column in `ordering_sources`
    (`{"created_at": "date_joined"}`): both names are accepted, in either direction.
    The primary key is appended as a tie-breaker so that pages never overlap.
    """

    aliases: dict[str, str] = {}

    def choices(self, view: Any) -> list[str]:
        names = [*(getattr(view, "ordering_fields", None) or ()), *self.sources(view)]
        return [*names, *(f"-{name}" for name in names), *self.aliases]

    @staticmethod
    def sources(view: Any) -> dict[str, str]:
        return dict(getattr(view, "ordering_sources", None) or {})

    def source(self, field: str, view: Any) -> str:
        if field in self.aliases:
            return self.aliases[field]
        descending = field.startswith("-")
        name = field.removeprefix("-")
        name = self.sources(view).get(name, name)
        return f"-{name}" if descending else name

    def get_ordering(self, request: Request, queryset: QuerySet[Any], view: Any) -> Any:
        param = request.query_params.get(self.ordering_param)
        if param is None:
            return self.get_default_ordering(view)
        allowed = self.choices(view)
        if not allowed:
            raise ValidationError(
                {self.ordering_param: ["This list has a fixed order and takes no ordering."]}
            )
        fields = [field.strip() for field in param.split(",")]
        unknown = [field for field in fields if field not in allowed]
        if unknown:
            raise ValidationError(
                {
                    self.ordering_param: [
                        f"Unknown ordering {unknown[0][:40]!r}; use one of: {', '.join(allowed)}."
                    ]
                }
            )
        ordering = [self.source(field, view) for field in fields]
        if not {"pk", "-pk", "id", "-id"} & set(ordering):
            ordering.append("pk")
        return ordering

    def filter_queryset(self, request: Request, queryset: Any, view: Any) -> Any:
        ordering = self.get_ordering(request, queryset, view)
        # A list read whole into Python (not a QuerySet) keeps the order its selector gave.
        if ordering and isinstance(queryset, QuerySet):
            return queryset.order_by(*ordering)
        return queryset

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        choices = self.choices(view)
        if not choices:
            return []
        return [
            {
                "name": self.ordering_param,
                "required": False,
                "in": "query",
                "description": "Sort by this field, descending with a leading `-`; "
                "several may be joined by commas.",
                "schema": {"type": "string", "enum": choices},
            }
        ]
