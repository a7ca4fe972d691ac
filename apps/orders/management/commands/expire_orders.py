"""`manage.py expire_orders`: expire unpaid orders past the payment timeout now."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from apps.orders.services import expire_orders


class Command(BaseCommand):
    help = "Expire orders still pending payment after ORDER_PAYMENT_TIMEOUT_SECONDS; stock returns."

    def handle(self, *args: Any, **options: Any) -> None:
        total = 0
        while expired := expire_orders():
            total += expired
        self.stdout.write(f"expired {total} order(s)")
