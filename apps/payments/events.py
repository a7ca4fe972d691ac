"""Outbox topics published by the payments app."""

from __future__ import annotations

# Money taken for an order that could not keep it (it ended unpaid while the capture was in
# flight) went back to the buyer, by the system. Payload: {"order_id", "refund_id" (the
# Refund's public id), "amount", "reason"}. Notifications tell the buyer and staff.
PAYMENT_COMPENSATED = "payment.compensated"
