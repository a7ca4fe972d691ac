"""Reading the deployment files: .env.example names, YAML documents, Kubernetes validation."""

from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from kubernetes_validate import utils as kubernetes_validate

ROOT = Path(__file__).resolve().parents[2]
CHART_PATH = ROOT / "deploy" / "helm" / "ecommerce"
# Release name and namespace the chart is rendered with.
RELEASE = "shop"
NAMESPACE = "shop"
# One recent Kubernetes release; kubernetes-validate 1.37.0 ships schemas for 1.25 to 1.37.
KUBERNETES_VERSION = "1.34"
# Kinds that carry a pod template.
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}

# The `render` fixture: chart values in, rendered objects out.
Render = Callable[..., list[dict[str, Any]]]

_ENV_LINE = re.compile(r"^([A-Z][A-Z0-9_]*)=", re.MULTILINE)


# prometheus_client's own variable, one directory per process group: the deployments set it
# per container (like the Procfile does per process), and a shared .env must not, so
# .env.example mentions it in a comment instead of a `NAME=` line.
# POD_IP likewise: Kubernetes fills it in from the downward API.
PER_PROCESS_VARIABLES = frozenset({"PROMETHEUS_MULTIPROC_DIR", "POD_IP"})


@cache
def env_example_names() -> frozenset[str]:
    """Every variable `.env.example` documents: a `NAME=` line, or for a per-process
    variable, a mention."""
    text = (ROOT / ".env.example").read_text()
    mentioned = {name for name in PER_PROCESS_VARIABLES if name in text}
    return frozenset(_ENV_LINE.findall(text)) | mentioned


def env_file_names(path: Path) -> list[str]:
    """The variable names of a .env-style file, in order, duplicates kept."""
    return _ENV_LINE.findall(path.read_text())


def yaml_documents(text: str) -> list[dict[str, Any]]:
    """The non-empty documents of a YAML stream."""
    return [doc for doc in yaml.safe_load_all(text) if doc]


def validate_kubernetes(obj: dict[str, Any]) -> None:
    """Validate one object against the Kubernetes schema, unknown fields refused."""
    where = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = ".".join(str(part) for part in exc.path)
        raise AssertionError(f"{where}: {path}: {exc.message}") from None
    except kubernetes_validate.SchemaNotFoundError as exc:
        raise AssertionError(f"{where}: {exc.message}") from None


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"]["template"]["spec"]


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """Init containers and containers of a workload's pod template."""
    spec = pod_spec(obj)
    return [*spec.get("initContainers", []), *spec["containers"]]


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [obj for obj in objects if obj["kind"] == kind]


def component(obj: dict[str, Any]) -> str | None:
    return obj["metadata"].get("labels", {}).get("app.kubernetes.io/component")


def workload(objects: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """The workload of a component (web, worker, beat, migrate)."""
    found = [obj for obj in objects if obj["kind"] in WORKLOAD_KINDS and component(obj) == name]
    assert len(found) == 1, f"expected one {name} workload, found {len(found)}"
    return found[0]


def main_container(obj: dict[str, Any]) -> dict[str, Any]:
    return pod_spec(obj)["containers"][0]


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def env_from_names(objects: list[dict[str, Any]]) -> Iterator[tuple[str, str, str]]:
    """(workload, "configMapRef" or "secretRef", name) for every envFrom of every container."""
    for obj in objects:
        if obj["kind"] not in WORKLOAD_KINDS:
            continue
        for container in containers(obj):
            for source in container.get("envFrom", []):
                for ref in ("configMapRef", "secretRef"):
                    if ref in source:
                        yield obj["metadata"]["name"], ref, source[ref]["name"]


def tool(name: str) -> str:
    """A command installed into this virtualenv (requirements/dev.txt), else from PATH."""
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    assert found, f"{name} is not installed: pip install -r requirements/dev.txt"
    return found
