"""Alert rules, their promtool unit tests, and the Grafana dashboard's queries."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "docker" / "prometheus" / "alerts.yml"
RUNBOOK_PATH = "{{ $externalLabels.runbook_base_url }}/docs/operations.md"
ALERTS_TEST = ROOT / "docker" / "prometheus" / "alerts_test.yml"
DASHBOARD = ROOT / "docker" / "grafana" / "dashboards" / "ecommerce.json"
OPERATIONS = ROOT / "docs" / "operations.md"

# The metrics the code exports (histograms with their series suffixes) and Prometheus's `up`.
HISTOGRAMS = (
    "django_http_requests_latency_seconds_by_view_method",
    "ecommerce_payment_provider_latency_seconds",
    "ecommerce_celery_task_duration_seconds",
)
KNOWN_METRICS = frozenset(
    {
        "up",
        "django_http_responses_total_by_status_view_method_total",
        "ecommerce_payments_total",
        "ecommerce_refunds_total",
        "ecommerce_circuit_breaker_state",
        "ecommerce_circuit_breaker_transitions_total",
        "ecommerce_outbox_pending_messages",
        "ecommerce_outbox_oldest_pending_age_seconds",
        "ecommerce_celery_queue_length",
        "ecommerce_celery_worker_heartbeat_timestamp_seconds",
        "ecommerce_celery_task_runs_total",
        "ecommerce_dependency_up",
        "ecommerce_rate_limited_requests_total",
        "ecommerce_orders_created_total",
        "ecommerce_order_value_total",
        "ecommerce_notifications_total",
        "ecommerce_cache_requests_total",
    }
    | {f"{name}_{suffix}" for name in HISTOGRAMS for suffix in ("bucket", "sum", "count")}
)
RUNBOOK_ANCHORS = frozenset(
    {
        "alert-high-5xx-ratio",
        "alert-latency-slo-burn",
        "alert-payment-failure-ratio",
        "alert-payment-compensation-refused",
        "alert-circuit-breaker-open",
        "alert-outbox-backlog",
        "alert-celery-backlog",
        "alert-celery-no-worker",
        "alert-database-down",
        "alert-redis-down",
        "alert-rate-limited-surge",
    }
)

# Enough PromQL lexing to find metric names: drop strings, label matchers, ranges, Grafana
# variables and grouping clauses; what is left and not a call, keyword or number is a name.
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_VARIABLES = re.compile(r"\$\{[^}]*\}|\$\w+")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w.])[A-Za-z_:][\w:]*")
_KEYWORDS = frozenset({"and", "or", "unless", "offset", "bool", "inf", "nan"})


def metric_names(expr: str) -> set[str]:
    text = _STRINGS.sub('""', expr)
    for pattern in (_MATCHERS, _RANGES, _VARIABLES, _GROUPING):
        text = pattern.sub(" ", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        if text[match.end() :].lstrip().startswith("("):  # a function or aggregation
            continue
        if match.group().lower() not in _KEYWORDS:
            names.add(match.group())
    return names


def load_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def alert_rules() -> list[dict[str, Any]]:
    return [rule for rule in load_rules() if "alert" in rule]


def recorded_names() -> set[str]:
    return {rule["record"] for rule in load_rules() if "record" in rule}


def dashboard_targets() -> Iterator[tuple[str, str]]:
    """(panel title, expr) of every query, rows' nested panels included."""
    stack = list(json.loads(DASHBOARD.read_text())["panels"])
    while stack:
        panel = stack.pop()
        stack.extend(panel.get("panels", []))
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]


def heading_anchors(markdown: str) -> set[str]:
    """GitHub-style heading slugs, explicit `{#id}` heading ids and `<a id|name="...">`."""
    anchors = set(re.findall(r"""<a\s+(?:id|name)=["']([^"']+)["']""", markdown))
    in_code = False
    for line in markdown.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            in_code = not in_code
        heading = None if in_code else re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not heading:
            continue
        text = heading.group(1)
        explicit = re.search(r"\{#([\w-]+)\}\s*$", text)
        if explicit:
            anchors.add(explicit.group(1))
            text = text[: explicit.start()]
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link keeps its text
        anchors.add(re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-"))
    return anchors


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("promtool") is None:
        pytest.fail(
            "promtool is not on PATH: `make test` installs it (Debian package `prometheus`), "
            "or run `apt-get install -y --no-install-recommends prometheus`."
        )
    return subprocess.run(
        ["promtool", *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )


def test_promtool_check_rules_accepts_alerts_yml():
    result = promtool("check", "rules", "docker/prometheus/alerts.yml")

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(load_rules())} rules found" in result.stdout


def test_promtool_unit_tests_of_the_rules_pass():
    result = promtool("test", "rules", "docker/prometheus/alerts_test.yml")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    assert "FAILED" not in result.stdout + result.stderr


def test_every_alert_has_for_severity_and_annotations():
    alerts = alert_rules()

    assert len(alerts) >= 10
    for rule in alerts:
        name = rule["alert"]
        assert rule.get("for"), f"{name} has no for:"
        assert rule.get("labels", {}).get("severity") in {"critical", "warning"}, name
        annotations = rule.get("annotations", {})
        assert annotations.get("summary"), f"{name} has no summary"
        assert annotations.get("description"), f"{name} has no description"
        # Absolute once rendered: the base comes from the external label (prometheus.yml).
        path, _, anchor = annotations.get("runbook_url", "").partition("#")
        assert path == RUNBOOK_PATH, f"{name}: runbook_url {annotations.get('runbook_url')}"
        assert anchor in RUNBOOK_ANCHORS, f"{name}: unknown runbook anchor #{anchor}"
    assert {rule["annotations"]["runbook_url"].partition("#")[2] for rule in alerts} == (
        RUNBOOK_ANCHORS
    )


def test_every_runbook_anchor_is_a_heading_in_operations_md():
    if not OPERATIONS.exists():
        pytest.skip("docs/operations.md does not exist yet: the runbook anchors cannot be checked")
    anchors = heading_anchors(OPERATIONS.read_text())
    missing = sorted(
        {rule["annotations"]["runbook_url"].partition("#")[2] for rule in alert_rules()} - anchors
    )

    assert missing == [], "runbook anchors without a heading in docs/operations.md"


def test_every_alert_has_a_firing_and_a_silent_unit_test():
    tests = yaml.safe_load(ALERTS_TEST.read_text())["tests"]
    cases = [case for test in tests for case in test.get("alert_rule_test", [])]
    fires = {case["alertname"] for case in cases if case.get("exp_alerts")}
    stays_silent = {case["alertname"] for case in cases if not case.get("exp_alerts")}
    recording_tested = {case["expr"] for test in tests for case in test.get("promql_expr_test", [])}

    names = {rule["alert"] for rule in alert_rules()}
    assert names - fires == set(), "alerts without a firing case"
    assert names - stays_silent == set(), "alerts without a case that must not fire"
    assert recorded_names() <= recording_tested


def test_rules_query_only_exported_metrics():
    allowed = KNOWN_METRICS | recorded_names()
    for rule in load_rules():
        unknown = metric_names(rule["expr"]) - allowed
        assert unknown == set(), f"{rule.get('alert') or rule.get('record')} queries {unknown}"


def test_dashboard_queries_only_exported_metrics():
    allowed = KNOWN_METRICS | recorded_names()
    targets = list(dashboard_targets())

    assert len(targets) >= 20
    for title, expr in targets:
        unknown = metric_names(expr) - allowed
        assert unknown == set(), f"panel {title!r} queries {unknown}"


def test_dashboard_covers_the_key_metrics():
    queried = set().union(*(metric_names(expr) for _, expr in dashboard_targets()))

    assert {
        "django_http_responses_total_by_status_view_method_total",
        "django_http_requests_latency_seconds_by_view_method_bucket",
        "ecommerce_orders_created_total",
        "ecommerce_order_value_total",
        "ecommerce_payments_total",
        "ecommerce_payment_provider_latency_seconds_bucket",
        "ecommerce_circuit_breaker_state",
        "ecommerce_outbox_pending_messages",
        "ecommerce_celery_queue_length",
        "ecommerce_celery_task_runs_total",
        "ecommerce_cache_requests_total",
        "ecommerce_rate_limited_requests_total",
    } <= queried


def test_dashboard_queries_are_valid_promql(tmp_path):
    # promtool parses PromQL only inside rule files: each query becomes a recording rule.
    rules = [
        {"record": f"dashboard:query:{index}", "expr": expr.replace("$__rate_interval", "5m")}
        for index, (_, expr) in enumerate(dashboard_targets())
    ]
    path = tmp_path / "dashboard_queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))

    result = promtool("check", "rules", str(path))

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


def test_metric_names_ignores_functions_labels_ranges_and_grouping():
    expr = (
        'histogram_quantile(0.95, sum by (le, view) (rate(x_bucket{le="0.3", view!~"a|b"}'
        "[$__rate_interval] offset 5m))) / on (job) group_left (instance) y * 1e3 > bool 2"
    )

    assert metric_names(expr) == {"x_bucket", "y"}


def test_http_latency_histogram_has_the_slo_bucket():
    # The latency SLO's recording rules read the le="0.3" bucket; without it they go empty
    # and the burn-rate alerts can never fire. django-prometheus's default buckets lack it.
    from django_prometheus.conf import PROMETHEUS_LATENCY_BUCKETS

    assert 0.3 in PROMETHEUS_LATENCY_BUCKETS
