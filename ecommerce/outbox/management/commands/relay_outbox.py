"""`manage.py relay_outbox`: hand every outbox message not completed yet to Celery now."""

from __future__ import annotations

from typing import Any

from ecommerce.commands import OperatorCommand
from ecommerce.outbox.registry import make_all_due, pending_count, relay_pending


class Command(OperatorCommand):
    help = (
        "Re-send every outbox message whose task has not completed, lease or not (the "
        "periodic relay waits for leases to run out). Safe: handlers are idempotent."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        make_all_due()
        total = 0
        # Each row sent gets a new lease, so the rounds end once every row went (or at the
        # first round the broker refuses).
        with self.progress("relay_outbox", total=pending_count()) as progress:
            while sent := relay_pending():
                total += sent
                progress.advance("relayed", sent)
        self.stdout.write(f"relayed {total} message(s); {pending_count()} not completed yet")
