"""Typed errors of the orders app."""

from __future__ import annotations

from ecommerce.errors import Conflict, Forbidden, InvalidInput, NotFound, Unprocessable


class IllegalTransition(Conflict):
    code = "illegal_transition"
    title = "Illegal order transition"

    def __init__(self, *, order_id: str, from_status: str, to_status: str) -> None:
        super().__init__(
            f"Order {order_id} cannot go from {from_status} to {to_status}.",
            order_id=order_id,
            from_status=from_status,
            to_status=to_status,
        )


class OrderNotFound(NotFound):
    code = "order_not_found"
    title = "Order not found"


class IdempotencyKeyReused(Unprocessable):
    code = "idempotency_key_reused"
    title = "Idempotency key reused"

    def __init__(self, *, key: str) -> None:
        super().__init__(
            f"Idempotency-Key {key!r} was already used with a different request body.", key=key
        )


class IdempotentRequestInProgress(Conflict):
    code = "request_in_progress"
    title = "Request in progress"

    def __init__(self, *, key: str) -> None:
        super().__init__(
            f"A request with Idempotency-Key {key!r} is still being processed; retry later.",
            key=key,
        )


class OrderForbidden(Forbidden):
    code = "order_forbidden"
    title = "Not allowed"


class InvalidOrder(InvalidInput):
    code = "invalid_order"
    title = "Invalid order"


class RefundExceedsPaid(Conflict):
    code = "refund_exceeds_paid"
    title = "Refund exceeds what was paid"

    def __init__(self, *, order_id: str, amount: str, paid: str) -> None:
        super().__init__(
            f"Order {order_id} cannot be refunded {amount}: {paid} is paid.",
            order_id=order_id,
            amount=amount,
            paid=paid,
        )
