"""gunicorn's access log: one line per request with ACCESS_LOG on, none with ACCESS_LOG=0.

Both run the project's real gunicorn config on a free port against this test's database
and Redis, send a known number of requests to a path nothing else calls, and count the
lines of the server's output that name that path.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.servers import GunicornServer, project_env

REQUESTS = 7
# The readiness poll of GunicornServer calls /health/live; these requests go elsewhere.
PATH = "/health/ready"


def served_lines(tmp_path: Path, *, access_log: str) -> list[str]:
    env = project_env(
        ACCESS_LOG=access_log,
        LOG_JSON="1",
        LOG_LEVEL="INFO",
        OTEL_ENABLED="0",
        METRICS_DIR=str(tmp_path / "metrics"),
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics" / "web"),
    )
    log_path = tmp_path / "gunicorn.log"
    server = GunicornServer(workers=1, env=env, log_path=log_path)
    try:
        with httpx.Client(base_url=server.url) as client:
            statuses = [client.get(PATH).status_code for _ in range(REQUESTS)]
    finally:
        assert server.stop() == 0
    assert statuses == [200] * REQUESTS, log_path.read_text()
    return log_path.read_text().splitlines()


@pytest.mark.django_db(transaction=True)
def test_access_log_on_writes_exactly_one_json_line_per_request(tmp_path: Path) -> None:
    lines = [line for line in served_lines(tmp_path, access_log="1") if PATH in line]

    assert len(lines) == REQUESTS, "\n".join(lines)
    events = [json.loads(line) for line in lines]  # one JSON object each, nothing plain
    assert {event["logger"] for event in events} == {"gunicorn.access"}
    assert all(f'"GET {PATH} HTTP/1.1" 200' in event["event"] for event in events)


@pytest.mark.django_db(transaction=True)
def test_access_log_off_writes_no_access_line(tmp_path: Path) -> None:
    lines = served_lines(tmp_path, access_log="0")

    assert [line for line in lines if PATH in line] == []
    assert not [line for line in lines if "gunicorn.access" in line]
    # The server did log (its start-up lines): silence is the access log's alone.
    assert any("Booting worker" in line for line in lines), "\n".join(lines)
