"""The check registry and the runner (one read-only snapshot for every check)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction

from ecommerce.observability.logging import get_logger

logger = get_logger(__name__)

# A break is described in one line; a report lists this many of them per check.
MAX_EXAMPLES = 20


@dataclass(frozen=True)
class CheckContext:
    """What every check is given.

    `since`: only data created at or after it is checked (None: everything).
    `grace`: how long after its deadline something may still be in flight before its
    absence is a break (jobs run on intervals; this covers one or two of them).
    """

    now: datetime
    since: datetime | None
    grace: timedelta

    def settled_before(self) -> datetime:
        """Things that happened before this instant have had their grace period."""
        return self.now - self.grace


@dataclass
class Outcome:
    """What a check found: `checked` items, one line per break, `explained` non-breaks."""

    checked: int = 0
    breaks: list[str] = field(default_factory=list)
    explained: int = 0
    notes: list[str] = field(default_factory=list)

    def fail(self, description: str) -> None:
        self.breaks.append(description)


@dataclass(frozen=True)
class CheckResult:
    name: str
    description: str
    status: str  # "ok", "FAIL", or "ERROR" (the check itself could not run)
    checked: int
    broken: int
    explained: int
    examples: list[str]
    notes: list[str]
    seconds: float

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "status": self.status,
            "checked": self.checked,
            "broken": self.broken,
            "explained": self.explained,
            "examples": self.examples,
            "notes": self.notes,
            "seconds": round(self.seconds, 3),
        }


CheckFunction = Callable[[CheckContext], Outcome]


@dataclass(frozen=True)
class Check:
    name: str
    description: str
    function: CheckFunction


_checks: dict[str, Check] = {}


def register(name: str, function: CheckFunction, *, description: str = "") -> None:
    """Register `function` under `name` (dotted, app first: `orders.payment_window`)."""
    # The docstring's first paragraph, on one line.
    summary = " ".join((function.__doc__ or "").strip().split("\n\n")[0].split())
    _checks[name] = Check(name=name, description=description or summary, function=function)


def invariant(name: str, *, description: str = "") -> Callable[[CheckFunction], CheckFunction]:
    """Decorator form of `register`."""

    def decorate(function: CheckFunction) -> CheckFunction:
        register(name, function, description=description)
        return function

    return decorate


def registered() -> list[Check]:
    return [_checks[name] for name in sorted(_checks)]


def _run_one(check: Check, context: CheckContext) -> CheckResult:
    started = time.monotonic()
    try:
        # A savepoint per check: a check whose query fails leaves the others their snapshot.
        with transaction.atomic():
            outcome = check.function(context)
    except Exception as exc:  # the check could not run: that is not "ok" either
        logger.warning("invariant_check_error", check=check.name, error=repr(exc)[:300])
        return CheckResult(
            name=check.name,
            description=check.description,
            status="ERROR",
            checked=0,
            broken=0,
            explained=0,
            examples=[f"{type(exc).__name__}: {exc}"[:500]],
            notes=[],
            seconds=time.monotonic() - started,
        )
    return CheckResult(
        name=check.name,
        description=check.description,
        status="FAIL" if outcome.breaks else "ok",
        checked=outcome.checked,
        broken=len(outcome.breaks),
        explained=outcome.explained,
        examples=outcome.breaks[:MAX_EXAMPLES],
        notes=outcome.notes,
        seconds=time.monotonic() - started,
    )


def run_checks(context: CheckContext, *, only: Iterable[str] | None = None) -> list[CheckResult]:
    """Run the registered checks (or those named in `only`) in one read-only snapshot.

    On PostgreSQL every check sees the same REPEATABLE READ snapshot, so a stock row and
    its ledger, or an order and its notifications, are read as of one instant, and the
    transaction is READ ONLY: the checker can run against production at any time.
    Raises KeyError for an unknown name in `only`.
    """
    wanted = list(only or ())
    unknown = [name for name in wanted if name not in _checks]
    if unknown:
        raise KeyError(", ".join(unknown))
    checks = [check for check in registered() if not wanted or check.name in wanted]
    # Inside a caller's transaction (a test's) the snapshot is already taken: reuse it.
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        results = [_run_one(check, context) for check in checks]
    return results
