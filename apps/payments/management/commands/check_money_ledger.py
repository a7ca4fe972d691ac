"""`manage.py check_money_ledger`: every order's captures minus refunds equal what it says
was paid (`amount_paid`); prints each broken order and exits 1 on any break."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import CommandParser
from django.db import connection, transaction
from django.utils import timezone

from apps.payments.selectors import money_ledger_report
from ecommerce.commands import OperatorCommand, non_negative_seconds
from ecommerce.invariants.management.commands.check_invariants import parse_since


class Command(OperatorCommand):
    help = (
        "Check the money ledger across all orders: captures minus refunds equal what the "
        "order says was paid (amount_paid), which is more than zero for a paid or refunding "
        "order and zero for one that is not paid, fulfilled or refunding. One line per "
        "broken order, then a summary. Read-only; exits 1 on any break."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--since",
            help="Only check orders created since then: ISO 8601, or a duration (30m, 6h, 7d).",
        )
        parser.add_argument(
            "--grace-seconds",
            type=non_negative_seconds,
            default=None,
            help="How long a late capture of an unpaid order may wait for its refund "
            "(default INVARIANTS_GRACE_SECONDS).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        now = timezone.now()
        since = parse_since(options["since"], now=now) if options["since"] else None
        grace_seconds = options["grace_seconds"]
        if grace_seconds is None:
            grace_seconds = settings.INVARIANTS_GRACE_SECONDS
        # One snapshot for the sums and the count, and never a write (inside a caller's
        # transaction, a test's, the snapshot is already taken: reuse it).
        outermost = not connection.in_atomic_block
        with transaction.atomic():
            if outermost and connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            report = money_ledger_report(
                since=since, settled_before=now - timedelta(seconds=grace_seconds)
            )
        for item in report.broken:
            self.stdout.write(f"BROKEN {item.describe()}")
        for item in report.in_flight:
            self.stdout.write(f"in flight (refund due) {item.describe()}")
        broken = len(report.broken)
        self.stdout.write(
            f"money ledger: {report.checked} order(s) checked, {broken} broken, "
            f"{len(report.in_flight)} late capture(s) awaiting refund"
            + ("" if broken else "; it adds up")
        )
        if broken:
            raise SystemExit(1)
