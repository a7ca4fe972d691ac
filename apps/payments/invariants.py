"""Payment invariants: orders leave pending_payment in time, the provider agrees with us, and
the money ledger adds up to what each order says was paid.

The provider is asked by idempotency key (`find_charge`, a read): one key per order means
at most one charge per order there, so "found and succeeded" is "charged exactly once".
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet

from apps.orders.models import Order, OrderStatus
from apps.payments.gateway import ChargeResult, ChargeStatus, get_gateway
from apps.payments.models import Payment, PaymentStatus
from apps.payments.selectors import money_ledger_report
from ecommerce.invariants import CheckContext, Outcome, invariant

# Parallel lookups: a provider answers each in milliseconds, thousands of orders add up.
PROVIDER_LOOKUP_THREADS = 8
PAID = frozenset({OrderStatus.PAID, OrderStatus.FULFILLED})
UNPAID_AND_DONE = frozenset({OrderStatus.EXPIRED, OrderStatus.CANCELLED})


def _orders(context: CheckContext) -> QuerySet[Order]:
    orders = Order.objects.all()
    if context.since is not None:
        orders = orders.filter(created_at__gte=context.since)
    return orders


@invariant("payments.payment_window")
def payment_window(context: CheckContext) -> Outcome:
    """Every order past its hold (its payment window, plus grace) has left pending_payment.

    Explained, not broken: an overdue order whose payment was attempted within the grace
    period and last failed to reach the provider (expiry waits for the provider's answer).
    """
    settled = context.settled_before()
    window = timedelta(seconds=settings.ORDER_PAYMENT_TIMEOUT_SECONDS)
    # The hold an order was placed with; rows from before holds were stored: the timeout.
    past_hold = Q(expires_at__lt=settled) | Q(
        expires_at__isnull=True, created_at__lt=settled - window
    )
    orders = _orders(context)
    outcome = Outcome(checked=orders.filter(past_hold).count())
    overdue = orders.filter(past_hold, status=OrderStatus.PENDING_PAYMENT)
    payments = {
        p["order_id"]: p
        for p in Payment.objects.filter(order__in=overdue).values(
            "order_id", "status", "attempts", "last_error", "last_attempt_at"
        )
    }
    for order in overdue.order_by("pk").values("pk", "public_id", "created_at"):
        payment = payments.get(order["pk"])
        if (
            payment is not None
            and payment["last_error"]
            and payment["last_attempt_at"] is not None
            and payment["last_attempt_at"] >= settled
        ):
            outcome.explained += 1
            continue
        detail = (
            "no payment"
            if payment is None
            else f"payment {payment['status']}, {payment['attempts']} attempt(s)"
            + (f", last error {payment['last_error'][:80]!r}" if payment["last_error"] else "")
        )
        outcome.fail(
            f"order {order['pk']} ({order['public_id']}) placed {order['created_at'].isoformat()} "
            f"still pending_payment: {detail}"
        )
    if outcome.explained:
        outcome.notes.append(
            f"{outcome.explained} overdue order(s) wait for a provider that failed recently"
        )
    return outcome


def _verdict(
    row: Mapping[str, Any], charge: ChargeResult | None, context: CheckContext
) -> str | None:
    """What is wrong with this order's payment given the provider's charge, or None."""
    status = row["order__status"]
    succeeded = charge is not None and charge.status is ChargeStatus.SUCCEEDED
    settled = row["order__updated_at"] < context.settled_before()
    if status in PAID or status == OrderStatus.REFUNDED:
        if row["pk"] is None:
            return f"order {status} but it has no payment"
        expected = (
            PaymentStatus.REFUNDED if status == OrderStatus.REFUNDED else PaymentStatus.SUCCEEDED
        )
        if status == OrderStatus.FULFILLED and row["status"] == PaymentStatus.REFUNDED:
            expected = PaymentStatus.REFUNDED  # refunded in full after its goods left
        if charge is None or charge.status is not ChargeStatus.SUCCEEDED:
            return f"order {status} but the provider has {charge.status if charge else 'no'} charge"
        if row["status"] != expected:
            return f"order {status} but its payment is {row['status']}"
        if charge.charge_id != row["provider_charge_id"]:
            return (
                f"recorded charge {row['provider_charge_id']!r}, provider has {charge.charge_id!r}"
            )
        if charge.amount != row["amount"] or charge.currency != row["currency"]:
            charged = f"{charge.amount} {charge.currency}"
            return f"charged {charged}, payment is {row['amount']} {row['currency']}"
        return None
    if charge is None or not succeeded:
        return None
    # The provider took the money for an order that is not paid.
    if status in UNPAID_AND_DONE and row["status"] == PaymentStatus.REFUNDED:
        return None
    if not settled and status != OrderStatus.PAYMENT_FAILED:
        return None  # recorded or refunded within the grace period
    return f"order {status} but charge {charge.charge_id} succeeded and was not refunded"


def _unopened_rows(context: CheckContext) -> list[dict[str, Any]]:
    """Orders whose payment was never opened, as payment rows without one (pk None), asked
    about under the key their payment would have: a charge there is one nobody recorded."""
    return [
        {
            "pk": None,
            "order_id": order["pk"],
            "status": None,
            "amount": None,
            "currency": None,
            "idempotency_key": Payment.key_for(order["public_id"]),
            "provider_charge_id": "",
            "order__status": order["status"],
            "order__updated_at": order["updated_at"],
        }
        for order in _orders(context)
        .filter(payment__isnull=True)
        .order_by("pk")
        .values("pk", "public_id", "status", "updated_at")
    ]


@invariant("payments.provider_agrees")
def provider_agrees(context: CheckContext) -> Outcome:
    """Every paid order has exactly one succeeded charge at the provider, of its amount, and
    every succeeded charge of ours belongs to a paid or refunded order (asked by key).

    Orders whose payment was never opened (pending, or cancelled before it was) are asked
    about by the key their payment would have: none may hold a succeeded charge.
    """
    rows = list(
        Payment.objects.filter(order__in=_orders(context))
        .order_by("pk")
        .values(
            "pk",
            "order_id",
            "status",
            "amount",
            "currency",
            "idempotency_key",
            "provider_charge_id",
            "order__status",
            "order__updated_at",
        )
    ) + _unopened_rows(context)
    gateway = get_gateway()

    def lookup(row: dict[str, Any]) -> ChargeResult | None:
        return gateway.find_charge(idempotency_key=row["idempotency_key"])

    with ThreadPoolExecutor(max_workers=PROVIDER_LOOKUP_THREADS) as pool:
        charges = list(pool.map(lookup, rows))
    outcome = Outcome(checked=len(rows))
    for row, charge in zip(rows, charges, strict=True):
        problem = _verdict(row, charge, context)
        if problem:
            outcome.fail(f"order {row['order_id']} key {row['idempotency_key']}: {problem}")
    outcome.notes.append(f"asked the provider about {len(rows)} order(s)")
    return outcome


@invariant("payments.money_ledger")
def money_ledger(context: CheckContext) -> Outcome:
    """Per order, captures minus refunds in the money ledger equal what the order says was
    paid (`amount_paid`); paid and refunding orders hold some, orders not paid, fulfilled or
    refunding hold none.

    One aggregate query (`selectors.money_ledger_report`). Explained, not broken: a late
    capture of an order that ended unpaid within the grace period (its refund is due).
    """
    report = money_ledger_report(since=context.since, settled_before=context.settled_before())
    outcome = Outcome(checked=report.checked, explained=len(report.in_flight))
    for item in report.broken:
        outcome.fail(item.describe())
    if outcome.explained:
        outcome.notes.append(
            f"{outcome.explained} late capture(s) of unpaid orders wait for their refund"
        )
    return outcome
