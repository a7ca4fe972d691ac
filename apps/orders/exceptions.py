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


class IllegalReturnTransition(Conflict):
    code = "illegal_return_transition"
    title = "Illegal return transition"

    def __init__(self, *, return_id: str, from_status: str, to_status: str) -> None:
        super().__init__(
            f"Return {return_id} is {from_status}: it cannot become {to_status}.",
            return_id=return_id,
            from_status=from_status,
            to_status=to_status,
        )


class ReturnNotFound(NotFound):
    code = "return_not_found"
    title = "Return not found"


class OrderNotReturnable(Conflict):
    code = "order_not_returnable"
    title = "Order cannot be returned"

    def __init__(self, *, order_id: str, status: str) -> None:
        super().__init__(
            f"Order {order_id} is {status}: only fulfilled orders take returns.",
            order_id=order_id,
            status=status,
        )


class InvalidReturn(InvalidInput):
    code = "invalid_return"
    title = "Invalid return"


class ReturnQuantityExceeded(Conflict):
    """More units asked back than the line has left to return (bought less held by returns
    that were not rejected)."""

    code = "return_quantity_exceeded"
    title = "Return quantity exceeded"

    def __init__(self, *, lines: dict[str, dict[str, int]]) -> None:
        described = ", ".join(
            f"{sku}: {q['requested']} asked, {q['returnable']} returnable"
            for sku, q in lines.items()
        )
        super().__init__(f"Too many units asked back ({described}).", lines=lines)


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
