"""Graceful shutdown of the web tier: SIGTERM fails readiness at once and drains every request.

The end-to-end test runs gunicorn with the project's config (2 sync workers, the draining
worker class) on a free port against this test database and Redis, keeps 20 slow requests
in flight, sends SIGTERM to the master, and measures what each side saw.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import settings
from django.test import Client, RequestFactory

from ecommerce import health
from ecommerce.gunicorn_worker import DrainingSyncWorker
from tests.ecommerce.helpers import problem
from tests.servers import database_url, free_port

WORKERS = 2
IN_FLIGHT = 20
SLOW_SECONDS = 1.0
GRACEFUL_TIMEOUT_SECONDS = 20
# Inherited from a shell, these would make gunicorn wipe or serve someone's metrics files.
NOT_INHERITED = ("PROMETHEUS_MULTIPROC_DIR", "METRICS_DIR", "PYTEST_CURRENT_TEST")


@pytest.fixture
def not_shutting_down() -> Iterator[None]:
    health._shutting_down.clear()
    yield
    health._shutting_down.clear()


class _Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, message: str, *args: Any) -> None:
        self.lines.append(message % args)


def bare_worker(*, booted: bool) -> DrainingSyncWorker:
    """A worker object as gunicorn leaves it after start-up, without forking or sockets."""
    worker = DrainingSyncWorker.__new__(DrainingSyncWorker)
    worker.booted = booted
    worker.alive = True
    worker.pid = 4242
    worker.log = _Log()
    worker._mark_shutting_down = health.mark_shutting_down
    return worker


@pytest.mark.usefixtures("not_shutting_down")
def test_sigterm_fails_readiness_at_once_and_drains_until_the_backlog_is_empty(
    client: Client,
) -> None:
    worker = bare_worker(booted=True)

    worker.handle_exit(signal.SIGTERM, None)

    assert health.is_shutting_down() is True
    assert (worker.draining, worker.alive) == (True, True)  # still accepting what is queued
    assert worker.log.lines == ["Worker draining (pid: 4242)"]
    body = problem(client.get("/health/ready"), 503)
    assert (body["code"], body["detail"]) == ("shutting_down", "The process is shutting down.")
    assert client.get("/health/live").status_code == 200
    # accept() found nothing queued, so the loop waits: a draining worker stops instead.
    assert worker.wait(5.0) is None
    assert worker.alive is False


@pytest.mark.usefixtures("not_shutting_down")
def test_sigterm_while_loading_the_app_stops_at_once() -> None:
    worker = bare_worker(booted=False)

    worker.handle_exit(signal.SIGTERM, None)

    assert (worker.draining, worker.alive) == (False, False)
    assert health.is_shutting_down() is True


def test_the_slow_endpoint_is_not_routed_unless_enabled(client: Client) -> None:
    assert settings.TEST_SLOW_ENDPOINT_ENABLED is False
    assert client.get("/health/slow?seconds=0").status_code == 404


@pytest.mark.parametrize(
    ("seconds", "status"), [("0", 200), ("0.01", 200), ("31", 400), ("-1", 400), ("x", 400)]
)
def test_the_slow_view_sleeps_a_bounded_time(seconds: str, status: int) -> None:
    response = health.slow(RequestFactory().get("/health/slow", {"seconds": seconds}))

    assert response.status_code == status
    if status == 200:
        assert json.loads(response.content) == {"status": "ok", "slept_seconds": float(seconds)}


# --- gunicorn, for real ---------------------------------------------------------------------


class Gunicorn:
    """`gunicorn --config ecommerce/gunicorn.conf.py` in its own process group."""

    def __init__(self, *, tmp_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp_path / "gunicorn.log"
        cache = settings.CACHES["default"]
        env = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
        env.update(
            DJANGO_READ_DOT_ENV_FILE="0",
            DEBUG="0",
            LOG_JSON="1",
            OTEL_ENABLED="0",
            # The test database: settings.DATABASES is what pytest-django renamed.
            DATABASE_URL=database_url(settings.DATABASES["default"]),
            REDIS_URL=cache["LOCATION"],
            CACHE_KEY_PREFIX=cache["KEY_PREFIX"],
            CELERY_BROKER_URL="",
            HOST="127.0.0.1",
            PORT=str(self.port),
            WEB_CONCURRENCY=str(WORKERS),
            GUNICORN_GRACEFUL_TIMEOUT_SECONDS=str(GRACEFUL_TIMEOUT_SECONDS),
            TEST_SLOW_ENDPOINT_ENABLED="1",
            METRICS_DIR=str(tmp_path / "metrics"),
            PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics" / "web"),
        )
        command = [sys.executable, "-m", "gunicorn", "--config", "ecommerce/gunicorn.conf.py"]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*command, "ecommerce.wsgi"],
                cwd=settings.BASE_DIR,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_until_live()

    def _wait_until_live(self) -> None:
        """Until every worker has loaded the app: one still loading when SIGTERM comes has
        accepted nothing and exits at once, leaving the drain to the others."""
        deadline = time.monotonic() + 30
        while True:
            try:
                live = httpx.get(f"{self.url}/health/live", timeout=0.5).status_code == 200
            except httpx.TransportError:
                live = False
            ready = [e for e in self.log_events() if e.startswith("Worker ready")]
            if live and len(ready) == WORKERS:
                return
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"gunicorn did not start:\n{self.log_path.read_text()}")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL the master and its workers: the group this test started."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)

    def log_events(self) -> list[str]:
        events = []
        for line in self.log_path.read_text().splitlines():
            if line.startswith("{"):
                try:
                    events.append(str(json.loads(line).get("event", "")))
                except ValueError:  # the line being written
                    continue
        return events


@pytest.fixture
def gunicorn(django_db_setup: None, tmp_path: Path) -> Iterator[Gunicorn]:
    server = Gunicorn(tmp_path=tmp_path)
    try:
        yield server
    finally:
        server.kill()


class RawRequest:
    """One HTTP/1.1 GET on its own connection, sent at once and read later.

    `connect()` returns once the kernel has completed the handshake, so the connection sits
    in gunicorn's listen queue (or with a worker) before the test goes on: how soon a thread
    pool would get round to sending under load is out of the picture.
    """

    def __init__(self, port: int, path: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
        )

    def read(self, since: float) -> tuple[tuple[Any, Any], float]:
        """((status, problem code) or (error name, None), seconds from `since` to the answer)."""
        chunks = []
        try:
            while chunk := self.sock.recv(65536):
                chunks.append(chunk)
        except OSError as exc:
            return (type(exc).__name__, None), time.monotonic() - since
        finally:
            self.sock.close()
        answered = time.monotonic() - since
        raw = b"".join(chunks)
        if not raw:
            return ("closed without an answer", None), answered
        head, _, body = raw.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        return (status, json.loads(body).get("code") if body else None), answered


@pytest.mark.slow
@pytest.mark.django_db  # so that the test database exists for gunicorn's readiness check
def test_sigterm_drains_twenty_slow_requests_and_readiness_answers_503(
    gunicorn: Gunicorn,
) -> None:
    ready = httpx.get(f"{gunicorn.url}/health/ready", timeout=5)
    assert ready.status_code == 200, ready.text
    started = time.monotonic()
    slow = [
        RawRequest(gunicorn.port, f"/health/slow?seconds={SLOW_SECONDS}") for _ in range(IN_FLIGHT)
    ]
    pool = ThreadPoolExecutor(max_workers=IN_FLIGHT + 1)
    slow_answers = [pool.submit(request.read, started) for request in slow]
    time.sleep(0.2)  # the workers have taken the first two

    gunicorn.process.send_signal(signal.SIGTERM)
    term = time.monotonic()
    probe = RawRequest(gunicorn.port, "/health/ready")
    probe_answer = pool.submit(probe.read, term)
    exit_code = gunicorn.process.wait(timeout=GRACEFUL_TIMEOUT_SECONDS + 10)
    exited_after = time.monotonic() - term
    results = [future.result() for future in slow_answers]
    probe_outcome, probe_answered_after = probe_answer.result()
    pool.shutdown()

    answered_after = sorted(answered - (term - started) for _, answered in results)
    print(
        f"\ngunicorn drain: {WORKERS} sync workers, {IN_FLIGHT} requests of {SLOW_SECONDS:g}s, "
        f"SIGTERM {term - started:.2f}s after the first was sent\n"
        f"  statuses: {dict(Counter(str(outcome[0]) for outcome, _ in results))}\n"
        f"  answered after SIGTERM: first {answered_after[0]:.2f}s, "
        f"last {answered_after[-1]:.2f}s\n"
        f"  /health/ready sent right after SIGTERM: {probe_outcome[0]} {probe_outcome[1]} "
        f"after {probe_answered_after:.2f}s\n"
        f"  master exit code {exit_code} after {exited_after:.2f}s "
        f"(graceful_timeout {GRACEFUL_TIMEOUT_SECONDS}s)"
    )
    log = gunicorn.log_path.read_text()
    assert [outcome for outcome, _ in results] == [(200, None)] * IN_FLIGHT, log
    assert probe_outcome == (503, "shutting_down"), log
    assert probe_answered_after < exited_after
    assert exit_code == 0, log
    assert exited_after < GRACEFUL_TIMEOUT_SECONDS
    events = gunicorn.log_events()
    assert sum(event.startswith("Worker draining (pid: ") for event in events) == WORKERS, log
    assert not any("timed out" in event for event in events)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{gunicorn.url}/health/live", timeout=1)
