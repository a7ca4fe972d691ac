"""deploy/helm/ecommerce: lints, renders, and renders the same objects as deploy/k8s/."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from tests.deploy import checks
from tests.deploy.helpers import (
    CHART_PATH,
    KUBERNETES_VERSION,
    ROOT,
    Render,
    by_kind,
    component,
    env_example_names,
    main_container,
    validate_kubernetes,
    workload,
    yaml_documents,
)

CREATED_SECRET = {
    "secrets": {
        "existingSecret": "",
        "values": {
            "SECRET_KEY": "test-only-secret-key",
            "JWT_SIGNING_KEY": "test-only-jwt-key",
            "DATABASE_URL": "postgres://ecommerce:test@postgres:5432/ecommerce",
            "REDIS_URL": "redis://redis:6379/0",
            "CELERY_BROKER_URL": "redis://redis:6379/1",
            "EMAIL_URL": "smtp+tls://shop:test@smtp.example.com:587",
            "METRICS_TOKEN": "test-only-metrics-token",
        },
    }
}
FIXED_REPLICAS = {
    "web": {"autoscaling": {"enabled": False}, "replicas": 3, "pdb": {"enabled": False}},
    "worker": {"autoscaling": {"enabled": False}, "replicas": 4},
    "workerWebhooks": {"autoscaling": {"enabled": False}, "replicas": 3},
    "ingress": {"enabled": False},
    "migrations": {"enabled": False},
}
VARIANTS = {"defaults": {}, "created-secret": CREATED_SECRET, "fixed-replicas": FIXED_REPLICAS}


def test_chart_lints_strictly(helm: ModuleType) -> None:
    report = helm.lint(CHART_PATH, strict=True, kube_version=f"v{KUBERNETES_VERSION}.0")
    assert report["errors"] == []
    assert report["total_charts_linted"] == 1
    # Severity 2 is a warning, 3 an error; 1 ("icon is recommended") is advice.
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize("variant", VARIANTS)
def test_rendered_objects_validate_strictly(render: Render, variant: str) -> None:
    objects = render(VARIANTS[variant])
    assert objects
    for obj in objects:
        validate_kubernetes(obj)


def test_renders_the_objects_of_the_plain_manifests(render: Render) -> None:
    def shape(objects: list[dict[str, Any]]) -> set[tuple[str, str | None]]:
        return {(obj["kind"], component(obj)) for obj in objects}

    manifests = [
        obj
        for path in (ROOT / "deploy" / "k8s").glob("*.yaml")
        if path.name not in {"kustomization.yaml", "namespace.yaml"}
        for obj in yaml_documents(path.read_text())
    ]
    assert shape(render(CREATED_SECRET)) == shape(manifests)
    # By default the Secret is an existing one, managed outside the chart.
    assert shape(render()) == shape(manifests) - {("Secret", None)}


def test_settings_are_named_as_in_env_example(chart: Any, render: Render) -> None:
    assert set(chart.values["env"]) <= env_example_names()
    checks.assert_settings_names_documented(render(CREATED_SECRET))
    checks.assert_env_from_resolves(render(), "ecommerce-secrets")
    (secret,) = by_kind(render(CREATED_SECRET), "Secret")
    checks.assert_env_from_resolves(render(CREATED_SECRET), secret["metadata"]["name"])


@pytest.mark.parametrize("variant", VARIANTS)
def test_beat_renders_with_exactly_one_replica(render: Render, variant: str) -> None:
    checks.assert_beat_is_a_singleton(render(VARIANTS[variant]))


def test_beat_replicas_cannot_be_raised_by_values(render: Render) -> None:
    beat = workload(render({"beat": {"replicas": 3}}), "beat")
    assert beat["spec"]["replicas"] == 1


def test_web_probes_point_at_health_and_shutdown_drains(render: Render) -> None:
    checks.assert_web_probes_and_shutdown(render())
    checks.assert_worker_outlives_its_longest_task(render())


@pytest.mark.parametrize("variant", VARIANTS)
def test_containers_run_non_root_on_a_read_only_filesystem(render: Render, variant: str) -> None:
    objects = render(VARIANTS[variant])
    if variant == "fixed-replicas":
        # Without the migration Job the lock-down check needs the other three workloads only.
        objects = [*objects, workload(render(), "migrate")]
    checks.assert_locked_down(objects)
    checks.assert_writes_go_to_tmp(objects)


@pytest.mark.parametrize("variant", VARIANTS)
def test_references_between_objects_resolve(render: Render, variant: str) -> None:
    checks.assert_references_resolve(render(VARIANTS[variant]))


def test_fixed_replicas_are_rendered_when_autoscaling_is_off(render: Render) -> None:
    objects = render(FIXED_REPLICAS)
    assert workload(objects, "web")["spec"]["replicas"] == 3
    assert workload(objects, "worker")["spec"]["replicas"] == 4
    assert workload(objects, "worker-webhooks")["spec"]["replicas"] == 3
    assert by_kind(objects, "HorizontalPodAutoscaler") == []
    assert by_kind(objects, "Ingress") == []
    assert [component(pdb) for pdb in by_kind(objects, "PodDisruptionBudget")] == [
        "worker",
        "worker-webhooks",
    ]
    assert "initContainers" not in workload(objects, "web")["spec"]["template"]["spec"]


def test_migration_job_is_named_per_revision_and_pods_wait_for_it(render: Render) -> None:
    first, second = workload(render(), "migrate"), workload(render(revision=2), "migrate")
    assert first["metadata"]["name"] == "shop-ecommerce-migrate-1"
    assert second["metadata"]["name"] == "shop-ecommerce-migrate-2"
    assert main_container(first)["command"] == ["python", "manage.py", "migrate", "--noinput"]
    for name in ("web", "worker", "worker-webhooks"):
        (init,) = workload(render(), name)["spec"]["template"]["spec"]["initContainers"]
        assert "migrate --check" in init["command"][-1]


def test_image_defaults_to_the_app_version_and_follows_values(chart: Any, render: Render) -> None:
    app_version = chart.metadata["appVersion"]
    default = main_container(workload(render(), "web"))["image"]
    assert default == f"registry.example.com/ecommerce:{app_version}"
    tagged = render({"image": {"repository": "ghcr.io/acme/shop", "tag": "1.2.3"}})
    for obj in tagged:
        if obj["kind"] in {"Deployment", "Job"}:
            for container in obj["spec"]["template"]["spec"]["containers"]:
                assert container["image"] == "ghcr.io/acme/shop:1.2.3"


def test_a_created_secret_requires_its_keys(helm: ModuleType, chart: Any) -> None:
    with pytest.raises(helm.HelmError, match="SECRET_KEY is required"):
        chart.render({"secrets": {"existingSecret": ""}}, name="shop", namespace="shop")
    values = CREATED_SECRET["secrets"]["values"]
    without_token = {k: v for k, v in values.items() if k != "METRICS_TOKEN"}
    unset = {"secrets": {"existingSecret": "", "values": without_token}}
    with pytest.raises(helm.HelmError, match="METRICS_TOKEN is required"):
        chart.render(unset, name="shop", namespace="shop")
    public = chart.render({**unset, "env": {"METRICS_PUBLIC": "true"}}, name="s", namespace="s")
    assert "ecommerce/templates/secret.yaml" in public


def test_webhook_deliveries_have_their_own_workers(render: Render) -> None:
    checks.assert_webhooks_have_their_own_workers(render())
    for kind in ("HorizontalPodAutoscaler", "PodDisruptionBudget"):
        assert "worker-webhooks" in {component(obj) for obj in by_kind(render(), kind)}
    checks.assert_webhooks_have_their_own_workers(render(FIXED_REPLICAS))
    # Off: no webhook workers, nothing scaling or budgeting them.
    off = render({"workerWebhooks": {"enabled": False}})
    assert "worker-webhooks" not in {component(obj) for obj in off}
    assert checks.queues(off, "worker") == ["default", "payments", "notifications"]


def test_client_addresses_are_believed_from_the_ingress_only(render: Render) -> None:
    checks.assert_client_addresses_are_believed_from_the_ingress(render())


def test_notes_name_the_migration_job_and_the_rollout(chart: Any) -> None:
    notes = chart.render({}, name="shop", namespace="shop")["ecommerce/templates/NOTES.txt"]
    assert "job/shop-ecommerce-migrate-1" in notes
    assert "rollout status deployment/shop-ecommerce-web" in notes
