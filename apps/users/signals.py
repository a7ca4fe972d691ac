"""Hooks that let higher apps act inside a users request without users importing them.

`customer_signed_in` is sent by the token view (`POST /api/auth/token`) after a successful
login, with `user` and `cart_token` (the body's optional `cart_token`, "" when none was
sent), so checkout can merge the anonymous cart into the customer's own while the login
answers. It is an in-process call within the request, not a side effect leaving the
process (those go through the outbox): users sits below checkout in the app DAG, and a
signal is how a lower app lets a higher one join in without importing it.
"""

from __future__ import annotations

from typing import Any

from django.dispatch import Signal

from ecommerce.observability.logging import get_logger

logger = get_logger(__name__)

customer_signed_in = Signal()


def announce_sign_in(*, sender: type[Any], user: Any, cart_token: str) -> None:
    """Send `customer_signed_in`; a receiver that fails is logged and the login stands.

    The customer has proved who they are: a cart that could not be merged must not turn
    a correct password into an error.
    """
    results = customer_signed_in.send_robust(sender=sender, user=user, cart_token=cart_token)
    for receiver, result in results:
        if isinstance(result, Exception):
            logger.error(
                "customer_signed_in_receiver_failed",
                receiver=getattr(receiver, "__qualname__", repr(receiver)),
                user_id=user.pk,
                error=f"{type(result).__name__}: {result}"[:200],
                exc_info=result,
            )
