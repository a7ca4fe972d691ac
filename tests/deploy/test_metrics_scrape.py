"""deploy/helm/ecommerce: Prometheus scrapes every pod that serves metrics, and every metric
an alert reads comes from a scraped pod (PodMonitors, or the prometheus.io annotations)."""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.deploy.helpers import (
    ROOT,
    Render,
    by_kind,
    component,
    containers,
    pod_spec,
    selects,
    validate_kubernetes,
)
from tests.deploy.test_helm import CREATED_SECRET

ALERT_RULES = ROOT / "docker" / "prometheus" / "alerts.yml"
PODMONITOR = {"metrics": {"podMonitor": {"enabled": True}}}
ANNOTATIONS_ONLY = {"metrics": {"annotations": {"enabled": True}}}

# Which process serves each metric the alert rules read. Written out by hand, from the code:
# - django_http_*: django-prometheus's middleware, in the web's gunicorn workers only.
# - ecommerce_rate_limited_requests_total: ecommerce/api/ratelimit.py, in API requests (web).
# - ecommerce_outbox_*, ecommerce_celery_queue_length, ecommerce_dependency_up: computed at
#   scrape time by ScrapeTimeCollector, which only the web's registry_for_scrape() registers
#   (ecommerce/observability/exposition.py).
# - ecommerce_circuit_breaker_state: BreakerStateCollector, in both the web's registry and the
#   workers' worker_registry().
# - ecommerce_payments_total: apps/payments/services.py, run by the payment task (workers).
# - ecommerce_celery_worker_heartbeat_timestamp_seconds: the worker's heartbeat thread
#   (ecommerce/observability/celery.py), served on CELERY_METRICS_PORT.
# A worker is "worker" or "worker-webhooks": the same code, either one's endpoint will do.
WORKERS = frozenset({"worker", "worker-webhooks"})
EXPORTED_BY: dict[str, frozenset[str]] = {
    "django_http_requests_latency_seconds_by_view_method_count": frozenset({"web"}),
    "django_http_requests_latency_seconds_by_view_method_bucket": frozenset({"web"}),
    "django_http_responses_total_by_status_view_method_total": frozenset({"web"}),
    "ecommerce_rate_limited_requests_total": frozenset({"web"}),
    "ecommerce_outbox_pending_messages": frozenset({"web"}),
    "ecommerce_outbox_oldest_pending_age_seconds": frozenset({"web"}),
    "ecommerce_celery_queue_length": frozenset({"web"}),
    "ecommerce_dependency_up": frozenset({"web"}),
    "ecommerce_circuit_breaker_state": frozenset({"web"}) | WORKERS,
    "ecommerce_payments_total": WORKERS,
    # Staff refunds are sent by the web request, compensations by the payment workers.
    "ecommerce_refunds_total": frozenset({"web"}) | WORKERS,
    "ecommerce_celery_worker_heartbeat_timestamp_seconds": WORKERS,
}

_PROMQL_WORDS = frozenset(
    {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right"}
    | {"bool", "offset", "inf", "nan"}
)


def metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression reads: label matchers, ranges, grouping labels
    and function names removed."""
    expr = re.sub(r"\{[^}]*\}", " ", expr)
    expr = re.sub(r"\[[^\]]*\]", " ", expr)
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", " ", expr)
    names = set()
    for match in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
        following = expr[match.end() :].lstrip()
        if following.startswith("(") or match.group().lower() in _PROMQL_WORDS:
            continue
        names.add(match.group())
    return names


def alert_metrics() -> dict[str, set[str]]:
    """Each alert's raw metric names, recording rules replaced by what they read."""
    rules = [
        rule
        for group in yaml.safe_load(ALERT_RULES.read_text())["groups"]
        for rule in group["rules"]
    ]
    recorded = {rule["record"]: metric_names(rule["expr"]) for rule in rules if "record" in rule}
    alerts = {}
    for rule in rules:
        if "alert" in rule:
            names = metric_names(rule["expr"])
            while recorded.keys() & names:
                names = {raw for name in names for raw in recorded.get(name, {name})}
            alerts[rule["alert"]] = names
    return alerts


def pod_targets(objects: list[dict[str, Any]], selector: dict[str, str]) -> list[dict[str, Any]]:
    return [
        obj
        for obj in by_kind(objects, "Deployment")
        if selects(selector, obj["spec"]["template"]["metadata"]["labels"])
    ]


def port_names(obj: dict[str, Any]) -> dict[str, int]:
    return {
        port["name"]: port["containerPort"]
        for container in containers(obj)
        for port in container.get("ports", [])
        if "name" in port
    }


def podmonitor_targets(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Component -> the endpoint a PodMonitor scrapes on its pods; each endpoint's port is a
    named port of the pods it selects."""
    scraped: dict[str, dict[str, Any]] = {}
    for monitor in by_kind(objects, "PodMonitor"):
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        name = monitor["metadata"]["name"]
        pods = pod_targets(objects, monitor["spec"]["selector"]["matchLabels"])
        assert pods, f"PodMonitor {name} selects no pods"
        for endpoint in monitor["spec"]["podMetricsEndpoints"]:
            for pod in pods:
                assert endpoint["port"] in port_names(pod), (name, endpoint["port"])
                scraped[str(component(pod))] = endpoint
    return scraped


def annotation_targets(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Component -> (port, path) its pods' prometheus.io annotations point at."""
    scraped = {}
    for obj in by_kind(objects, "Deployment"):
        annotations = obj["spec"]["template"]["metadata"].get("annotations", {})
        if annotations.get("prometheus.io/scrape") == "true":
            port = int(annotations["prometheus.io/port"])
            assert port in port_names(obj).values(), (component(obj), port)
            scraped[str(component(obj))] = {"port": port, "path": annotations["prometheus.io/path"]}
    return scraped


def assert_every_alert_reads_scraped_metrics(scraped: set[str]) -> None:
    alerts = alert_metrics()
    assert len(alerts) >= 10
    assert "CeleryNoWorker" in alerts
    for alert, names in alerts.items():
        assert names, alert
        for name in names:
            assert name in EXPORTED_BY, f"{alert}: which process serves {name}?"
            assert EXPORTED_BY[name] & scraped, f"{alert}: nothing scrapes {name}"


def test_the_alert_rules_are_read_as_expected() -> None:
    alerts = alert_metrics()
    assert alerts["CeleryNoWorker"] == {"ecommerce_celery_worker_heartbeat_timestamp_seconds"}
    assert alerts["PaymentFailureRatioHigh"] == {"ecommerce_payments_total"}
    assert alerts["LatencySLOFastBurn"] == {
        "django_http_requests_latency_seconds_by_view_method_count",
        "django_http_requests_latency_seconds_by_view_method_bucket",
    }


def test_every_metric_of_the_table_is_declared_in_the_code() -> None:
    sources = [
        *(ROOT / "ecommerce").rglob("*.py"),
        *(ROOT / "apps").rglob("*.py"),
        *Path(yaml.__file__).parents[1].joinpath("django_prometheus").rglob("*.py"),
    ]
    text = "\n".join(path.read_text() for path in sources)
    for name in EXPORTED_BY:
        # Counters and histograms are declared without their _total/_count/_bucket suffix.
        base = re.sub(r"_(total|count|bucket)$", "", name)
        assert f'"{base}' in text, name


def test_podmonitors_scrape_web_and_every_worker(render: Render) -> None:
    objects = render(PODMONITOR)
    for obj in objects:
        if obj["kind"] != "PodMonitor":
            validate_kubernetes(obj)
    scraped = podmonitor_targets(objects)
    assert set(scraped) == {"web"} | WORKERS
    assert {endpoint["path"] for endpoint in scraped.values()} == {"/metrics"}
    assert_every_alert_reads_scraped_metrics(set(scraped))
    # The web's /metrics wants the Secret's METRICS_TOKEN; the workers' endpoint wants none.
    env_secrets = {
        source["secretRef"]["name"]
        for obj in by_kind(objects, "Deployment")
        for container in pod_spec(obj)["containers"]
        for source in container.get("envFrom", [])
        if "secretRef" in source
    }
    assert env_secrets == {"ecommerce-secrets"}
    assert scraped["web"]["bearerTokenSecret"] == {
        "name": "ecommerce-secrets",
        "key": "METRICS_TOKEN",
    }
    for worker in WORKERS:
        assert "bearerTokenSecret" not in scraped[worker]


def test_podmonitors_follow_the_secret_the_token_and_the_webhook_workers(render: Render) -> None:
    created = render({**PODMONITOR, **CREATED_SECRET})
    (secret,) = by_kind(created, "Secret")
    assert "METRICS_TOKEN" in secret["data"]
    token = podmonitor_targets(created)["web"]["bearerTokenSecret"]
    assert token == {"name": secret["metadata"]["name"], "key": "METRICS_TOKEN"}
    public = render({**PODMONITOR, "env": {"METRICS_PUBLIC": "true"}})
    assert "bearerTokenSecret" not in podmonitor_targets(public)["web"]
    off = render({**PODMONITOR, "workerWebhooks": {"enabled": False}})
    scraped = podmonitor_targets(off)
    assert set(scraped) == {"web", "worker"}
    assert_every_alert_reads_scraped_metrics(set(scraped))
    labelled = render({"metrics": {"podMonitor": {"enabled": True, "labels": {"release": "kps"}}}})
    assert {m["metadata"]["labels"]["release"] for m in by_kind(labelled, "PodMonitor")} == {"kps"}


def test_a_podmonitor_needs_the_worker_metrics_port(helm: ModuleType, chart: Any) -> None:
    values = {**PODMONITOR, "worker": {"env": {"CELERY_METRICS_PORT": None}}}
    with pytest.raises(helm.HelmError, match=r"needs worker\.env\.CELERY_METRICS_PORT"):
        chart.render(values, name="shop", namespace="shop")


def test_annotations_scrape_web_and_every_worker_by_default(render: Render) -> None:
    objects = render()
    assert by_kind(objects, "PodMonitor") == []
    scraped = annotation_targets(objects)
    assert scraped == {
        "web": {"port": 8080, "path": "/metrics"},
        "worker": {"port": 9101, "path": "/metrics"},
        "worker-webhooks": {"port": 9101, "path": "/metrics"},
    }
    assert scraped == annotation_targets(render(ANNOTATIONS_ONLY))
    assert_every_alert_reads_scraped_metrics(set(scraped))
    assert annotation_targets(render({"metrics": {"annotations": {"enabled": False}}})) == {}
