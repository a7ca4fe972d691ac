"""Typed errors of the checkout."""

from __future__ import annotations

from typing import Any

from ecommerce.errors import Conflict, Forbidden, InvalidInput, NotFound


class CartNotFound(NotFound):
    """No open cart at this token for this caller: unknown, expired, or someone else's."""

    code = "cart_not_found"
    title = "Cart not found"

    def __init__(self, detail: str = "No such cart (it may have expired).") -> None:
        super().__init__(detail)


class CartLineNotFound(NotFound):
    code = "cart_line_not_found"
    title = "Cart line not found"

    def __init__(self, *, sku: str) -> None:
        super().__init__(f"The cart has no line {sku}.", sku=sku)


class InvalidCart(InvalidInput):
    """A cart change breaks a rule (limits, one currency, an unknown variant)."""

    code = "invalid_cart"
    title = "Invalid cart change"


class ShippingMethodUnavailable(InvalidInput):
    code = "shipping_method_unavailable"
    title = "Shipping method unavailable"

    def __init__(self, *, method_id: int, country: str) -> None:
        super().__init__(
            f"Shipping method {method_id} does not serve this cart"
            + (f" to {country}." if country else ": set a shipping address first."),
            shipping_method=method_id,
        )


class CartNotOpen(Conflict):
    """The cart was checked out (or merged) already; it takes no more changes."""

    code = "cart_not_open"
    title = "Cart no longer open"

    def __init__(self, *, status: str, order_id: str | None = None) -> None:
        super().__init__(
            f"This cart is {status.replace('_', ' ')}; start a new cart.",
            status=status,
            order_id=order_id,
        )


class CheckoutProblems(Conflict):
    """The cart cannot become an order as it is; `problems` says what to fix."""

    code = "checkout_problems"
    title = "Cart not ready for checkout"

    def __init__(self, *, problems: list[dict[str, Any]]) -> None:
        codes = ", ".join(sorted({str(problem["code"]) for problem in problems}))
        super().__init__(f"Fix the cart first: {codes}.", problems=problems)


class SignInRequired(Forbidden):
    """Orders belong to customers: an anonymous cart is checked out after signing in."""

    code = "sign_in_required"
    title = "Sign in to check out"

    def __init__(self) -> None:
        super().__init__(
            "Sign in to check out: send this cart's token as cart_token to POST "
            "/api/auth/token and the cart becomes (or joins) your cart."
        )


class UnknownVoucher(InvalidInput):
    """A code applied to a cart names no voucher: the cart is there, the code is wrong
    (400, not pricing's 404, which would say the cart is missing)."""

    code = "voucher_not_found"
    title = "Voucher not found"

    def __init__(self, *, code: str) -> None:
        super().__init__(f"No voucher {code}.", voucher_code=code)
