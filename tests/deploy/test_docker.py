"""docker/Dockerfile and .dockerignore: hadolint-clean, multi-stage, non-root, checked health."""

from __future__ import annotations

import re
import subprocess

from tests.deploy.helpers import ROOT, tool

DOCKERFILE = ROOT / "docker" / "Dockerfile"


def test_hadolint_finds_nothing_at_any_severity() -> None:
    result = subprocess.run(
        [tool("hadolint"), "--no-color", "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
        check=False,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_image_is_multi_stage_non_root_compiled_and_health_checked() -> None:
    text = DOCKERFILE.read_text()
    instructions = re.findall(r"^([A-Z]+)\s+(.*)$", text, re.MULTILINE)
    stages = [args for name, args in instructions if name == "FROM"]
    assert len(stages) >= 2
    # The final stage runs as the uid the manifests' runAsUser expects, never root.
    users = [args for name, args in instructions if name == "USER"]
    assert users[-1] == "10001:10001"
    assert "compileall" in text
    assert "COPY --from=build /venv /venv" in text
    healthcheck = next(args for name, args in instructions if name == "HEALTHCHECK")
    assert "--interval" in healthcheck
    assert "/health/live" in text


def test_build_context_leaves_out_local_state_and_keeps_the_app() -> None:
    patterns = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", ".env", "*.sqlite3", "tests"} <= patterns
    needed = {"apps", "ecommerce", "templates", "requirements", "manage.py"}
    assert not needed & patterns
    for name in needed:
        assert (ROOT / name).exists(), name
