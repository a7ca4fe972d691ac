"""`manage.py relay_outbox`: hand every waiting outbox message to Celery now."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from ecommerce.outbox.registry import pending_count, relay_pending


class Command(BaseCommand):
    help = "Re-send outbox messages that were not handed to Celery (the periodic relay, by hand)."

    def handle(self, *args: Any, **options: Any) -> None:
        total = 0
        while sent := relay_pending(min_age_seconds=0):
            total += sent
        self.stdout.write(f"relayed {total} message(s); {pending_count()} still waiting")
