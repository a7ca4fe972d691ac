"""Payment fixtures: the sandbox as a real separate process, reset before each test."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from apps.payments.gateway import HttpPaymentGateway
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]


class SandboxProcess:
    """`python -m apps.payments.sandbox` on 127.0.0.1 and a free port, stopped by PID."""

    def __init__(self, *, log_path: Path, db_path: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "apps.payments.sandbox"]
        command += ["--port", str(self.port), "--host", "127.0.0.1"]
        if db_path is not None:
            command += ["--db", str(db_path)]
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            command, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT
        )
        self.http = httpx.Client(base_url=self.url, timeout=5.0, trust_env=False)
        self._wait_until_healthy()

    def _wait_until_healthy(self) -> None:
        deadline = time.monotonic() + 10
        while True:
            try:
                if self.http.get("/health", timeout=0.5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"sandbox did not start: {self.log_path.read_text()}")
            time.sleep(0.05)

    def stop(self) -> int:
        """SIGTERM this process (never anything found by name); return its exit code."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.http.close()
        self._log.close()
        return self.process.returncode

    def configure(self, **config: Any) -> dict[str, Any]:
        response = self.http.post("/_sandbox/config", json=config)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def stats(self) -> dict[str, Any]:
        return dict(self.http.get("/_sandbox/stats").json())

    def reset(self) -> None:
        assert self.http.post("/_sandbox/reset").status_code == 200


@pytest.fixture(scope="session")
def sandbox_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    process = SandboxProcess(log_path=tmp_path_factory.mktemp("sandbox") / "sandbox.log")
    yield process
    process.stop()


@pytest.fixture
def sandbox(sandbox_process: SandboxProcess) -> Iterator[SandboxProcess]:
    """The shared sandbox process, wiped and with faults off, for one test."""
    sandbox_process.reset()
    yield sandbox_process
    sandbox_process.reset()


@pytest.fixture
def gateway(sandbox: SandboxProcess) -> HttpPaymentGateway:
    return HttpPaymentGateway(sandbox.url, connect_timeout_seconds=0.5, read_timeout_seconds=2.0)


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens: a provider there refuses connections."""
    return free_port()
