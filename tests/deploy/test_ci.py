""".github/workflows/ci.yml: lint, tests on PostgreSQL and Redis, image build, tag-gated deploy."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.deploy.helpers import ROOT


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
    assert set(workflow["jobs"]) == {"lint", "test", "image", "deploy"}


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


def test_image_is_built_from_the_dockerfile_and_not_pushed_from_pull_requests(
    workflow: dict[Any, Any],
) -> None:
    steps = workflow["jobs"]["image"]["steps"]
    (build,) = [step for step in steps if step.get("uses", "").startswith("docker/build-push")]
    assert build["with"]["file"] == "docker/Dockerfile"
    assert build["with"]["push"] == "${{ github.event_name != 'pull_request' }}"
    (login,) = [step for step in steps if step.get("uses", "").startswith("docker/login")]
    assert login["if"] == "github.event_name != 'pull_request'"


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
