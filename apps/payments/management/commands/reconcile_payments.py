"""`manage.py reconcile_payments`: settle payments whose outcome is in doubt."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from apps.payments.services import reconcile_payments


class Command(BaseCommand):
    help = (
        "Look up stuck pending payments at the provider by idempotency key: record what it "
        "charged, request a new charge where it charged nothing."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        outcome = reconcile_payments()
        self.stdout.write(", ".join(f"{count} {name}" for name, count in outcome.items()))
