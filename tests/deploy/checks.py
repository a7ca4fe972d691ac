"""Assertions shared by the plain manifests and the rendered Helm chart (the same objects)."""

from __future__ import annotations

import ipaddress
from typing import Any

from django.conf import settings

from tests.deploy.helpers import (
    WORKLOAD_KINDS,
    by_kind,
    component,
    containers,
    env_example_names,
    env_from_names,
    main_container,
    pod_spec,
    selects,
    workload,
)

Objects = list[dict[str, Any]]
# The one writable path inside the containers (a mount path there, not a file made here).
WRITABLE_PATH = "/tmp"  # noqa: S108


def config_map(objects: Objects) -> dict[str, Any]:
    (found,) = by_kind(objects, "ConfigMap")
    return found


def assert_settings_names_documented(objects: Objects) -> None:
    """Every ConfigMap and Secret key, and every container env, is a setting documented in
    .env.example."""
    for obj in [*by_kind(objects, "ConfigMap"), *by_kind(objects, "Secret")]:
        keys = set(obj.get("data", {})) | set(obj.get("stringData", {}))
        unknown = keys - env_example_names()
        assert not unknown, f"{obj['kind']}/{obj['metadata']['name']}: {sorted(unknown)}"
    for obj in objects:
        if obj["kind"] in WORKLOAD_KINDS:
            for container in containers(obj):
                names = {variable["name"] for variable in container.get("env", [])}
                unknown = names - env_example_names()
                assert not unknown, f"{obj['metadata']['name']}/{container['name']}: {unknown}"


def assert_env_from_resolves(objects: Objects, secret_name: str) -> None:
    config_maps = {obj["metadata"]["name"] for obj in by_kind(objects, "ConfigMap")}
    refs = list(env_from_names(objects))
    assert refs
    for name, ref, target in refs:
        expected = config_maps if ref == "configMapRef" else {secret_name}
        assert target in expected, f"{name}: {ref} {target} is not one of {sorted(expected)}"


def assert_beat_is_a_singleton(objects: Objects) -> None:
    beat = workload(objects, "beat")
    assert beat["kind"] == "Deployment"
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
    beat_name = beat["metadata"]["name"]
    beat_labels = beat["spec"]["template"]["metadata"]["labels"]
    for hpa in by_kind(objects, "HorizontalPodAutoscaler"):
        assert hpa["spec"]["scaleTargetRef"]["name"] != beat_name
    for pdb in by_kind(objects, "PodDisruptionBudget"):
        assert not selects(pdb["spec"]["selector"]["matchLabels"], beat_labels)


def assert_web_probes_and_shutdown(objects: Objects) -> None:
    """Probes on /health/live and /health/ready; preStop drain; grace above gunicorn's."""
    web = workload(objects, "web")
    container = main_container(web)
    paths = {
        probe: container[probe]["httpGet"]["path"]
        for probe in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    assert paths == {
        "startupProbe": "/health/live",
        "livenessProbe": "/health/live",
        "readinessProbe": "/health/ready",
    }
    data = config_map(objects)["data"]
    allowed_hosts = data["ALLOWED_HOSTS"].split(",")
    for probe in paths:
        http_get = container[probe]["httpGet"]
        assert http_get["port"] in {port["name"] for port in container["ports"]}
        # The kubelet's default Host is the pod IP, which Django would refuse (400).
        headers = {header["name"]: header["value"] for header in http_get["httpHeaders"]}
        assert headers["Host"] in allowed_hosts
    assert container["ports"][0]["containerPort"] == int(data["PORT"])
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    grace = pod_spec(web)["terminationGracePeriodSeconds"]
    assert grace > int(command[1]) + int(data["GUNICORN_GRACEFUL_TIMEOUT_SECONDS"])


WORKERS = ("worker", "worker-webhooks")


def assert_worker_outlives_its_longest_task(objects: Objects) -> None:
    for name in WORKERS:
        worker = workload(objects, name)
        grace = pod_spec(worker)["terminationGracePeriodSeconds"]
        assert grace > settings.CELERY_TASK_TIME_LIMIT, name
        assert main_container(worker)["livenessProbe"]["exec"]["command"], name


def queues(objects: Objects, name: str) -> list[str]:
    command = main_container(workload(objects, name))["command"]
    return str(command[command.index("-Q") + 1]).split(",")


def assert_webhooks_have_their_own_workers(objects: Objects) -> None:
    """Webhook deliveries run in their own pool, scaled and drained like the main workers,
    so that a slow receiver cannot hold up a charge."""
    assert queues(objects, "worker") == ["default", "payments", "notifications"]
    assert queues(objects, "worker-webhooks") == ["webhooks"]
    main, webhooks = workload(objects, "worker"), workload(objects, "worker-webhooks")
    for kind in ("HorizontalPodAutoscaler", "PodDisruptionBudget"):
        components = {component(obj) for obj in by_kind(objects, kind)}
        assert ("worker" in components) == ("worker-webhooks" in components), kind
    assert main_container(webhooks)["envFrom"] == main_container(main)["envFrom"]
    assert pod_spec(webhooks).get("initContainers") == pod_spec(main).get("initContainers")


def assert_client_addresses_are_believed_from_the_ingress(objects: Objects) -> None:
    """Behind the ingress the pods see its address: trusted proxies must be configured, and
    the proxy flags must agree (start-up refuses BEHIND_PROXY without them)."""
    data = config_map(objects)["data"]
    assert data["BEHIND_PROXY"] == "true"
    cidrs = data["TRUSTED_PROXY_CIDRS"].split(",")
    assert cidrs
    for cidr in cidrs:
        network = ipaddress.ip_network(cidr)
        assert network.is_private, cidr  # the cluster's networks, never the internet
    assert "TRUSTED_PROXY_COUNT" not in data


def assert_locked_down(objects: Objects) -> None:
    """Non-root, read-only root filesystem, no privilege escalation or capabilities, /tmp
    an emptyDir, requests and limits: for every container of every workload."""
    workloads = [obj for obj in objects if obj["kind"] in WORKLOAD_KINDS]
    assert {obj["metadata"]["labels"]["app.kubernetes.io/component"] for obj in workloads} == {
        "web",
        "worker",
        "worker-webhooks",
        "beat",
        "migrate",
    }
    for obj in workloads:
        spec = pod_spec(obj)
        pod_context = spec.get("securityContext", {})
        assert spec["automountServiceAccountToken"] is False
        assert pod_context["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod_context["runAsUser"] != 0
        empty_dirs = {v["name"] for v in spec.get("volumes", []) if "emptyDir" in v}
        for container in containers(obj):
            where = f"{obj['metadata']['name']}/{container['name']}"
            context = container["securityContext"]
            assert context.get("runAsNonRoot", pod_context.get("runAsNonRoot")) is True, where
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["capabilities"]["drop"] == ["ALL"], where
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            assert mounts.get(WRITABLE_PATH) in empty_dirs, where
            resources = container["resources"]
            assert set(resources) == {"requests", "limits"}, where
            assert set(resources["requests"]) == set(resources["limits"]) == {"cpu", "memory"}


def assert_writes_go_to_tmp(objects: Objects) -> None:
    """What the processes write lands in /tmp: gunicorn's metrics files default to var/ in the
    read-only app directory, Celery's to none, beat's schedule to the working directory."""

    def env(name: str) -> dict[str, str]:
        container = main_container(workload(objects, name))
        return {
            variable["name"]: variable["value"]
            for variable in container.get("env", [])
            if "value" in variable  # not valueFrom (POD_IP)
        }

    assert env("web")["METRICS_DIR"].startswith(f"{WRITABLE_PATH}/")
    for name in WORKERS:
        assert env(name)["PROMETHEUS_MULTIPROC_DIR"].startswith(f"{WRITABLE_PATH}/")
    command = main_container(workload(objects, "beat"))["command"]
    assert command[command.index("--schedule") + 1].startswith(f"{WRITABLE_PATH}/")


def assert_references_resolve(objects: Objects) -> None:
    """HPAs, PDBs, the Service and the Ingress point at objects that exist."""
    deployments = {obj["metadata"]["name"]: obj for obj in by_kind(objects, "Deployment")}
    scaled = {
        hpa["spec"]["scaleTargetRef"]["name"] for hpa in by_kind(objects, "HorizontalPodAutoscaler")
    }
    assert scaled <= set(deployments)
    assert {component(deployments[name]) for name in scaled} <= {"web", *WORKERS}
    for name in scaled:
        # An apply must not reset what the autoscaler decided.
        assert "replicas" not in deployments[name]["spec"], name
    pod_labels = [d["spec"]["template"]["metadata"]["labels"] for d in deployments.values()]
    for pdb in by_kind(objects, "PodDisruptionBudget"):
        selector = pdb["spec"]["selector"]["matchLabels"]
        assert sum(selects(selector, labels) for labels in pod_labels) == 1, pdb["metadata"]
    services = {obj["metadata"]["name"]: obj for obj in by_kind(objects, "Service")}
    web_labels = workload(objects, "web")["spec"]["template"]["metadata"]["labels"]
    for service in services.values():
        assert selects(service["spec"]["selector"], web_labels)
    for ingress in by_kind(objects, "Ingress"):
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                assert backend["name"] in services
                ports = {p["name"] for p in services[backend["name"]]["spec"]["ports"]}
                assert backend["port"]["name"] in ports
