"""`manage.py circuit_breaker status [NAME]` and `manage.py circuit_breaker reset NAME`."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser
from redis.exceptions import RedisError

from ecommerce.commands import OperatorCommand
from ecommerce.resilience.breaker import BreakerSnapshot, breaker, registered, validate_name

ACTIONS = ("status", "reset")


def describe(snapshot: BreakerSnapshot) -> str:
    """One line per breaker: name, state, consecutive failures and when it opened."""
    opened_at = snapshot.opened_at.isoformat(timespec="milliseconds") if snapshot.opened_at else "-"
    return (
        f"{snapshot.name}  state={snapshot.state.value}  failures={snapshot.failures}  "
        f"opened_at={opened_at}"
    )


class Command(OperatorCommand):
    help = (
        "Show the shared state of the circuit breakers (all known ones, or NAME), "
        "or close the breaker NAME by hand once its dependency is known to be back."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", help=f"one of: {', '.join(ACTIONS)}")
        parser.add_argument("name", nargs="?", help="breaker name (required for reset)")

    def handle(self, *args: Any, action: str, name: str | None, **options: Any) -> None:
        if action not in ACTIONS:
            raise CommandError(f"Unknown action {action!r}; use one of: {', '.join(ACTIONS)}.")
        if name is not None:
            try:
                validate_name(name)
            except ValueError as exc:
                raise CommandError(str(exc)) from None
        try:
            if action == "status":
                self._status(name)
            else:
                self._reset(name)
        except RedisError as exc:
            raise CommandError(f"Redis is unreachable: {type(exc).__name__}: {exc}") from None

    def _status(self, name: str | None) -> None:
        snapshots = [breaker(name).state()] if name else registered()
        if not snapshots:
            self.stdout.write("No circuit breakers known yet.")
        for snapshot in snapshots:
            self.stdout.write(describe(snapshot))

    def _reset(self, name: str | None) -> None:
        if not name:
            raise CommandError("reset needs the NAME of a breaker.")
        known = {snapshot.name for snapshot in registered()}
        if name not in known:
            listed = ", ".join(sorted(known)) or "none"
            raise CommandError(f"Unknown circuit breaker {name!r} (known: {listed}).")
        before = breaker(name).state()
        after = breaker(name).reset()
        self.stdout.write(f"{name}: {before.state.value} -> {after.state.value}")
