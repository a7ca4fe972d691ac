"""`manage.py check_invariants`: verify what must hold, print each check, exit 1 on a break."""

from __future__ import annotations

import json
from argparse import ArgumentTypeError
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError, CommandParser
from django.utils import timezone

from ecommerce.commands import OperatorCommand, moment, non_negative_seconds
from ecommerce.invariants import CheckContext, registered, run_checks


def parse_since(value: str, *, now: datetime) -> datetime:
    """An ISO 8601 instant, or a duration back from `now`: `90s`, `15m`, `6h`, `7d`."""
    try:
        return moment(value, now=now)
    except ArgumentTypeError:
        raise CommandError(
            f"--since {value!r}: give an ISO 8601 time or a duration like 6h."
        ) from None


class Command(OperatorCommand):
    help = (
        "Check the invariants every app registers (orders settled, charges matching the "
        "provider, stock matching its ledger, notifications of every event, outbox drained). "
        "Read-only; exits 1 when any check fails or cannot run."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--since",
            help="Only check data created since then: ISO 8601, or a duration (30m, 6h, 7d).",
        )
        parser.add_argument(
            "--grace-seconds",
            type=non_negative_seconds,
            default=None,
            help="How long past its deadline work may still be in flight "
            "(default INVARIANTS_GRACE_SECONDS).",
        )
        parser.add_argument(
            "--check",
            action="append",
            dest="checks",
            metavar="NAME",
            help="Run only this check (repeatable). --list shows the names.",
        )
        parser.add_argument("--list", action="store_true", help="List the checks and exit.")
        parser.add_argument("--json", action="store_true", help="Print one JSON document.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["list"]:
            for check in registered():
                self.stdout.write(f"{check.name:36} {check.description}")
            return
        now = timezone.now()
        # Parsed here, not by argparse, so a duration counts back from the `now` checked.
        since = parse_since(options["since"], now=now) if options["since"] else None
        grace_seconds = options["grace_seconds"]
        if grace_seconds is None:
            grace_seconds = settings.INVARIANTS_GRACE_SECONDS
        if grace_seconds < 0:
            raise CommandError("--grace-seconds must be zero or more.")
        context = CheckContext(now=now, since=since, grace=timedelta(seconds=grace_seconds))
        try:
            results = run_checks(context, only=options["checks"])
        except KeyError as exc:
            raise CommandError(f"Unknown check: {exc.args[0]}. See --list.") from None
        failed = [result for result in results if not result.ok]
        if options["json"]:
            document = {
                "ok": not failed,
                "now": now.isoformat(),
                "since": since.isoformat() if since else None,
                "grace_seconds": grace_seconds,
                "checks": [result.as_dict() for result in results],
            }
            self.stdout.write(json.dumps(document, indent=2))
        else:
            for result in results:
                line = (
                    f"{result.status:5} {result.name:36} checked={result.checked} "
                    f"broken={result.broken} explained={result.explained} "
                    f"({result.seconds:.2f}s)"
                )
                self.stdout.write(line)
                for note in result.notes:
                    self.stdout.write(f"      note: {note}")
                for example in result.examples:
                    self.stdout.write(f"      - {example}")
                if result.broken > len(result.examples):
                    self.stdout.write(f"      ... and {result.broken - len(result.examples)} more")
            verdict = (
                "all invariants hold"
                if not failed
                else ("broken: " + ", ".join(f"{r.name} ({r.status})" for r in failed))
            )
            self.stdout.write(verdict)
        if failed:
            raise SystemExit(1)
