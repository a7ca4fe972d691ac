"""The checkout's answer to a sign-in: the anonymous cart joins the customer's."""

from __future__ import annotations

from typing import Any

from apps.checkout import services


def merge_cart_at_sign_in(sender: Any, *, user: Any, cart_token: str = "", **kwargs: Any) -> None:
    """Receiver of users.signals.customer_signed_in: the cart the visitor filled before
    signing in becomes, or joins, their cart. Nothing leaves the process (R6 holds)."""
    if cart_token:
        services.merge_cart_into_customer(user=user, token=cart_token)
