"""deploy/k8s/: every manifest valid for Kubernetes, and the objects safe to run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy import checks
from tests.deploy.helpers import ROOT, by_kind, validate_kubernetes, yaml_documents

K8S_DIR = ROOT / "deploy" / "k8s"
MANIFESTS = sorted(path for path in K8S_DIR.glob("*.yaml") if path.name != "kustomization.yaml")
SECRET_EXAMPLE = K8S_DIR / "secret.example.yaml"


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    """What `kubectl apply -k deploy/k8s` applies (the Secret example is not part of it)."""
    kustomization = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())
    return [
        obj
        for name in kustomization["resources"]
        for obj in yaml_documents((K8S_DIR / name).read_text())
    ]


@pytest.mark.parametrize("path", MANIFESTS, ids=[path.name for path in MANIFESTS])
def test_manifest_validates_strictly(path: Path) -> None:
    documents = yaml_documents(path.read_text())
    assert documents
    for obj in documents:
        validate_kubernetes(obj)


def test_kustomization_lists_every_manifest_but_the_secret_example() -> None:
    kustomization = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())
    assert kustomization["namespace"] == "ecommerce"
    assert sorted(kustomization["resources"]) == sorted(
        path.name for path in MANIFESTS if path != SECRET_EXAMPLE
    )
    images = {image["name"] for image in kustomization["images"]}
    for obj in yaml_documents((K8S_DIR / "web-deployment.yaml").read_text()):
        for container in obj["spec"]["template"]["spec"]["containers"]:
            assert container["image"].split(":")[0] in images


def test_secret_example_is_marked_and_holds_only_placeholders() -> None:
    text = SECRET_EXAMPLE.read_text()
    assert text.startswith("# EXAMPLE ONLY - PLACEHOLDER VALUES")
    (secret,) = yaml_documents(text)
    assert set(secret["stringData"]) == {
        "SECRET_KEY",
        "JWT_SIGNING_KEY",
        "DATABASE_URL",
        "REDIS_URL",
        "CELERY_BROKER_URL",
        "EMAIL_URL",
        "METRICS_TOKEN",
    }
    for key in ("SECRET_KEY", "JWT_SIGNING_KEY", "DATABASE_URL", "EMAIL_URL", "METRICS_TOKEN"):
        assert "PLACEHOLDER" in secret["stringData"][key]


def test_settings_are_named_as_in_env_example(objects: list[dict[str, Any]]) -> None:
    checks.assert_settings_names_documented([*objects, *yaml_documents(SECRET_EXAMPLE.read_text())])
    (secret,) = yaml_documents(SECRET_EXAMPLE.read_text())
    checks.assert_env_from_resolves(objects, secret["metadata"]["name"])


def test_beat_runs_exactly_one_replica(objects: list[dict[str, Any]]) -> None:
    checks.assert_beat_is_a_singleton(objects)


def test_web_probes_point_at_health_and_shutdown_drains(objects: list[dict[str, Any]]) -> None:
    checks.assert_web_probes_and_shutdown(objects)
    checks.assert_worker_outlives_its_longest_task(objects)


def test_webhook_deliveries_have_their_own_workers(objects: list[dict[str, Any]]) -> None:
    checks.assert_webhooks_have_their_own_workers(objects)
    for kind in ("HorizontalPodAutoscaler", "PodDisruptionBudget"):
        assert "worker-webhooks" in {checks.component(obj) for obj in by_kind(objects, kind)}


def test_client_addresses_are_believed_from_the_ingress_only(
    objects: list[dict[str, Any]],
) -> None:
    checks.assert_client_addresses_are_believed_from_the_ingress(objects)


def test_containers_run_non_root_on_a_read_only_filesystem(
    objects: list[dict[str, Any]],
) -> None:
    checks.assert_locked_down(objects)
    checks.assert_writes_go_to_tmp(objects)


def test_references_between_objects_resolve(objects: list[dict[str, Any]]) -> None:
    checks.assert_references_resolve(objects)
    assert {obj["kind"] for obj in objects} >= {
        "ConfigMap",
        "Deployment",
        "Service",
        "Ingress",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "Job",
    }
    assert len(by_kind(objects, "HorizontalPodAutoscaler")) == 3
