"""Row locks of the checkout."""

from __future__ import annotations

from typing import cast

from django.db import connection

from apps.checkout.exceptions import CartNotFound
from apps.checkout.models import Cart
from ecommerce.db import prepared
from ecommerce.db.joined import Joined

# A cart row as model instances are read from it (apps.checkout.selectors reads it too):
# every change and checkout of a cart locks it, so the statement is written out once.
CART = Joined(Cart, "c")
_CART_FOR_UPDATE_SQL = f"SELECT {CART.columns()} FROM checkout_cart c WHERE c.id = %s FOR UPDATE"  # noqa: S608


def cart_for_update(cart_id: int) -> Cart:
    """Lock one cart row until the surrounding transaction ends: changes and checkouts of
    one cart run one after the other.

    Raises CartNotFound (deleted meanwhile). Must be called inside `transaction.atomic()`.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            prepared.execute(cursor, (_CART_FOR_UPDATE_SQL, [cart_id]))
            row = cursor.fetchone()
        cart = None if row is None else cast(Cart, CART.instance(row, 0))
    else:
        cart = Cart.objects.select_for_update().filter(pk=cart_id).first()
    if cart is None:
        raise CartNotFound()
    return cart
