"""Helpers for the resilience tests: errors to raise, a child process with our settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from django.conf import settings

from ecommerce.resilience.breaker import CircuitBreaker


class ProviderDown(Exception):
    """Stands for a transient error of a dependency (timeout, 5xx)."""


class CardDeclined(Exception):
    """Stands for a terminal answer of a dependency: it worked, the answer is no."""


TRANSIENT = (ProviderDown,)


def fail(breaker: CircuitBreaker, times: int = 1) -> None:
    """Make `times` guarded calls that fail transiently."""
    for _ in range(times):
        with pytest.raises(ProviderDown), breaker.guard(transient=TRANSIENT):
            raise ProviderDown


def succeed(breaker: CircuitBreaker) -> str:
    return breaker.call(lambda: "ok", transient=TRANSIENT)


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment plus its cache key prefix, so a child sees the same keys."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "ecommerce.settings",
        "CACHE_KEY_PREFIX": settings.CACHES["default"]["KEY_PREFIX"],
        "CIRCUIT_BREAKERS": json.dumps(settings.CIRCUIT_BREAKERS),
        **extra,
    }


def run_manage_commands(
    argvs: list[list[str]], **extra_env: str
) -> list[subprocess.CompletedProcess[str]]:
    """`manage.py` once per argument list, each in a process of its own (forked from one
    that has imported Django, see tests/ecommerce/manage_forks.py), in order."""
    done = subprocess.run(
        [sys.executable, "tests/ecommerce/manage_forks.py"],
        cwd=settings.BASE_DIR,
        env=child_env(**extra_env),
        input=json.dumps([["manage.py", *argv] for argv in argvs]),
        capture_output=True,
        text=True,
        timeout=60 + 10 * len(argvs),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [
        subprocess.CompletedProcess(["manage.py", *argv], **result)
        for argv, result in zip(argvs, json.loads(done.stdout), strict=True)
    ]


def run_child(args: list[str], **extra_env: str) -> subprocess.CompletedProcess[str]:
    """Run the venv's Python in the project folder as a separate process."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=settings.BASE_DIR,
        env=child_env(**extra_env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
