"""Ports of the local processes come from `.env`: no port is written twice.

`make run` starts the Procfile with honcho, which reads `.env`: web binds PORT (gunicorn's
config), the payment sandbox binds the port of PAYMENT_PROVIDER_URL, where the app calls it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from apps.payments.sandbox import default_port
from tests.deploy.helpers import ROOT
from tests.servers import free_port


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line and not line.startswith("#"))


@pytest.mark.parametrize(
    ("environ", "port"),
    [
        ({}, 8090),
        ({"PAYMENT_PROVIDER_URL": "http://127.0.0.1:9123"}, 9123),
        ({"PAYMENT_PROVIDER_URL": "http://payments.internal"}, 8090),
        ({"PAYMENT_PROVIDER_URL": "http://127.0.0.1:9123", "PAYMENT_SANDBOX_PORT": "9200"}, 9200),
    ],
)
def test_the_sandbox_port_follows_the_provider_url(environ: dict[str, str], port: int) -> None:
    assert default_port(environ) == port


def test_no_process_has_a_port_of_its_own() -> None:
    processes = procfile()
    assert "--port" not in processes["sandbox"]
    assert "--bind" not in processes["web"]
    makefile = (ROOT / "Makefile").read_text()
    assert not re.search(r"\b8090\b|--port\b", makefile)


@pytest.fixture
def honcho() -> str:
    path = Path(sys.executable).parent / "honcho"
    if not path.is_file():
        pytest.skip("honcho is not installed in this environment")
    return str(path)


def test_the_procfile_sandbox_listens_on_the_port_of_env_provider_url(
    tmp_path: Path, honcho: str
) -> None:
    port = free_port()
    env_file = tmp_path / ".env"
    env_file.write_text(f"PAYMENT_PROVIDER_URL=http://127.0.0.1:{port}\nPORT={free_port()}\n")
    shutil.copy(ROOT / "Procfile", tmp_path / "Procfile")
    (tmp_path / "var").mkdir()
    environment = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    environment["PYTHONPATH"] = str(ROOT)
    environment.pop("PAYMENT_PROVIDER_URL", None)
    environment.pop("PAYMENT_SANDBOX_PORT", None)
    process = subprocess.Popen(
        [honcho, "--env", str(env_file), "--app-root", str(tmp_path), "start", "sandbox"],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                assert time.monotonic() < deadline, "the sandbox did not listen on the URL's port"
                time.sleep(0.1)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
    assert response.status_code == 200
    assert (tmp_path / "var" / "payment-sandbox.sqlite3").is_file()
