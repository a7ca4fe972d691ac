"""Order list filters (staff): status, user and creation date."""

from __future__ import annotations

import django_filters

from apps.orders.models import Order, OrderStatus


class OrderFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=OrderStatus.choices)
    # Bounded like the column, so an absurd id is a 400, not a database overflow.
    user = django_filters.NumberFilter(
        field_name="user_id", min_value=1, max_value=2**63 - 1, decimal_places=0
    )
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Order
        fields = ("status", "user", "created_after", "created_before")
