""".github/workflows/ci.yml: lint, tests on PostgreSQL and Redis, the benchmark smoke, the image
proven then pushed, tag-gated deploy."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from tests.deploy.helpers import ROOT, env_example_names, env_file_names


@pytest.fixture(scope="module")
def workflow() -> dict[Any, Any]:
    return yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())


def run_lines(job: dict[str, Any]) -> list[str]:
    return [
        line.strip()
        for step in job["steps"]
        for line in step.get("run", "").splitlines()
        if line.strip()
    ]


def test_runs_on_pull_requests_main_and_version_tags(workflow: dict[Any, Any]) -> None:
    # YAML 1.1 (PyYAML) reads the bare key `on` as the boolean true.
    triggers: dict[str, Any] = workflow["on"] if "on" in workflow else workflow[True]
    assert "pull_request" in triggers
    assert triggers["push"] == {"branches": ["main"], "tags": ["v*"]}
    assert set(workflow["jobs"]) == {"lint", "test", "bench", "image", "deploy"}


def test_lint_and_test_run_the_make_targets(workflow: dict[Any, Any]) -> None:
    assert "make lint" in run_lines(workflow["jobs"]["lint"])
    test = workflow["jobs"]["test"]
    assert "make test" in run_lines(test)
    services = test["services"]
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["postgres"]["env"]["POSTGRES_HOST_AUTH_METHOD"] == "trust"
    assert services["postgres"]["ports"] == ["5432:5432"]
    assert services["redis"]["image"].startswith("redis:")
    assert services["redis"]["ports"] == ["6379:6379"]
    for service in services.values():
        assert "--health-cmd" in service["options"]


def test_the_benchmark_harness_runs_as_a_smoke(workflow: dict[Any, Any]) -> None:
    """`make bench-smoke` on the same service containers as the tests, with wrk installed
    first; never part of pytest, and the image does not wait for it."""
    bench = workflow["jobs"]["bench"]
    lines = run_lines(bench)
    install = next(i for i, line in enumerate(lines) if "apt-get install" in line)
    assert "wrk" in lines[install].split()
    assert lines.index("make bench-smoke") > install
    assert bench["services"]["postgres"]["env"]["POSTGRES_HOST_AUTH_METHOD"] == "trust"
    assert bench["services"]["postgres"]["ports"] == ["5432:5432"]
    assert bench["services"]["redis"]["ports"] == ["6379:6379"]
    assert bench["timeout-minutes"] <= 15
    assert "bench" not in workflow["jobs"]["image"]["needs"]
    assert "bench" not in " ".join(run_lines(workflow["jobs"]["test"]))


def test_make_bench_smoke_is_the_harness_in_smoke_mode() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert (
        "bench-smoke: $(VENV)/.dev-installed bench-tools\n\t$(BIN)/python bench/run.py --smoke"
        in (makefile)
    )
    assert "bench: $(VENV)/.dev-installed bench-tools\n\t$(BIN)/python bench/run.py $(ARGS)" in (
        makefile
    )


PUBLISH = (
    "github.event_name == 'push' && (github.ref == 'refs/heads/main'"
    " || startsWith(github.ref, 'refs/tags/v'))"
)


def step_index(steps: list[dict[str, Any]], predicate: Callable[[dict[str, Any]], bool]) -> int:
    (index,) = [i for i, step in enumerate(steps) if predicate(step)]
    return index


def runs(*fragments: str) -> Callable[[dict[str, Any]], bool]:
    return lambda step: all(fragment in step.get("run", "") for fragment in fragments)


def test_the_image_is_proven_before_it_is_pushed(workflow: dict[Any, Any]) -> None:
    """After the tests: build, migrate --check (refusing first), web + worker + sandbox from
    the image against service containers, an order walked to paid; only then the push."""
    image = workflow["jobs"]["image"]
    assert {"test", "lint"} <= set(image["needs"])
    assert image["services"]["postgres"]["ports"] == ["5432:5432"]
    assert image["services"]["redis"]["ports"] == ["6379:6379"]
    steps = image["steps"]
    build = step_index(steps, lambda s: s.get("uses", "").startswith("docker/build-push"))
    built = steps[build]["with"]
    assert built["file"] == "docker/Dockerfile"
    assert built["load"] is True
    assert built["push"] is False
    assert "${{ env.IMAGE }}" in built["tags"]
    migrate = step_index(steps, runs("manage migrate --noinput"))
    script = steps[migrate]["run"]
    # `migrate --check` must refuse the empty database, then pass once migrated.
    assert script.index("if manage migrate --check; then") < script.index(
        "manage migrate --noinput"
    )
    assert script.index("manage migrate --noinput") < script.rindex("manage migrate --check\n")
    start = step_index(steps, runs("start web", "start worker", "start sandbox"))
    started = steps[start]["run"]
    assert "--network host --env-file .ci/image.env" in started
    assert "--read-only" in started
    assert "celery -A ecommerce worker -Q default,payments,notifications" in started
    assert "python -m apps.payments.sandbox" in started
    smoke = step_index(steps, runs("deploy/smoke-image.sh http://127.0.0.1:8080"))
    push = step_index(steps, runs("docker push"))
    login = step_index(steps, lambda s: s.get("uses", "").startswith("docker/login"))
    assert build < migrate < start < smoke < login < push
    # Nothing after the smoke walk but failure logs, the login and the push.
    assert all(step.get("if") in {"failure()", PUBLISH} for step in steps[smoke + 1 :])
    assert steps[push]["if"] == PUBLISH
    assert steps[login]["if"] == PUBLISH
    assert "steps.meta.outputs.tags" in steps[push]["env"]["TAGS"]


def test_the_image_containers_settings(workflow: dict[Any, Any]) -> None:
    """.ci/image.env: names of .env.example, everything on the runner's loopback."""
    path = ROOT / ".ci" / "image.env"
    names = env_file_names(path)
    assert set(names) <= env_example_names()
    settings = dict(
        line.split("=", 1)
        for line in path.read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert settings["DEBUG"] == "false"
    assert settings["DATABASE_URL"] == "postgres://postgres@127.0.0.1:5432/ecommerce"
    assert settings["REDIS_URL"].startswith("redis://127.0.0.1:6379/")
    assert settings["PAYMENT_PROVIDER_URL"].startswith("http://127.0.0.1:")
    assert settings["PORT"] == "8080"
    assert "127.0.0.1" in settings["ALLOWED_HOSTS"].split(",")


def test_the_smoke_walk_is_plain_posix_shell() -> None:
    script = ROOT / "deploy" / "smoke-image.sh"
    assert script.stat().st_mode & 0o111, "not executable"
    assert script.read_text().startswith("#!/bin/sh\n")
    for shell in ("dash", "bash"):
        if shutil.which(shell):
            result = subprocess.run([shell, "-n", str(script)], capture_output=True, text=True)
            assert result.returncode == 0, result.stderr


def test_deploy_runs_only_for_version_tags_after_everything_passed(
    workflow: dict[Any, Any],
) -> None:
    deploy = workflow["jobs"]["deploy"]
    assert deploy["if"] == "startsWith(github.ref, 'refs/tags/v')"
    assert set(deploy["needs"]) == {"lint", "test", "image"}
    assert deploy["environment"] == "production"
    command = " ".join(run_lines(deploy))
    assert "helm upgrade --install ecommerce deploy/helm/ecommerce" in command
    assert "--atomic" in command
    assert "secrets.KUBE_CONFIG" in str(deploy["steps"])
