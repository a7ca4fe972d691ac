"""The runbook's health commands work when things are broken: they print the JSON of a 503.

docs/operations.md's `health` shortcut runs Python in the web container (kubectl exec); its
Python is run here as is, against gunicorn on the test database with Redis down, and so is
the local curl line. With Redis down `/health` answers 503 and `/health/ready` stays 200
"degraded", which is what the runbook's Redis entry and docker/compose.yml's web healthcheck
say.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.helpers import ROOT
from tests.servers import GunicornServer, free_port, project_env

pytestmark = [pytest.mark.slow]

OPERATIONS = (ROOT / "docs" / "operations.md").read_text()


def health_python(path: str) -> str:
    """The Python of the runbook's `health` shell function, `$1` being `path`."""
    match = re.search(
        r'^health\(\) \{ kubectl [^\n]* -- python -c "(.*?)"; \}$', OPERATIONS, re.M | re.S
    )
    assert match, "docs/operations.md has no health() shortcut"
    return match.group(1).replace("$1", path)


def local_curl(port: int) -> list[str]:
    match = re.search(r"`(curl -s -w '([^']*)' http://localhost:8080/health)`", OPERATIONS)
    assert match, "docs/operations.md has no local curl line for /health"
    assert " -f" not in match.group(1)
    return ["curl", "-s", "-w", match.group(2), f"http://localhost:{port}/health"]


@pytest.fixture
def redis_down_shop(tmp_path: Path, transactional_db: Any) -> Iterator[GunicornServer]:
    env = project_env(
        REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
        ACCESS_LOG="0",
        OTEL_ENABLED="0",
        METRICS_DIR=str(tmp_path / "metrics"),
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics" / "web"),
        CACHE_KEY_PREFIX=f"runbook-{uuid.uuid4().hex[:8]}",
    )
    server = GunicornServer(workers=1, env=env, log_path=tmp_path / "web.log")
    try:
        yield server
    finally:
        assert server.stop() == 0


def run_health(server: GunicornServer, path: str) -> tuple[int, dict[str, Any]]:
    environment = dict(os.environ, PORT=str(server.port))
    result = subprocess.run(
        [sys.executable, "-c", health_python(path)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    status, body = result.stdout.split(" ", 1)
    return int(status), json.loads(body)


def test_the_health_shortcut_prints_the_json_of_a_503(redis_down_shop: GunicornServer) -> None:
    status, body = run_health(redis_down_shop, "")

    assert status == 503
    assert body["code"] == "unhealthy"
    assert body["checks"]["database"]["status"] == "up"
    assert body["checks"]["cache"]["status"] == "down"
    assert body["checks"]["cache"]["error"]


def test_readiness_stays_up_degraded_with_redis_down(redis_down_shop: GunicornServer) -> None:
    status, body = run_health(redis_down_shop, "/ready")

    assert (status, body["status"]) == (200, "degraded")
    assert body["checks"]["cache"]["status"] == "down"
    redis_entry = OPERATIONS.split("### Alert: Redis down", 1)[1].split("\n### ", 1)[0]
    assert "pods stay ready" in redis_entry
    assert "degraded" in redis_entry


def test_the_local_curl_line_prints_the_json_of_a_503(redis_down_shop: GunicornServer) -> None:
    if not shutil.which("curl"):
        pytest.skip("curl is not installed")
    result = subprocess.run(
        local_curl(redis_down_shop.port), capture_output=True, text=True, timeout=30, check=True
    )
    body, status = result.stdout.rstrip("\n").rsplit(" ", 1)

    assert status == "503"
    assert json.loads(body)["checks"]["cache"]["status"] == "down"
