"""Fixtures of the deployment tests: the Helm SDK and the chart, loaded once per session."""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from tests.deploy.helpers import CHART_PATH, NAMESPACE, RELEASE, Render, yaml_documents


@pytest.fixture(scope="session")
def helm() -> ModuleType:
    """helm-python-sdk: Helm's Go SDK through ctypes, no helm binary and no cluster."""
    import helm_python

    return helm_python


@pytest.fixture(scope="session")
def chart(helm: ModuleType) -> Iterator[Any]:
    with helm.Chart.load(CHART_PATH) as loaded:
        yield loaded


@pytest.fixture(scope="session")
def render(chart: Any) -> Render:
    """Render the chart with value overrides into its objects; each distinct set once."""
    rendered: dict[str, list[dict[str, Any]]] = {}

    def render(values: dict[str, Any] | None = None, *, revision: int = 1) -> list[dict[str, Any]]:
        key = json.dumps([values, revision], sort_keys=True)
        if key not in rendered:
            manifests = chart.render(
                values or {}, name=RELEASE, namespace=NAMESPACE, revision=revision
            )
            rendered[key] = [
                obj
                for path, text in sorted(manifests.items())
                if not path.endswith("NOTES.txt")
                for obj in yaml_documents(text)
            ]
        return rendered[key]

    return render
