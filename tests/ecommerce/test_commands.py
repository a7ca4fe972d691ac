"""Operator commands: a bad argument is one line on stderr and a non-zero exit, never a
traceback (every command, from the command line); progress and a summary (ecommerce.commands).
"""

from __future__ import annotations

import argparse
import io
import logging
import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.core.management import call_command, get_commands, load_command_class
from django.core.management.base import CommandError
from django.utils import timezone

from ecommerce.commands import (
    OperatorCommand,
    Progress,
    moment,
    non_negative_seconds,
    positive_int,
    tcp_port,
)
from tests.ecommerce.helpers import LogLines
from tests.ecommerce.resilience.helpers import run_child, run_manage_commands

COMMAND_DIRS = ("apps/*/management/commands", "ecommerce/*/management/commands")
USAGE_ERROR = re.compile(r"^manage\.py \S+: error: .+ \(see --help\)$")
HANDLE_ERROR = re.compile(r"^CommandError: .+$")

# Commands still on Django's BaseCommand: their usage errors are argparse's several lines.
NOT_YET_OPERATOR_COMMANDS: set[str] = set()

BAD_ARGUMENTS: list[tuple[str, list[str], str]] = [
    # (command, arguments, a piece of the one line it must print)
    ("retry_notifications", ["--since", "yesterday"], "not an ISO 8601 date"),
    ("retry_notifications", ["--since", "2026-13-45"], "not an ISO 8601 date"),
    ("retry_notifications", ["--since", "99999999999d"], "not an ISO 8601 date"),
    ("retry_notifications", ["--since"], "expected one argument"),
    ("retry_notifications", ["--failed=yes"], "ignored explicit argument"),
    ("import_products", [], "the following arguments are required: file"),
    ("import_products", ["/nonexistent/products.csv"], "No such file"),
    ("import_products", ["products.csv", "--batch"], "unrecognized arguments"),
    ("expire_orders", ["now"], "unrecognized arguments: now"),
    ("reconcile_payments", ["--limit", "5"], "unrecognized arguments"),
    ("seed_demo", ["--users", "many"], "unrecognized arguments"),
    ("relay_outbox", ["everything"], "unrecognized arguments"),
    ("ensure_database", ["--create"], "unrecognized arguments"),
    ("run_payment_sandbox", ["--port", "http"], "not a number: 'http'"),
    ("run_payment_sandbox", ["--port", "70000"], "not a TCP port"),
    ("run_payment_sandbox", ["--port", "0"], "not a TCP port"),
    ("check_invariants", ["--since", "yesterday"], "give an ISO 8601 time"),
    ("check_invariants", ["--since", "2026-02-30T00:00"], "give an ISO 8601 time"),
    ("check_invariants", ["--since", "99999999999d"], "give an ISO 8601 time"),
    ("check_invariants", ["--grace-seconds", "nan"], "not a finite number"),
    ("check_money_ledger", ["--grace-seconds", "nan"], "not a finite number"),
    ("check_money_ledger", ["--grace-seconds", "-1"], "must be between 0"),
    ("check_money_ledger", ["--since", "yesterday"], "give an ISO 8601 time"),
    ("check_invariants", ["--grace-seconds", "-1"], "must be between 0"),
    ("check_invariants", ["--grace-seconds", "1e300"], "must be between 0"),
    ("check_invariants", ["--check", "no_such_check"], "Unknown check: no_such_check"),
    ("circuit_breaker", [], "the following arguments are required: action"),
    ("circuit_breaker", ["restart"], "Unknown action 'restart'"),
    ("circuit_breaker", ["reset"], "reset needs the NAME"),
]


def app_of(command: str) -> str:
    return get_commands()[command]


def test_every_command_is_in_the_table() -> None:
    root = Path(__file__).resolve().parents[2]
    commands = {
        path.stem
        for pattern in COMMAND_DIRS
        for path in root.glob(f"{pattern}/*.py")
        if path.stem != "__init__"
    }
    covered = {command for command, _args, _expected in BAD_ARGUMENTS}
    assert commands - covered <= NOT_YET_OPERATOR_COMMANDS
    for name in commands - NOT_YET_OPERATOR_COMMANDS:
        assert isinstance(load_command_class(app_of(name), name), OperatorCommand), name


@pytest.fixture(scope="module")
def bad_argument_runs() -> dict[tuple[str, ...], subprocess.CompletedProcess[str]]:
    """Every command line of BAD_ARGUMENTS, each run as its own `manage.py` process (forked
    from one that has imported Django: the import is the same for all and takes seconds)."""
    argvs = [[command, *arguments] for command, arguments, _ in BAD_ARGUMENTS]
    results = run_manage_commands(argvs)
    return {tuple(argv): result for argv, result in zip(argvs, results, strict=True)}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("command", "arguments", "expected"),
    BAD_ARGUMENTS,
    ids=[f"{command} {' '.join(args)}".strip() for command, args, _ in BAD_ARGUMENTS],
)
def test_a_bad_argument_is_one_line_and_a_failing_exit(
    command: str,
    arguments: list[str],
    expected: str,
    bad_argument_runs: dict[tuple[str, ...], subprocess.CompletedProcess[str]],
) -> None:
    result = bad_argument_runs[(command, *arguments)]

    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert USAGE_ERROR.match(lines[0]) or HANDLE_ERROR.match(lines[0]), lines[0]
    assert expected in lines[0]
    assert result.stdout == ""


@pytest.mark.slow
def test_traceback_still_shows_one_when_asked() -> None:
    result = run_child(["manage.py", "retry_notifications", "--since", "yesterday", "--traceback"])

    assert result.returncode != 0
    assert "argument --since: not an ISO 8601 date" in result.stderr


def test_from_call_command_a_bad_argument_is_a_command_error() -> None:
    with pytest.raises(CommandError, match="argument --since: not an ISO 8601 date"):
        call_command("retry_notifications", "--since", "yesterday")


# --- Argument types -----------------------------------------------------------------------


def test_moment_reads_dates_date_times_and_durations() -> None:
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)

    assert moment("2026-11-20", now=now) == datetime(2026, 11, 20, tzinfo=UTC)
    assert moment("2026-11-20T08:30", now=now) == datetime(2026, 11, 20, 8, 30, tzinfo=UTC)
    assert moment("2026-11-20T08:30+01:00", now=now) == datetime(2026, 11, 20, 7, 30, tzinfo=UTC)
    assert moment("6h", now=now) == now - timedelta(hours=6)
    assert moment(" 7d ", now=now) == now - timedelta(days=7)
    assert moment("90s") <= timezone.now() - timedelta(seconds=90)


@pytest.mark.parametrize(
    ("parse", "value"),
    [
        (moment, "yesterday"),
        (moment, "2026-02-30"),
        (moment, "1e9d"),
        (positive_int, "0"),
        (positive_int, "1.5"),
        (non_negative_seconds, "inf"),
        (non_negative_seconds, "-0.5"),
        (tcp_port, "65536"),
    ],
)
def test_argument_types_refuse_with_argparse_errors(parse, value: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse(value)


# --- Progress -----------------------------------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_draws_a_bar_on_a_terminal() -> None:
    screen = Terminal()
    progress = Progress("import_products", total=4, stream=screen)

    for _ in range(4):
        progress.advance("created")
    progress.finish()

    last = screen.getvalue().split("\r")[-1]
    assert re.fullmatch(r"import_products \[#{30}\] 4/4 \d+\.\ds\n", last), last


def test_progress_logs_every_n_items_and_a_summary_elsewhere(log_lines: LogLines) -> None:
    logging.getLogger().setLevel(logging.INFO)
    progress = Progress("import_products", total=5, stream=io.StringIO(), every=2, seconds=3600)

    for outcome in ("created", "updated", "created", "failed", "created"):
        progress.advance(outcome)
    progress.finish()

    lines = [line for line in log_lines() if line.get("command") == "import_products"]
    assert [(line["event"], line["done"]) for line in lines] == [
        ("command_progress", 2),
        ("command_progress", 4),
        ("command_finished", 5),
    ]
    assert {key: lines[-1][key] for key in ("created", "updated", "failed", "total")} == {
        "created": 3,
        "updated": 1,
        "failed": 1,
        "total": 5,
    }


@pytest.mark.django_db
def test_import_products_logs_its_progress_and_prints_a_summary(
    tmp_path: Path, log_lines: LogLines
) -> None:
    path = tmp_path / "products.csv"
    path.write_text(
        "sku,name,price\n" + "".join(f"p-{n},P {n},2.00\n" for n in range(3)), encoding="utf-8"
    )
    out = io.StringIO()

    call_command("import_products", str(path), stdout=out, stderr=io.StringIO())

    assert out.getvalue() == "3 created, 0 updated, 0 unchanged, 0 failed\n"
    finished = [line for line in log_lines() if line["event"] == "command_finished"]
    assert [(line["command"], line["done"], line["created"]) for line in finished] == [
        ("import_products", 3, 3)
    ]
