"""Reads of orders, scoped to what the reader may see."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from apps.orders.exceptions import OrderNotFound
from apps.orders.models import Order, OrderEvent
from ecommerce.api.permissions import Role, has_role


def can_see_all_orders(user: Any) -> bool:
    return has_role(user, Role.SUPPORT)


def orders_visible_to(user: Any) -> QuerySet[Order]:
    """Support and admin see every order; a customer sees their own."""
    queryset = Order.objects.prefetch_related("items").order_by("-created_at", "-pk")
    return queryset if can_see_all_orders(user) else queryset.filter(user=user)


def get_order_for(*, user: Any, public_id: str) -> Order:
    """One visible order with items and history. Raises OrderNotFound (also for others')."""
    order = orders_visible_to(user).prefetch_related("events").filter(public_id=public_id).first()
    if order is None:
        raise OrderNotFound(f"No order {public_id}.")
    return order


def status_events_between(*, since: datetime, until: datetime) -> QuerySet[OrderEvent]:
    """Status changes (placement included: `from_status` empty) recorded in [since, until),
    oldest first: what consumers of order events check they have handled."""
    return OrderEvent.objects.filter(created_at__gte=since, created_at__lt=until).order_by(
        "created_at", "pk"
    )
