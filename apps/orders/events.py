"""Outbox topics published by the orders app; payloads are `{"order_id": <pk>}`."""

from __future__ import annotations

ORDER_PLACED = "order.placed"


def status_topic(status: str) -> str:
    """`order.paid`, `order.cancelled`, ... one topic per status an order enters."""
    return f"order.{status}"
