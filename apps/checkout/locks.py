"""Row locks of the checkout."""

from __future__ import annotations

from apps.checkout.exceptions import CartNotFound
from apps.checkout.models import Cart


def cart_for_update(cart_id: int) -> Cart:
    """Lock one cart row until the surrounding transaction ends: changes and checkouts of
    one cart run one after the other.

    Raises CartNotFound (deleted meanwhile). Must be called inside `transaction.atomic()`.
    """
    cart = Cart.objects.select_for_update().filter(pk=cart_id).first()
    if cart is None:
        raise CartNotFound()
    return cart
