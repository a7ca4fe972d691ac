"""Payment reads: the money ledger's per-order sums, checked against what orders say."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import (
    BooleanField,
    Case,
    Count,
    DecimalField,
    F,
    Max,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce

from apps.orders.models import Order, OrderStatus
from apps.payments.models import MoneyMovementKind, Refund

ZERO = Decimal("0.00")
# Orders that hold a payment: what they say was paid (amount_paid) is their captures net
# of their refunds. Paid and refunding orders hold some money (a paid order without any is
# a break); a fulfilled one may have been refunded in full after its goods left.
LEDGER_PAID = frozenset({OrderStatus.PAID, OrderStatus.FULFILLED, OrderStatus.REFUNDING})
MUST_HOLD_MONEY = frozenset({OrderStatus.PAID, OrderStatus.REFUNDING})
# Orders that ended without being paid: a charge that landed after they ended (a late
# capture) is refunded by `reconcile_payments`; until then it is in flight, not broken.
ENDED_UNPAID = frozenset({OrderStatus.EXPIRED, OrderStatus.CANCELLED, OrderStatus.PAYMENT_FAILED})


@dataclass(frozen=True)
class LedgerBreak:
    """An order whose ledger does not add up to what it says was paid."""

    order_id: int
    public_id: str
    status: str
    currency: str
    expected: Decimal
    captured: Decimal
    refunded: Decimal
    foreign_rows: int
    # True when the break is a late capture still within the grace period (its refund
    # is on its way): explained, not broken.
    in_flight: bool
    # The order's status and amount_paid disagree (money held by an order that is not
    # paid, or a paid order holding none), whatever the ledger says.
    status_mismatch: bool = False

    def describe(self) -> str:
        line = (
            f"order {self.order_id} ({self.public_id}) {self.status}: captured {self.captured}, "
            f"refunded {self.refunded}, net {self.captured - self.refunded} {self.currency}; "
            f"the order says {self.expected} was paid"
        )
        if self.status_mismatch:
            line += f"; a {self.status} order must hold " + (
                "some money" if self.status in MUST_HOLD_MONEY else "none"
            )
        if self.foreign_rows:
            line += f"; {self.foreign_rows} ledger row(s) in another currency"
        return line


@dataclass(frozen=True)
class LedgerReport:
    checked: int
    breaks: list[LedgerBreak]

    @property
    def broken(self) -> list[LedgerBreak]:
        return [b for b in self.breaks if not b.in_flight]

    @property
    def in_flight(self) -> list[LedgerBreak]:
        return [b for b in self.breaks if b.in_flight]


def _money(expression: object) -> Coalesce:
    return Coalesce(
        expression, Value(ZERO), output_field=DecimalField(max_digits=14, decimal_places=2)
    )


def money_ledger_report(*, since: datetime | None, settled_before: datetime) -> LedgerReport:
    """Check every order (created at or after `since`) against its money ledger.

    Every order: captures minus refunds equal what it says was paid (`amount_paid`), and
    every ledger row is in the order's currency. Paid and refunding orders hold some money;
    orders that are not paid, fulfilled or refunding hold none (no capture, or captures
    refunded in full): money taken for an order that ended unpaid must be refunded. One
    aggregate query returns only the orders that break this (HAVING), so the cost is one
    scan however many orders there are; a late capture of an order that ended unpaid, made
    after `settled_before`, is reported as in flight.
    """
    orders: QuerySet[Order] = Order.objects.all()
    if since is not None:
        orders = orders.filter(created_at__gte=since)
    capture = Q(money_movements__kind=MoneyMovementKind.CAPTURE)
    refund = Q(money_movements__kind=MoneyMovementKind.REFUND)
    rows = (
        orders.annotate(
            captured=_money(Sum("money_movements__amount", filter=capture)),
            refunded=_money(Sum("money_movements__amount", filter=refund)),
            last_capture=Max("money_movements__created_at", filter=capture),
            foreign_rows=Count(
                "money_movements", filter=~Q(money_movements__currency=F("currency"))
            ),
            expected=F("amount_paid"),
            status_mismatch=Case(
                When(Q(status__in=MUST_HOLD_MONEY, amount_paid__lte=0), then=Value(True)),
                When(~Q(status__in=LEDGER_PAID) & Q(amount_paid__gt=0), then=Value(True)),
                default=Value(False),
                output_field=BooleanField(),
            ),
        )
        .filter(
            Q(foreign_rows__gt=0)
            | Q(status_mismatch=True)
            | ~Q(expected=F("captured") - F("refunded"))
        )
        .order_by("pk")
        .values(
            "pk",
            "public_id",
            "status",
            "currency",
            "total",
            "expected",
            "captured",
            "refunded",
            "last_capture",
            "foreign_rows",
            "status_mismatch",
        )
    )
    breaks = [
        LedgerBreak(
            order_id=row["pk"],
            public_id=str(row["public_id"]),
            status=row["status"],
            currency=row["currency"],
            expected=row["expected"],
            captured=row["captured"],
            refunded=row["refunded"],
            foreign_rows=row["foreign_rows"],
            status_mismatch=row["status_mismatch"],
            in_flight=(
                row["status"] in ENDED_UNPAID
                and not row["foreign_rows"]
                and not row["status_mismatch"]
                and row["captured"] - row["refunded"] > 0
                and row["last_capture"] is not None
                and row["last_capture"] >= settled_before
            ),
        )
        for row in rows
    ]
    return LedgerReport(checked=orders.count(), breaks=breaks)


def refunds_of(*, order_id: int) -> QuerySet[Refund]:
    """An order's refunds, oldest first, with what their output needs."""
    return (
        Refund.objects.filter(order_id=order_id)
        .select_related("order", "requested_by")
        .order_by("created_at", "pk")
    )
