"""`manage.py retry_notifications [--failed] [--since ISO]`: queue due, lost or failed deliveries.

The beat sweeper (`notifications.sweep`) does the same without --failed every
NOTIFICATION_SWEEP_INTERVAL_SECONDS; this is the operator's way to do it now.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from apps.notifications import services


def parse_since(value: str) -> datetime:
    """An ISO 8601 date or date-time; one without an offset is taken as UTC.

    Raises CommandError on anything else.
    """
    moment = parse_datetime(value)
    if moment is None:
        day = parse_date(value)
        if day is None:
            raise CommandError(f"--since: not an ISO 8601 date or date-time: {value!r}")
        moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=UTC)
    return moment


class Command(BaseCommand):
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
            type=parse_since,
            default=None,
            help="Only notifications created at or after this ISO 8601 date or date-time.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        queued = services.requeue_notifications(
            include_failed=options["failed"], since=options["since"]
        )
        self.stdout.write(f"Queued {queued} notification(s).")
