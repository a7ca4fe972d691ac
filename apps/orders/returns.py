"""Returns: a customer sends back some units of a fulfilled order; staff decide, receive
(restock into a chosen warehouse, or write off with a reason) and, through the payments app,
refund.

Every step runs under the order's row lock (locks.return_for_update), writes an OrderEvent
naming the return (the order's status does not change), and publishes its
`order.return_<step>` topic to the outbox, in one transaction. The units a return holds are
counted on `OrderItem.quantity_returned` from the request until a rejection frees them; a
CHECK keeps that count within what was bought. Orders never calls payments (the app DAG):
payments refunds the money and then calls `mark_return_refunded`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.inventory import selectors as inventory_selectors
from apps.inventory import services as inventory_services
from apps.orders import events, locks
from apps.orders.exceptions import (
    IllegalReturnTransition,
    InvalidReturn,
    OrderNotReturnable,
    ReturnQuantityExceeded,
)
from apps.orders.models import (
    RETURN_TRANSITIONS,
    RETURNABLE_ORDER_STATUSES,
    Order,
    OrderEvent,
    OrderItem,
    Return,
    ReturnDisposition,
    ReturnLine,
    ReturnStatus,
    line_refund_amount,
)
from ecommerce import outbox
from ecommerce.observability.logging import get_logger

logger = get_logger(__name__)

ZERO = Decimal("0.00")
REASON_MAX = 500


@dataclass(frozen=True)
class ReturnLineRequest:
    """Units of one order line asked back; the line named by its SKU, as the order shows it."""

    sku: str
    quantity: int


@dataclass(frozen=True)
class LineReceipt:
    """Where one received line goes: into `warehouse` (a slug), or written off with
    `write_off_reason`. Exactly one of the two."""

    sku: str
    warehouse: str = ""
    write_off_reason: str = ""


def _actor(user: Any) -> Any:
    return user if user is not None and getattr(user, "is_authenticated", False) else None


def return_reference(order_return: Return) -> str:
    """What the stock ledger rows of a return's restocked units name."""
    return f"return:{order_return.public_id}"


def default_refund_amount(order_return: Return) -> Decimal:
    """What a return's refund is unless staff give less: the returned units' share of their
    lines' totals (shipping is not refunded)."""
    return sum(
        (line_refund_amount(line.item, line.quantity) for line in order_return.lines.all()),
        ZERO,
    )


def _record(order: Order, order_return: Return, *, topic: str, actor: Any, reason: str) -> None:
    """History row and outbox event of one step; caller holds the order's row lock."""
    OrderEvent.objects.create(
        order=order,
        from_status=order.status,
        to_status=order.status,
        actor=_actor(actor),
        reason=reason[:255],
        order_return=order_return,
    )
    outbox.publish(topic, {"order_id": order.pk, "return_id": order_return.pk})
    logger.info(
        "order_return_step",
        order_id=str(order.public_id),
        return_id=str(order_return.public_id),
        topic=topic,
        status=order_return.status,
    )


def _clean_reason(reason: str, *, what: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise InvalidReturn(f"{what} is required.")
    if len(reason) > REASON_MAX:
        raise InvalidReturn(f"{what} is at most {REASON_MAX} characters.")
    return reason


def request_return(
    *, order_id: int, lines: Sequence[ReturnLineRequest], reason: str, by: Any
) -> Return:
    """Open a return of some units of a fulfilled order.

    Each line names an order line by SKU, once, with a positive quantity no larger than what
    is left to return of it (bought less what returns that were not rejected hold). Checked
    under the order's row lock, so two requests at once never hold more than was bought.
    Raises InvalidReturn (no lines, a duplicate or unknown SKU, a quantity below 1, no
    reason), OrderNotReturnable (not fulfilled), ReturnQuantityExceeded, OrderNotFound.
    """
    reason = _clean_reason(reason, what="A reason for the return")
    if not lines:
        raise InvalidReturn("A return needs at least one line.")
    wanted: dict[str, int] = {}
    for line in lines:
        if line.sku in wanted:
            raise InvalidReturn(f"Item {line.sku} is listed twice: give each item once.")
        if line.quantity < 1:
            raise InvalidReturn(f"Item {line.sku}: return at least 1 unit.")
        wanted[line.sku] = line.quantity
    with transaction.atomic():
        order = locks.order_for_update(order_id)
        if order.status not in RETURNABLE_ORDER_STATUSES:
            raise OrderNotReturnable(order_id=str(order.public_id), status=order.status)
        items = {item.sku: item for item in order.items.filter(sku__in=list(wanted))}
        unknown = sorted(set(wanted) - set(items))
        if unknown:
            raise InvalidReturn(f"Order {order.public_id} has no item {', '.join(unknown)}.")
        over = {
            sku: {"requested": quantity, "returnable": item.returnable}
            for sku, quantity in wanted.items()
            if quantity > (item := items[sku]).returnable
        }
        if over:
            raise ReturnQuantityExceeded(lines=over)
        order_return = Return.objects.create(order=order, reason=reason, requested_by=_actor(by))
        ReturnLine.objects.bulk_create(
            ReturnLine(order_return=order_return, item=items[sku], quantity=quantity)
            for sku, quantity in sorted(wanted.items())
        )
        for sku, quantity in wanted.items():
            # The CHECK (quantity_returned <= quantity_fulfilled) stands behind the count above.
            OrderItem.objects.filter(pk=items[sku].pk).update(
                quantity_returned=F("quantity_returned") + quantity
            )
        units = sum(wanted.values())
        _record(
            order,
            order_return,
            topic=events.RETURN_REQUESTED,
            actor=by,
            reason=f"return {order_return.public_id} requested ({units} unit(s)): {reason}",
        )
    return order_return


def approve_return(*, return_id: int, by: Any, note: str = "") -> Return:
    """Requested -> approved: the customer may send the goods. Raises IllegalReturnTransition."""
    with transaction.atomic():
        order, order_return = locks.return_for_update(return_id)
        order_return.transition_to(ReturnStatus.APPROVED)
        order_return.decided_by, order_return.decided_at = _actor(by), timezone.now()
        if note:
            order_return.staff_note = note[:REASON_MAX]
        order_return.save(
            update_fields=["status", "decided_by", "decided_at", "staff_note", "updated_at"]
        )
        _record(
            order,
            order_return,
            topic=events.RETURN_APPROVED,
            actor=by,
            reason=f"return {order_return.public_id} approved" + (f": {note}" if note else ""),
        )
    return order_return


def reject_return(*, return_id: int, by: Any, note: str) -> Return:
    """Requested or approved -> rejected, with the reason the customer is told; its units
    become returnable again. Raises InvalidReturn (no reason), IllegalReturnTransition."""
    note = _clean_reason(note, what="A reason for the rejection")
    with transaction.atomic():
        order, order_return = locks.return_for_update(return_id)
        order_return.transition_to(ReturnStatus.REJECTED)
        order_return.decided_by, order_return.decided_at = _actor(by), timezone.now()
        order_return.staff_note = note
        order_return.save(
            update_fields=["status", "decided_by", "decided_at", "staff_note", "updated_at"]
        )
        for line in order_return.lines.all():
            OrderItem.objects.filter(pk=line.item_id).update(
                quantity_returned=F("quantity_returned") - line.quantity
            )
        _record(
            order,
            order_return,
            topic=events.RETURN_REJECTED,
            actor=by,
            reason=f"return {order_return.public_id} rejected: {note}",
        )
    return order_return


def receive_return(
    *, return_id: int, receipts: Sequence[LineReceipt], by: Any, note: str = ""
) -> Return:
    """Approved -> received: each line's units go into the warehouse named (a stock ledger
    row with reason `return` naming the return) or are written off with a reason (no
    stock moves; the line records it). Every line of the return needs one receipt.

    Raises InvalidReturn (a line missing, listed twice, not in the return, with both or
    neither of warehouse and write-off reason), UnknownWarehouse, IllegalReturnTransition.
    """
    given: dict[str, LineReceipt] = {}
    for receipt in receipts:
        if receipt.sku in given:
            raise InvalidReturn(f"Item {receipt.sku} is listed twice: give each item once.")
        if bool(receipt.warehouse) == bool(receipt.write_off_reason.strip()):
            raise InvalidReturn(
                f"Item {receipt.sku}: give either a warehouse to restock into or a reason to "
                "write it off."
            )
        if len(receipt.write_off_reason) > 255:
            raise InvalidReturn(
                f"Item {receipt.sku}: a write-off reason is at most 255 characters."
            )
        given[receipt.sku] = receipt
    with transaction.atomic():
        order, order_return = locks.return_for_update(return_id)
        order_return.transition_to(ReturnStatus.RECEIVED)
        lines = {line.item.sku: line for line in order_return.lines.select_related("item")}
        unknown = sorted(set(given) - set(lines))
        if unknown:
            raise InvalidReturn(
                f"Return {order_return.public_id} has no item {', '.join(unknown)}."
            )
        missing = sorted(set(lines) - set(given))
        if missing:
            raise InvalidReturn(
                f"Say where every item goes: nothing given for {', '.join(missing)}."
            )
        warehouses = {
            slug: inventory_selectors.warehouse_by_slug(slug)
            for slug in sorted({r.warehouse for r in given.values() if r.warehouse})
        }
        moved: list[str] = []
        # In SKU order (a line per variant): two receipts lock stock rows in one order.
        for sku in sorted(lines):
            line, receipt = lines[sku], given[sku]
            if receipt.warehouse:
                warehouse = warehouses[receipt.warehouse]
                inventory_services.receive_returned(
                    variant_id=line.item.variant_id,
                    quantity=line.quantity,
                    warehouse=warehouse,
                    reference=return_reference(order_return),
                    note=f"order {order.public_id}",
                    actor=_actor(by),
                )
                line.disposition, line.warehouse = ReturnDisposition.RESTOCK, warehouse
                moved.append(f"{line.quantity} x {sku} into {warehouse.slug}")
            else:
                line.disposition = ReturnDisposition.WRITE_OFF
                line.write_off_reason = receipt.write_off_reason.strip()
                moved.append(f"{line.quantity} x {sku} written off ({line.write_off_reason})")
            line.save(update_fields=["disposition", "warehouse", "write_off_reason"])
        order_return.received_by, order_return.received_at = _actor(by), timezone.now()
        if note:
            order_return.staff_note = note[:REASON_MAX]
        order_return.save(
            update_fields=["status", "received_by", "received_at", "staff_note", "updated_at"]
        )
        _record(
            order,
            order_return,
            topic=events.RETURN_RECEIVED,
            actor=by,
            reason=f"return {order_return.public_id} received: {'; '.join(moved)}",
        )
    return order_return


def check_refundable(order_return: Return) -> None:
    """Raise IllegalReturnTransition unless the return may be refunded now (received)."""
    if ReturnStatus.REFUNDED not in RETURN_TRANSITIONS[order_return.status]:
        raise IllegalReturnTransition(
            return_id=str(order_return.public_id),
            from_status=order_return.status,
            to_status=ReturnStatus.REFUNDED,
        )


def mark_return_refunded(*, return_id: int, amount: Decimal, by: Any = None) -> Return:
    """Received -> refunded, recording `amount`. Called by payments once the money is back
    (orders never moves money); a return already refunded is left as it is (a repeated
    provider answer). Raises IllegalReturnTransition from any other status."""
    with transaction.atomic():
        order, order_return = locks.return_for_update(return_id)
        if order_return.status == ReturnStatus.REFUNDED:
            return order_return
        order_return.transition_to(ReturnStatus.REFUNDED)
        order_return.refunded_amount = amount
        order_return.refunded_at = timezone.now()
        order_return.save(update_fields=["status", "refunded_amount", "refunded_at", "updated_at"])
        _record(
            order,
            order_return,
            topic=events.RETURN_REFUNDED,
            actor=by,
            reason=f"return {order_return.public_id} refunded: {amount} {order.currency}",
        )
    return order_return
