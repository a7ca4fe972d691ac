"""Outbox topics published by the orders app; payloads are `{"order_id": <pk>}` unless said."""

from __future__ import annotations

ORDER_PLACED = "order.placed"
# A paid order's refund was claimed (paid -> refunding). Payments refunds the money and
# finishes the order (refunding -> refunded), so orders never calls the payment provider.
# Payload: {"order_id", "actor_id" (who asked, or None), "reason"}.
ORDER_REFUND_REQUESTED = "order.refund_requested"
# Part of what was paid went back to the buyer and some is still paid (a refund that
# leaves nothing paid is `order.refunded`). Payload: {"order_id", "amount" (this refund),
# "amount_paid" (what is still paid), "reason"}.
ORDER_PARTIALLY_REFUNDED = "order.partially_refunded"
# Staff asked to charge a pending order again; payments charges it (the same task and
# idempotency key as the first charge, so a charge already made is found, not repeated).
ORDER_PAYMENT_RETRY_REQUESTED = "order.payment_retry_requested"
# A return's steps (apps.orders.returns); payload {"order_id", "return_id"} (pks). The
# order's status does not change: these are not `status_topic`s.
RETURN_REQUESTED = "order.return_requested"
RETURN_APPROVED = "order.return_approved"
RETURN_REJECTED = "order.return_rejected"
RETURN_RECEIVED = "order.return_received"
RETURN_REFUNDED = "order.return_refunded"


def status_topic(status: str) -> str:
    """`order.paid`, `order.cancelled`, ... one topic per status an order enters."""
    return f"order.{status}"
