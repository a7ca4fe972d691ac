"""What every operator command shares: bad arguments as one line, progress, a summary.

`OperatorCommand` is the base of the project's management commands. A bad argument ends
the command with one line on stderr and exit status 2 (argparse's convention for usage
errors), never a traceback: argparse's own errors, a `type=` function raising
ArgumentTypeError or ValueError, and a CommandError raised while the arguments are parsed
all end that way (Django only catches CommandError around `handle`, so one raised in a
`type=` function used to escape as a traceback). `--traceback` still shows one.

`Progress` reports how far a long command is: a bar on stderr when stderr is a terminal,
otherwise a structured log line (`command_progress`) every `every` items or `seconds`
seconds, whichever comes first, and `command_finished` with the counts and duration at
the end. Services that loop over many rows take an optional `progress` and call
`progress.add_total(n)` once they know how many there are, then `progress.advance(outcome)`
per row, so beat runs (no progress) and commands share one code path.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn, TextIO

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from ecommerce import audit
from ecommerce.observability.logging import get_logger

logger = get_logger(__name__)

DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
BAR_WIDTH = 30


# --- Arguments --------------------------------------------------------------------------


def moment(value: str, *, now: datetime | None = None) -> datetime:
    """An ISO 8601 date or date-time (UTC when it names no offset), or a duration back
    from now: `90s`, `15m`, `6h`, `7d`. Raises ArgumentTypeError for anything else."""
    text = value.strip()
    match = DURATION.match(text)
    try:
        if match:
            seconds = float(match[1]) * UNIT_SECONDS[match[2]]
            return (now or timezone.now()) - timedelta(seconds=seconds)
        parsed = parse_datetime(text)
        if parsed is None:
            day = parse_date(text)
            if day is not None:
                return datetime(day.year, day.month, day.day, tzinfo=UTC)
    except (ValueError, OverflowError):  # 2026-13-01, or 10000000d back
        parsed = None
    if parsed is None:
        raise argparse.ArgumentTypeError(
            f"not an ISO 8601 date or date-time, nor a duration like 6h or 7d: {value!r}"
        )
    return parsed if timezone.is_aware(parsed) else parsed.replace(tzinfo=UTC)


def _number(value: str, kind: type[int] | type[float]) -> int | float:
    try:
        number = kind(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if isinstance(number, float) and not math.isfinite(number):
        raise argparse.ArgumentTypeError(f"not a finite number: {value!r}")
    return number


def positive_int(value: str) -> int:
    """A whole number of at least 1."""
    number = int(_number(value, int))
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more: {value!r}")
    return number


def non_negative_seconds(value: str) -> float:
    """A finite number of seconds, zero or more."""
    number = float(_number(value, float))
    if number < 0 or number > 10 * 365 * 86400:
        raise argparse.ArgumentTypeError(f"must be between 0 and ten years of seconds: {value!r}")
    return number


def tcp_port(value: str) -> int:
    """A TCP port, 1-65535."""
    number = int(_number(value, int))
    if not 1 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port (1-65535): {value!r}")
    return number


class OperatorCommand(BaseCommand):
    """A management command whose bad arguments end in one line and a non-zero exit."""

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        django_error = parser.error

        def error(message: str) -> NoReturn:
            if not parser.called_from_command_line:
                django_error(message)  # raises CommandError for call_command
            sys.stderr.write(f"{parser.prog}: error: {message} (see --help)\n")
            raise SystemExit(2)

        parser.error = error  # type: ignore[method-assign]
        return parser

    def execute(self, *args: Any, **options: Any) -> Any:
        """Run as the audit actor `command:<name> (<OS user>)` (ecommerce/audit.py)."""
        name = self.__class__.__module__.rsplit(".", 1)[-1]
        with audit.acting(source=audit.SOURCE_COMMAND, label=audit.command_label(name)):
            return super().execute(*args, **options)

    def run_from_argv(self, argv: list[str]) -> None:
        try:
            super().run_from_argv(argv)
        except CommandError as exc:
            # Django handles a CommandError from handle() itself; one that gets here came
            # from parsing the arguments (a `type=` function), or --traceback asked for it.
            if "--traceback" in argv:
                raise
            sys.stderr.write(f"{' '.join(argv[:2])}: error: {exc} (see --help)\n")
            raise SystemExit(2) from None

    def progress(self, name: str, *, total: int | None = None) -> Any:
        """A `progress` context drawing its bar on this command's stderr when a terminal."""
        return progress(name, total=total, stream=getattr(self.stderr, "_out", self.stderr))


# --- Progress ---------------------------------------------------------------------------


class Progress:
    """Count work done (per outcome) and show it; see the module docstring."""

    def __init__(
        self,
        name: str,
        *,
        total: int | None = None,
        stream: TextIO | None = None,
        every: int = 500,
        seconds: float = 5.0,
    ) -> None:
        self.name = name
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.every = every
        self.seconds = seconds
        self.done = 0
        self.counts: dict[str, int] = {}
        self.started = time.monotonic()
        self._last_report = self.started
        self._last_done = 0

    def add_total(self, count: int) -> None:
        """Announce `count` more items to come (a service knows its rows once it queried)."""
        self.total = (self.total or 0) + count

    def advance(self, outcome: str | None = None, count: int = 1) -> None:
        self.done += count
        if outcome is not None:
            self.counts[outcome] = self.counts.get(outcome, 0) + count
        now = time.monotonic()
        if self.tty:
            if now - self._last_report >= 0.1 or self.done == self.total:
                self._draw()
                self._last_report = now
        elif self.done - self._last_done >= self.every or now - self._last_report >= self.seconds:
            logger.info(
                "command_progress",
                command=self.name,
                done=self.done,
                total=self.total,
                elapsed_seconds=round(now - self.started, 2),
                **self.counts,
            )
            self._last_report, self._last_done = now, self.done

    def clear(self) -> None:
        """Erase the bar before the command prints a line of its own on the same terminal."""
        if self.tty and self.done:
            self.stream.write("\r\x1b[K")
            self.stream.flush()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def finish(self) -> None:
        """Close the bar and log what was done, once at the end."""
        if self.tty:
            self._draw()
            self.stream.write("\n")
            self.stream.flush()
        logger.info(
            "command_finished",
            command=self.name,
            done=self.done,
            total=self.total,
            elapsed_seconds=round(self.elapsed, 2),
            **self.counts,
        )

    def _draw(self) -> None:
        if self.total:
            filled = min(BAR_WIDTH, BAR_WIDTH * self.done // self.total)
            bar = "#" * filled + "-" * (BAR_WIDTH - filled)
            line = f"{self.name} [{bar}] {self.done}/{self.total}"
        else:
            line = f"{self.name} {self.done}"
        self.stream.write(f"\r{line} {self.elapsed:.1f}s")
        self.stream.flush()


@contextmanager
def progress(name: str, *, total: int | None = None, **options: Any) -> Iterator[Progress]:
    """`with progress("import_products") as bar: ... bar.advance()`; finishes on the way out,
    also when the work fails (the log then says how far it got)."""
    tracker = Progress(name, total=total, **options)
    try:
        yield tracker
    finally:
        tracker.finish()
