"""`manage.py circuit_breaker status|reset`: in this process, and as a separate process that
reads and changes the state this process sees."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from ecommerce.resilience.breaker import CircuitState, breaker
from tests.ecommerce.resilience.helpers import fail, run_child

ISO_TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00"


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("circuit_breaker", *args, stdout=out)
    return out.getvalue()


def open_breaker(settings: Any, name: str) -> None:
    settings.CIRCUIT_BREAKERS = {name: {"failure_threshold": 2, "recovery_timeout_seconds": 60}}
    fail(breaker(name), 2)


def test_status_lists_every_known_breaker(settings: Any, name: str) -> None:
    open_breaker(settings, name)
    fail(breaker(f"{name}-flaky"), 1)

    lines = run("status").splitlines()

    assert len(lines) == 2
    assert re.fullmatch(rf"{name}  state=open  failures=2  opened_at={ISO_TIME}", lines[0])
    assert lines[1] == f"{name}-flaky  state=closed  failures=1  opened_at=-"


def test_status_of_one_breaker_never_used_is_closed(name: str) -> None:
    assert run("status", name) == f"{name}  state=closed  failures=0  opened_at=-\n"


def test_status_with_no_breaker_known_says_so() -> None:
    assert run("status") == "No circuit breakers known yet.\n"


def test_reset_closes_the_breaker(settings: Any, name: str) -> None:
    open_breaker(settings, name)

    assert run("reset", name) == f"{name}: open -> closed\n"
    assert breaker(name).state().state is CircuitState.CLOSED
    assert breaker(name).state().failures == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("restart", "payment-provider"), "Unknown action 'restart'; use one of: status, reset."),
        (("reset",), "reset needs the NAME of a breaker."),
        (("reset", "nobody-knows-me"), "Unknown circuit breaker 'nobody-knows-me' (known: none)."),
        (("status", "bad name"), "A circuit breaker name is 1-100 letters"),
    ],
)
def test_bad_arguments_are_command_errors(args: tuple[str, ...], message: str) -> None:
    with pytest.raises(CommandError, match=re.escape(message)):
        run(*args)


@pytest.mark.slow
def test_another_process_sees_the_breaker_opened_here_and_its_reset_is_seen_here(
    settings: Any, name: str
) -> None:
    open_breaker(settings, name)

    status = run_child(["manage.py", "circuit_breaker", "status", name])
    reset = run_child(["manage.py", "circuit_breaker", "reset", name])

    assert status.returncode == 0, status.stderr
    assert re.fullmatch(rf"{name}  state=open  failures=2  opened_at={ISO_TIME}\n", status.stdout)
    assert (reset.returncode, reset.stdout) == (0, f"{name}: open -> closed\n")
    assert breaker(name).state().state is CircuitState.CLOSED


@pytest.mark.slow
def test_unknown_action_from_the_command_line_exits_1_with_one_line() -> None:
    result = run_child(["manage.py", "circuit_breaker", "restart"])

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == "CommandError: Unknown action 'restart'; use one of: status, reset.\n"
