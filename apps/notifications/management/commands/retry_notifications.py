"""`manage.py retry_notifications [--failed] [--since ISO]`: queue due, lost or failed deliveries.

The beat sweeper (`notifications.sweep`) does the same without --failed every
NOTIFICATION_SWEEP_INTERVAL_SECONDS; this is the operator's way to do it now.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from apps.notifications import services
from ecommerce.commands import OperatorCommand, moment


class Command(OperatorCommand):
    help = (
        "Queue now what the notification sweeper would: deliveries due and not on their way "
        "(a retry whose wait is over, a queued one quiet for NOTIFICATION_REQUEUE_AFTER_SECONDS, "
        "a send abandoned for NOTIFICATION_LOCK_TTL_SECONDS); with --failed also the failed "
        "ones, attempts and retry horizon reset."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--failed", action="store_true", help="Also resend notifications that failed."
        )
        parser.add_argument(
            "--since",
            type=moment,
            default=None,
            help="Only notifications created at or after this ISO 8601 date or date-time "
            "(UTC unless it names an offset), or this long ago: 90m, 6h, 7d.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        with self.progress("retry_notifications") as progress:
            queued = services.requeue_notifications(
                include_failed=options["failed"], since=options["since"], progress=progress
            )
        self.stdout.write(f"Queued {queued} notification(s).")
