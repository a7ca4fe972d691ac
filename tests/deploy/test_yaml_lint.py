"""yamllint over the deployment YAML: duplicate keys, bad indentation, stray syntax."""

from __future__ import annotations

import subprocess

from tests.deploy.helpers import ROOT, tool


def test_yamllint_is_clean() -> None:
    # PyYAML keeps the last of two equal keys without a word; yamllint refuses them.
    result = subprocess.run(
        [tool("yamllint"), "--strict", "--format", "parsable", ".github", "docker", "deploy"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert (result.returncode, result.stdout) == (0, "")
