"""Row locks of the orders app."""

from __future__ import annotations

from apps.orders.exceptions import OrderNotFound
from apps.orders.models import Order


def order_for_update(order_id: int) -> Order:
    """Lock one order row until the surrounding transaction ends.

    Raises OrderNotFound. Must be called inside `transaction.atomic()`.
    """
    order = Order.objects.select_for_update().filter(pk=order_id).first()
    if order is None:
        raise OrderNotFound(f"Order {order_id} does not exist.")
    return order
