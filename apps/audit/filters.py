"""Audit event list filters: a value the API cannot read is a 400, never an empty guess."""

from __future__ import annotations

import re
from typing import Any

import django_filters
from django import forms
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema_field

from apps.audit.models import AuditEvent, AuditSource
from ecommerce.api.filters import DateTimeFilter, FilterSet
from ecommerce.api.identifiers import IdFilter

ACTION_PATTERN = r"^[a-z0-9_.-]{1,64}$"
OBJECT_TYPE_PATTERN = r"^[a-z0-9_]{1,100}\.[a-z0-9_]{1,100}$"
OBJECT_ID_PATTERN = r"^[-A-Za-z0-9_.:]{1,64}$"


def _regex_filter(pattern: str, description: str, **kwargs: Any) -> django_filters.Filter:
    """A filter taking values that match `pattern` whole (Python's `$` would also take a
    final newline: `\\Z` does not); the schema publishes the same pattern."""
    strict = re.compile(r"\A" + pattern[1:-1] + r"\Z")

    @extend_schema_field({"type": "string", "pattern": pattern, "description": description})
    class RegexFilter(django_filters.Filter):
        field_class = forms.RegexField

    return RegexFilter(regex=strict, **kwargs)


class AuditEventFilter(FilterSet):
    actor = IdFilter(field_name="actor_id")
    action = _regex_filter(ACTION_PATTERN, "An action: `update`, `order.cancelled`...")
    source = django_filters.ChoiceFilter(choices=AuditSource.choices)
    object_type = _regex_filter(
        OBJECT_TYPE_PATTERN, "`app_label.model`, e.g. `catalog.productvariant`.", method="by_type"
    )
    object_id = _regex_filter(OBJECT_ID_PATTERN, "The changed object's id.")
    since = DateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    until = DateTimeFilter(field_name="occurred_at", lookup_expr="lt")

    class Meta:
        model = AuditEvent
        fields = ("actor", "action", "source", "object_type", "object_id", "since", "until")

    def by_type(
        self, queryset: QuerySet[AuditEvent], name: str, value: str
    ) -> QuerySet[AuditEvent]:
        app_label, _, model = value.partition(".")
        return queryset.filter(content_type__app_label=app_label, content_type__model=model)
