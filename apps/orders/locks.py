"""Row locks of the orders app."""

from __future__ import annotations

from apps.orders.exceptions import OrderNotFound, ReturnNotFound
from apps.orders.models import Order, Return


def order_for_update(order_id: int) -> Order:
    """Lock one order row until the surrounding transaction ends.

    Raises OrderNotFound. Must be called inside `transaction.atomic()`.
    """
    order = Order.objects.select_for_update().filter(pk=order_id).first()
    if order is None:
        raise OrderNotFound(f"Order {order_id} does not exist.")
    return order


def return_for_update(return_id: int) -> tuple[Order, Return]:
    """Lock a return's order, then the return, until the surrounding transaction ends.

    Every change to an order's returns takes the order's lock first, so the units its
    returns hold are counted by one writer at a time. Raises ReturnNotFound.
    """
    order_id = Return.objects.filter(pk=return_id).values_list("order_id", flat=True).first()
    if order_id is None:
        raise ReturnNotFound(f"Return {return_id} does not exist.")
    order = order_for_update(order_id)
    order_return = Return.objects.select_for_update().get(pk=return_id)
    return order, order_return
