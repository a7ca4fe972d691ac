"""Alert runbook links are absolute: RUNBOOK_BASE_URL + docs/operations.md#alert-...

docker/prometheus/prometheus.yml puts RUNBOOK_BASE_URL in the external label
`runbook_base_url` (expanded from the environment with expand-external-labels, as compose
runs it) and alerts.yml renders each runbook_url from it. Checked on a real Prometheus
(Debian's package, which `make test` installs for promtool) with one alert of alerts.yml made
to fire at once.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.deploy.helpers import ROOT
from tests.servers import free_port

pytestmark = [pytest.mark.slow]

PROMETHEUS_DIR = ROOT / "docker" / "prometheus"
BASE_URL = "https://git.example.com/shop/blob/main"


def test_compose_runs_prometheus_with_the_base_url_expanded() -> None:
    compose = yaml.safe_load((ROOT / "docker" / "compose.yml").read_text())
    prometheus = compose["services"]["prometheus"]
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())

    assert "--enable-feature=expand-external-labels" in prometheus["command"]
    assert prometheus["environment"]["RUNBOOK_BASE_URL"].startswith("${RUNBOOK_BASE_URL:-")
    assert config["global"]["external_labels"]["runbook_base_url"] == "${RUNBOOK_BASE_URL}"


def firing_rules(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """alerts.yml's first alert, made to fire at once: its annotations untouched."""
    groups = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text())["groups"]
    alert = next(rule for group in groups for rule in group["rules"] if "alert" in rule)
    alert = {**alert, "expr": "vector(1)", "for": "0s"}
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "firing", "rules": [alert]}]}))
    return path, alert


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    executable = shutil.which("prometheus")
    if not executable:
        pytest.skip("prometheus is not installed (Debian package prometheus)")
    rules, alert = firing_rules(tmp_path)
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    config["global"]["evaluation_interval"] = "1s"
    config["rule_files"] = [str(rules)]
    config.pop("alerting", None)
    config["scrape_configs"] = []
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = (tmp_path / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            executable,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--enable-feature=expand-external-labels",
        ],
        env={**os.environ, "RUNBOOK_BASE_URL": BASE_URL},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield f"http://127.0.0.1:{port}", alert
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def test_a_firing_alert_links_its_runbook_section_absolutely(
    prometheus: tuple[str, dict[str, Any]],
) -> None:
    url, alert = prometheus
    anchor = alert["annotations"]["runbook_url"].rsplit("#", 1)[1]
    deadline = time.monotonic() + 30
    firing: list[dict[str, Any]] = []
    while not firing:
        assert time.monotonic() < deadline, "the alert did not fire"
        time.sleep(0.5)
        try:
            firing = httpx.get(f"{url}/api/v1/alerts", timeout=2).json()["data"]["alerts"]
        except httpx.TransportError:
            continue

    assert firing[0]["labels"]["alertname"] == alert["alert"]
    assert firing[0]["annotations"]["runbook_url"] == f"{BASE_URL}/docs/operations.md#{anchor}"
