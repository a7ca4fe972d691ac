"""`manage.py reconcile_payments`: run the payment sweep now (beat runs it periodically)."""

from __future__ import annotations

from typing import Any

from apps.payments.services import reconcile_payments
from ecommerce.commands import OperatorCommand


class Command(OperatorCommand):
    help = (
        "Open and charge the payment of an order whose order.placed was lost, charge payments "
        "never attempted (their message was lost) and settle ones in doubt, asking the "
        "provider by idempotency key first; refund charges of unpaid orders and finish "
        "refunds left half-done."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        with self.progress("reconcile_payments") as progress:
            outcome = reconcile_payments()
            for name, count in outcome.items():
                if count:
                    progress.advance(name, count)
        self.stdout.write(", ".join(f"{count} {name}" for name, count in outcome.items()))
