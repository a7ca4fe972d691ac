"""Order list filters (staff): status, user and creation date."""

from __future__ import annotations

import django_filters

from apps.orders.models import Order, OrderStatus
from ecommerce.api.filters import DateTimeFilter, FilterSet
from ecommerce.api.identifiers import IdFilter


class OrderFilter(FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=OrderStatus.choices)
    # Parsed like every id, so an absurd one is a 400, not a database overflow.
    user = IdFilter(field_name="user_id")
    created_after = DateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = DateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Order
        fields = ("status", "user", "created_after", "created_before")
