"""Refunding a received return: the money side of apps.orders.returns.

Orders never calls payments (the app DAG), so the refund step of a return lives here: staff
refund a received return (its lines' share of what was paid, or less), through the one
refund path (`services.reserve_refund` then `services.send_refund`), and the Refund names
the return. The refund's success marks the return refunded in the transaction that records
the money (`services._complete_refund`), whether the
provider answers at once, through its webhook, or to the payment sweep.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import transaction

from apps.orders import locks as orders_locks
from apps.orders import returns as orders_returns
from apps.orders.models import Return
from apps.payments import services
from apps.payments.exceptions import InvalidRefundAmount, ReturnRefundInProgress
from apps.payments.models import Payment, Refund, RefundOrigin, RefundStatus
from ecommerce.money import format_amount
from ecommerce.observability.logging import get_logger

logger = get_logger(__name__)

LIVE = (RefundStatus.PENDING, RefundStatus.SUCCEEDED)


def refund_return(
    *, return_id: int, by: Any, amount: Decimal | None = None, reason: str = ""
) -> Refund:
    """Refund a received return: `amount` (None: its lines' share of what was paid, the
    most it may get), reserved against the payment, then asked of the provider.

    Returns the Refund: succeeded (the return is refunded, the order's amount_paid lowered,
    in one transaction), failed (the provider refused; the return stays received and may
    be refunded again), or pending (the provider is unreachable now; the sweep finishes
    it and the return with it). Locks the payment, then the order and the return: the
    order in which a refund's success takes them.

    Raises ReturnNotFound, IllegalReturnTransition (not received, or refunded already),
    ReturnRefundInProgress (a refund of it is pending), InvalidRefundAmount (not positive,
    more than the return's share, wrong places), RefundExceedsRefundable, NothingToRefund.
    """
    with transaction.atomic():
        order_id = Return.objects.filter(pk=return_id).values_list("order_id", flat=True).first()
        # The payment first (what services.reserve_refund and a refund's success lock first).
        Payment.objects.select_for_update(of=("self",)).filter(order_id=order_id).first()
        order, order_return = orders_locks.return_for_update(return_id)
        orders_returns.check_refundable(order_return)
        live = Refund.objects.filter(order_return=order_return, status__in=LIVE).first()
        if live is not None:
            raise ReturnRefundInProgress(
                return_id=str(order_return.public_id), refund_id=str(live.public_id)
            )
        due = orders_returns.default_refund_amount(order_return)
        if amount is None:
            amount = due
        elif amount > due:
            raise InvalidRefundAmount(
                f"Return {order_return.public_id} may be refunded at most "
                f"{format_amount(due, order.currency)} {order.currency}: its lines' share of "
                "what was paid."
            )
        reserved, _ = services.reserve_refund(
            order_id=order.pk,
            amount=amount,
            by=by,
            reason=reason or f"return {order_return.public_id}",
            origin=RefundOrigin.RETURN,
        )
        if reserved is None:  # pragma: no cover  (an amount is always given here)
            raise InvalidRefundAmount("Nothing to refund.")
        Refund.objects.filter(pk=reserved.pk).update(order_return=order_return)
        reserved.order_return = order_return
    try:
        return services.send_refund(reserved)
    except services.PROVIDER_DOWN as exc:
        logger.warning(
            "return_refund_deferred",
            return_id=str(order_return.public_id),
            refund_id=str(reserved.public_id),
            error=type(exc).__name__,
        )
        reserved.refresh_from_db()
        return reserved
