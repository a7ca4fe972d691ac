"""Reads of orders, scoped to what the reader may see."""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db.models import QuerySet

from apps.orders.exceptions import OrderNotFound, ReturnNotFound
from apps.orders.models import Order, OrderEvent, OrderItem, Return
from ecommerce.api.permissions import Role, has_role

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def can_see_all_orders(user: Any) -> bool:
    return has_role(user, Role.SUPPORT)


def orders_visible_to(user: Any) -> QuerySet[Order]:
    """Support and admin see every order; a customer sees their own."""
    queryset = Order.objects.prefetch_related("items").order_by("-created_at", "-pk")
    return queryset if can_see_all_orders(user) else queryset.filter(user=user)


def get_order_for(*, user: Any, public_id: str) -> Order:
    """One visible order with items and history. Raises OrderNotFound (also for others')."""
    order = (
        orders_visible_to(user)
        .prefetch_related("events__order_return")
        .filter(public_id=public_id)
        .first()
    )
    if order is None:
        raise OrderNotFound(f"No order {public_id}.")
    return order


def status_events_between(*, since: datetime, until: datetime) -> QuerySet[OrderEvent]:
    """Status changes (placement included: `from_status` empty) recorded in [since, until),
    oldest first: what consumers of order events check they have handled. A return's steps
    (rows naming a return: the order's status stays) are not status changes."""
    return OrderEvent.objects.filter(
        created_at__gte=since, created_at__lt=until, order_return__isnull=True
    ).order_by("created_at", "pk")


def returns_of(*, order: Order) -> QuerySet[Return]:
    """An order's returns, newest first, with their lines and the lines' order items."""
    return (
        Return.objects.filter(order=order)
        .select_related("order")
        .prefetch_related("lines__item", "lines__warehouse")
        .order_by("-created_at", "-pk")
    )


def get_return_for(*, user: Any, order_public_id: str, return_public_id: str) -> Return:
    """One return of an order the user sees. Raises OrderNotFound, ReturnNotFound (also for
    another user's order: a stranger learns nothing)."""
    order = get_order_for(user=user, public_id=order_public_id)
    found = returns_of(order=order).filter(public_id=return_public_id).first()
    if found is None:
        raise ReturnNotFound(f"Order {order.public_id} has no return {return_public_id}.")
    return found


def return_with_lines(*, return_id: int) -> Return | None:
    """A return with its order (and the order's owner) and lines: what its notifications show."""
    return (
        Return.objects.select_related("order__user")
        .prefetch_related("lines__item", "lines__warehouse")
        .filter(pk=return_id)
        .first()
    )


def fulfilled_amount(*, order_id: int) -> Decimal:
    """What a fulfilled order's shipped goods cost the buyer: the capture at fulfilment.

    Each line counts its `line_total` (after its discounts, tax included) for the units
    that shipped, pro rata and rounded half up to the cent (all of it when the whole line
    shipped). Shipping (its price after its discount, with its tax: the total less the
    lines) counts in full once anything ships: the parcel went. So a fully shipped order
    captures its total, and the parts never add up to more than it.
    """
    order = Order.objects.only("total", "currency").get(pk=order_id)
    lines = ZERO
    shipped = ZERO
    for item in OrderItem.objects.filter(order_id=order_id).order_by("pk"):
        lines += item.line_total
        if item.quantity_fulfilled == item.quantity:
            shipped += item.line_total
        elif item.quantity_fulfilled:
            share = item.line_total * item.quantity_fulfilled / item.quantity
            shipped += share.quantize(CENT, rounding=ROUND_HALF_UP)
    if not shipped:
        return ZERO
    return min(order.total, shipped + max(order.total - lines, ZERO))
