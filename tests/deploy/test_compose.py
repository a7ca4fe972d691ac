"""docker/compose.yml: parses, every service checked, settings named as in .env.example."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.helpers import ROOT, env_example_names, env_file_names
from tests.ecommerce.test_settings import CHECK, run_python

COMPOSE_DIR = ROOT / "docker"
APP_SERVICES = ("web", "worker", "worker-webhooks", "beat")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((COMPOSE_DIR / "compose.yml").read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def env_files(service: dict[str, Any]) -> list[Path]:
    entries = service.get("env_file", [])
    entries = [entries] if isinstance(entries, str | dict) else entries
    return [COMPOSE_DIR / (e["path"] if isinstance(e, dict) else e) for e in entries]


def environment_names(service: dict[str, Any]) -> list[str]:
    environment = service.get("environment", {})
    if isinstance(environment, dict):
        return list(environment)
    return [item.split("=", 1)[0] for item in environment]


def test_the_stack_has_every_process_and_backing_service(services: dict[str, Any]) -> None:
    assert set(services) >= {
        "web",
        "worker",
        "worker-webhooks",
        "beat",
        "payment-sandbox",
        "postgres",
        "redis",
        "prometheus",
        "alertmanager",
        "grafana",
        "jaeger",
    }
    assert services["payment-sandbox"]["command"] == [
        "python",
        "-m",
        "apps.payments.sandbox",
        "--host",
        "0.0.0.0",  # noqa: S104
    ]


def test_the_sandbox_listens_where_the_app_calls_it(services: dict[str, Any]) -> None:
    """No port is written twice: the sandbox binds the port of compose.env's provider URL."""
    from urllib.parse import urlsplit

    from apps.payments.sandbox import default_port

    sandbox = services["payment-sandbox"]
    settings = compose_settings()
    url = urlsplit(settings["PAYMENT_PROVIDER_URL"])
    assert url.hostname == "payment-sandbox"
    assert [path.name for path in env_files(sandbox)] == ["compose.env"]
    assert "--port" not in sandbox["command"]
    assert default_port(settings) == url.port
    assert sandbox["ports"] == [f"{url.port}:{url.port}"]
    assert "default_port(os.environ)" in sandbox["healthcheck"]["test"][-1]
    web = services["web"]
    assert web["ports"] == [f"{settings['PORT']}:{settings['PORT']}"]
    assert "os.environ.get('PORT'" in web["healthcheck"]["test"][-1]


def test_every_service_has_a_healthcheck_or_says_why_not(services: dict[str, Any]) -> None:
    for name, service in services.items():
        healthcheck = service.get("healthcheck", {})
        if healthcheck.get("disable") or not healthcheck.get("test"):
            reason = service.get("x-no-healthcheck-reason", "")
            assert isinstance(reason, str), name
            assert len(reason.split()) >= 5, f"{name}: no healthcheck and no reason"
        else:
            assert healthcheck["test"][0] in {"CMD", "CMD-SHELL"}, name
            assert "interval" in healthcheck, name


def test_depends_on_targets_exist_and_their_conditions_can_be_met(
    services: dict[str, Any],
) -> None:
    conditions = 0
    for name, service in services.items():
        depends_on = service.get("depends_on", {})
        assert isinstance(depends_on, dict), f"{name}: use the long form with a condition"
        for target, spec in depends_on.items():
            assert target in services, f"{name} depends on unknown {target}"
            condition = spec["condition"]
            conditions += 1
            if condition == "service_healthy":
                assert services[target].get("healthcheck", {}).get("test"), f"{name}->{target}"
            elif condition == "service_completed_successfully":
                assert services[target]["restart"] == "no", f"{name}->{target}"
            else:
                assert condition == "service_started", f"{name}->{target}: {condition}"
    assert conditions >= 10


def test_app_settings_use_the_names_of_env_example(services: dict[str, Any]) -> None:
    for name in APP_SERVICES:
        service = services[name]
        names: list[str] = environment_names(service)
        for path in env_files(service):
            assert path.is_file(), path
            names += env_file_names(path)
        assert names, name
        assert len(names) == len(set(names)), f"{name}: a setting is set twice"
        unknown = set(names) - env_example_names()
        assert not unknown, f"{name}: not in .env.example: {sorted(unknown)}"


def test_app_containers_run_locked_down_like_on_kubernetes(services: dict[str, Any]) -> None:
    for name in (*APP_SERVICES, "migrate", "payment-sandbox"):
        service = services[name]
        assert service["read_only"] is True, name
        assert service["tmpfs"] == ["/tmp"], name  # noqa: S108
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
    # With the root filesystem read-only, what the processes write must land in /tmp.
    assert services["web"]["environment"]["METRICS_DIR"].startswith("/tmp/")  # noqa: S108
    worker_metrics = services["worker"]["environment"]["PROMETHEUS_MULTIPROC_DIR"]
    assert worker_metrics.startswith("/tmp/")  # noqa: S108
    beat = services["beat"]["command"]
    assert beat[beat.index("--schedule") + 1].startswith("/tmp/")  # noqa: S108


def compose_settings() -> dict[str, str]:
    return dict(
        line.split("=", 1)
        for line in (COMPOSE_DIR / "compose.env").read_text().splitlines()
        if line and not line.startswith("#")
    )


def worker_queues(service: dict[str, Any]) -> list[str]:
    command = service["command"]
    return str(command[command.index("-Q") + 1]).split(",")


def test_webhook_deliveries_have_their_own_worker(services: dict[str, Any]) -> None:
    assert worker_queues(services["worker"]) == ["default", "payments", "notifications"]
    assert worker_queues(services["worker-webhooks"]) == ["webhooks"]
    webhooks = services["worker-webhooks"]
    assert webhooks["stop_grace_period"] == services["worker"]["stop_grace_period"]
    assert webhooks["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


@pytest.mark.slow
def test_the_compose_settings_pass_the_production_start_up_checks() -> None:
    """DEBUG is off in compose: its settings must not be refused (metrics token, provider,
    Redis, no proxy in front)."""
    result = run_python(CHECK, **compose_settings())

    assert result.returncode == 0, result.stderr
    assert result.stdout == "System check identified no issues (0 silenced).\n"


def test_prometheus_sends_the_metrics_token_of_the_app() -> None:
    prometheus = yaml.safe_load((COMPOSE_DIR / "prometheus" / "prometheus.yml").read_text())
    (web,) = [job for job in prometheus["scrape_configs"] if job["job_name"] == "web"]
    authorization = web["authorization"]
    mounted = authorization["credentials_file"].removeprefix("/etc/prometheus/")
    token = (COMPOSE_DIR / "prometheus" / mounted).read_text().strip()

    assert authorization["type"] == "Bearer"
    assert token == compose_settings()["METRICS_TOKEN"]
    assert len(token) >= 32


def test_web_stops_after_gunicorn_finishes_in_flight_requests(services: dict[str, Any]) -> None:
    settings = compose_settings()
    grace = services["web"]["stop_grace_period"]
    assert grace.endswith("s")
    assert int(grace[:-1]) > int(settings["GUNICORN_GRACEFUL_TIMEOUT_SECONDS"])
    # The image's HEALTHCHECK and Prometheus reach web by these host names.
    assert {"127.0.0.1", "web"} <= set(settings["ALLOWED_HOSTS"].split(","))


def test_mounted_configuration_exists_and_prometheus_finds_its_targets(
    services: dict[str, Any],
) -> None:
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (COMPOSE_DIR / source).exists(), f"{name}: {source}"
    prometheus = yaml.safe_load((COMPOSE_DIR / "prometheus" / "prometheus.yml").read_text())
    targets = {
        target
        for job in prometheus["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    }
    assert "web:8080" in targets
    assert prometheus["rule_files"]
    alertmanagers = prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert [target.split(":")[0] for target in alertmanagers] == ["alertmanager"]
    alertmanager = yaml.safe_load((COMPOSE_DIR / "alertmanager" / "alertmanager.yml").read_text())
    receivers = {receiver["name"] for receiver in alertmanager["receivers"]}
    assert alertmanager["route"]["receiver"] in receivers


# What docker-compose 1.29 (the last 1.x) accepts: its compose/config/compose_spec.json.
# Anything else there is refused ("Additional properties are not allowed", or "'name' does
# not match any of the regexes: '^x-'"), so the file stays inside it and works with both
# `docker compose` (v2) and `docker-compose` 1.29.
COMPOSE_1_TOP_LEVEL = {"version", "services", "networks", "volumes", "secrets", "configs"}
COMPOSE_1_SERVICE = {
    "deploy", "build", "blkio_config", "cap_add", "cap_drop", "cgroup_parent", "command",
    "configs", "container_name", "cpu_count", "cpu_percent", "cpu_shares", "cpu_quota",
    "cpu_period", "cpu_rt_period", "cpu_rt_runtime", "cpus", "cpuset", "credential_spec",
    "depends_on", "device_cgroup_rules", "devices", "dns", "dns_opt", "dns_search",
    "domainname", "entrypoint", "env_file", "environment", "expose", "extends",
    "external_links", "extra_hosts", "group_add", "healthcheck", "hostname", "image", "init",
    "ipc", "isolation", "labels", "links", "logging", "mac_address", "mem_limit",
    "mem_reservation", "mem_swappiness", "memswap_limit", "network_mode", "networks",
    "oom_kill_disable", "oom_score_adj", "pid", "pids_limit", "platform", "ports",
    "privileged", "profiles", "pull_policy", "read_only", "restart", "runtime", "scale",
    "security_opt", "shm_size", "secrets", "sysctls", "stdin_open", "stop_grace_period",
    "stop_signal", "storage_opt", "tmpfs", "tty", "ulimits", "user", "userns_mode", "volumes",
    "volumes_from", "working_dir",
}  # fmt: skip
COMPOSE_1_BUILD = {
    "context", "dockerfile", "args", "labels", "cache_from", "network", "target", "shm_size",
    "extra_hosts", "isolation",
}  # fmt: skip
COMPOSE_1_HEALTHCHECK = {"disable", "interval", "retries", "test", "timeout", "start_period"}
COMPOSE_1_CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}


def unknown_keys(mapping: dict[str, Any], allowed: set[str]) -> set[str]:
    return {key for key in mapping if key not in allowed and not key.startswith("x-")}


def test_compose_files_use_only_what_docker_compose_1_29_accepts() -> None:
    files = sorted(COMPOSE_DIR.glob("compose*.y*ml"))
    assert COMPOSE_DIR / "compose.yml" in files
    for path in files:
        document = yaml.safe_load(path.read_text())
        # No `name` (1.x refuses it: the project name is `-p ecommerce`) and no `version`
        # (Compose v2 warns it is obsolete; 1.27+ reads a file without it as the spec).
        assert not unknown_keys(document, COMPOSE_1_TOP_LEVEL - {"version"}), path.name
        for name, service in document.get("services", {}).items():
            where = f"{path.name}: {name}"
            assert not unknown_keys(service, COMPOSE_1_SERVICE), where
            build = service.get("build", {})
            assert isinstance(build, str) or not unknown_keys(build, COMPOSE_1_BUILD), where
            healthcheck = service.get("healthcheck", {})
            assert not unknown_keys(healthcheck, COMPOSE_1_HEALTHCHECK), where
            for spec in service.get("depends_on", {}).values():
                # Only `condition` (1.x refuses v2's `required` and `restart`).
                assert set(spec) == {"condition"}, where
                assert spec["condition"] in COMPOSE_1_CONDITIONS, where
            # 1.x takes env_file as a string or a list of strings (no `path`/`required`).
            env_file = service.get("env_file", [])
            entries = [env_file] if isinstance(env_file, str) else env_file
            assert all(isinstance(entry, str) for entry in entries), where


def test_the_docs_start_compose_with_its_project_name() -> None:
    """Without `name:` in the file, -p keeps containers and volumes under `ecommerce`."""
    command = "compose -p ecommerce -f docker/compose.yml up --build"
    for path in (ROOT / "README.md", ROOT / "docs" / "operations.md"):
        text = path.read_text()
        assert command in text, path.name
        assert "compose -f docker/compose.yml" not in text, path.name
    assert "docker-compose 1.29" in (ROOT / "README.md").read_text()
