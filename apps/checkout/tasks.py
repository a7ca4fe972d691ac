"""Checkout tasks: a released order's voucher use back, idle carts deleted."""

from __future__ import annotations

from celery import shared_task

from apps.checkout import services
from apps.orders.models import Order, OrderStatus
from apps.pricing import services as pricing_services
from ecommerce.observability.logging import get_logger

logger = get_logger(__name__)

RELEASE_VOUCHER_USE_TASK = "checkout.release_voucher_use"
# Orders that end without the sale: their voucher use goes back (apps.py registers the
# handler for these statuses' topics).
RELEASING_STATUSES = frozenset(
    {OrderStatus.CANCELLED, OrderStatus.EXPIRED, OrderStatus.PAYMENT_FAILED}
)


@shared_task(name=RELEASE_VOUCHER_USE_TASK, acks_late=True)
def release_voucher_use_task(order_id: int) -> bool:
    """Give back the voucher use of an order that was cancelled, expired or whose payment
    failed: the handler of those status events. Safe to run any number of times: the use
    is released once (pricing's conditional UPDATE), later runs find nothing to do."""
    row = Order.objects.filter(pk=order_id).values_list("public_id", "status").first()
    if row is None:
        return False
    public_id, status = row
    if status not in RELEASING_STATUSES:
        return False  # a late or stray message: a live or paid order keeps its use
    released = pricing_services.release_voucher_use(reference=f"order:{public_id}", reason=status)
    if released:
        logger.info("voucher_use_released", order_id=str(public_id), reason=status)
    return bool(released)


@shared_task(name="checkout.delete_idle_carts", acks_late=True, soft_time_limit=240, time_limit=300)
def delete_idle_carts_task() -> int:
    """Delete carts idle past CART_IDLE_SECONDS (Celery beat)."""
    return services.delete_idle_carts()
