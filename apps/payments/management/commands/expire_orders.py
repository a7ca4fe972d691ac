"""`manage.py expire_orders`: expire unpaid orders past the payment timeout now.

It lives with payments because each order is expired only after the provider has been
asked whether it charged it (apps.payments.services.expire_overdue_orders).
"""

from __future__ import annotations

from typing import Any

from apps.payments.services import expire_overdue_orders
from ecommerce.commands import OperatorCommand


class Command(OperatorCommand):
    help = (
        "Expire orders still pending payment after ORDER_PAYMENT_TIMEOUT_SECONDS (stock "
        "returns), each after asking the provider: a charge it made pays or fails the order "
        "instead; an order the provider cannot be asked about now is left (deferred). Works in "
        "rounds of ORDER_EXPIRY_BATCH_SIZE orders; progress: a bar on a terminal, otherwise a "
        "command_progress log line every 500 orders or 5 seconds."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        total: dict[str, int] = {}
        with self.progress("expire_orders") as progress:
            while True:
                outcome = expire_overdue_orders()
                for name, count in outcome.items():
                    total[name] = total.get(name, 0) + count
                    if count:
                        progress.advance(name, count)
                if not any(count for name, count in outcome.items() if name != "deferred"):
                    break  # nothing moved: the rest waits for the provider or a charge in flight
        self.stdout.write(
            f"expired {total['expired']} order(s), {total['paid']} paid, "
            f"{total['declined']} declined, {total['deferred']} deferred"
        )
