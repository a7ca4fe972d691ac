"""docs/capacity.md agrees with the Helm chart; the load scenario (Locust) stays bounded and on
loopback."""

from __future__ import annotations

import json
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
    assert "locust==" in (ROOT / "requirements" / "dev.txt").read_text()
    assert "DATABASE_DISABLE_SERVER_SIDE_CURSORS=false" in (ROOT / ".env.example").read_text()
    assert "docs/capacity.md" in (ROOT / "README.md").read_text()


@pytest.mark.parametrize(
    ("args", "env", "refusal"),
    [
        (["--rate", "500"], {}, "--rate in (0, 200]"),
        (["--users", "1000"], {}, "--users in [1, 200]"),
        ([], {"REDIS_URL": "redis://10.0.0.5:6379/0"}, "loopback only"),
    ],
    ids=["rate", "users", "remote-redis"],
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


LOCUSTFILE_CHECK = """
import json
from collections import Counter
import bench.locustfile as scenario
try:
    scenario.check_host("http://10.0.0.5:8000")
    refusal = None
except SystemExit as exit:
    refusal = str(exit)
print(json.dumps({
    "tasks": Counter(task.__name__ for task in scenario.Shopper.tasks),
    "mix": scenario.MIX,
    "pacing": scenario.Shopper.wait_time.__qualname__,
    "refusal": refusal,
}))
"""


def test_the_locustfile_imports_and_declares_the_shops_mix() -> None:
    """In a child process: importing Locust monkey-patches the process with gevent."""
    result = subprocess.run(
        [sys.executable, "-c", LOCUSTFILE_CHECK],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    declared = json.loads(result.stdout.splitlines()[-1])
    mix = {"browse": 30, "product": 35, "search": 10, "cart": 17, "checkout": 5, "order": 3}
    assert declared["mix"] == mix
    assert declared["tasks"] == mix  # Locust draws each task as often as its weight
    assert declared["pacing"].startswith("constant_pacing")  # what constant_throughput returns
    assert "loopback only" in declared["refusal"]


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
