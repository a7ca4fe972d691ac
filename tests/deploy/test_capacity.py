"""docs/capacity.md agrees with the Helm chart; the load driver stays bounded and on loopback."""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import pytest
import yaml

from tests.deploy.helpers import CHART_PATH, ROOT
from tests.ecommerce.test_settings import run_python

DOC = ROOT / "docs" / "capacity.md"
COMPONENTS = {"web": "web", "worker": "worker", "worker-webhooks": "workerWebhooks"}


@pytest.fixture(scope="module")
def values() -> dict[str, Any]:
    return yaml.safe_load((CHART_PATH / "values.yaml").read_text())


def hpa_rows() -> dict[str, tuple[int, int, int]]:
    """| component | min | max | CPU target | why | rows of the autoscaling table."""
    section = DOC.read_text().split("## Autoscaling settings that follow", 1)[1]
    rows = re.findall(r"^\| ([a-z-]+) \| (\d+) \| (\d+) \| (\d+) \|", section, re.MULTILINE)
    return {name: (int(low), int(high), int(target)) for name, low, high, target in rows}


def test_the_autoscaling_table_is_the_charts(values: dict[str, Any]) -> None:
    rows = hpa_rows()
    assert set(rows) == set(COMPONENTS)
    for name, key in COMPONENTS.items():
        autoscaling = values[key]["autoscaling"]
        assert autoscaling["enabled"] is True, name
        assert rows[name] == (
            autoscaling["minReplicas"],
            autoscaling["maxReplicas"],
            autoscaling["targetCPUUtilizationPercentage"],
        ), name


def test_the_connection_sum_at_full_scale_is_the_charts(values: dict[str, Any]) -> None:
    web = values["web"]["autoscaling"]["maxReplicas"] * int(values["env"]["WEB_CONCURRENCY"])
    worker = values["worker"]["autoscaling"]["maxReplicas"] * values["worker"]["concurrency"]
    webhooks = (
        values["workerWebhooks"]["autoscaling"]["maxReplicas"]
        * values["workerWebhooks"]["concurrency"]
    )
    total = web + worker + webhooks + 1  # beat
    assert f"= **{total}**" in DOC.read_text()


def test_make_load_runs_the_driver_and_the_pooler_setting_exists() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^load: .*\n\t\$\(BIN\)/python bench/load.py ", makefile, re.MULTILINE)
    assert "DATABASE_DISABLE_SERVER_SIDE_CURSORS=false" in (ROOT / ".env.example").read_text()
    assert "docs/capacity.md" in (ROOT / "README.md").read_text()


@pytest.mark.parametrize(
    ("args", "env", "refusal"),
    [
        (["--rate", "500"], {}, "--rate in (0, 200]"),
        ([], {"REDIS_URL": "redis://10.0.0.5:6379/0"}, "loopback only"),
    ],
    ids=["rate", "remote-redis"],
)
def test_the_load_driver_refuses_unbounded_or_remote_runs(
    args: list[str], env: dict[str, str], refusal: str
) -> None:
    """Refused before anything starts: nothing seeded, no process, no request sent."""
    result = subprocess.run(
        [sys.executable, "bench/load.py", *args],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert refusal in result.stderr
    assert "seeding" not in result.stdout


def test_server_side_cursors_can_be_disabled_for_a_transaction_pooler() -> None:
    show = [
        "-c",
        "import ecommerce.settings as s; "
        "print(s.DATABASES['default']['DISABLE_SERVER_SIDE_CURSORS'])",
    ]
    result = run_python(
        show,
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/unused",
        DEBUG="1",
        DATABASE_DISABLE_SERVER_SIDE_CURSORS="true",
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == "True\n"
