"""The API contract, machine-checked: schemathesis against a live gunicorn.

Every check, over the whole OpenAPI schema: every phase (examples, coverage, fuzzing,
stateful) as an admin, who reaches every operation's validation; examples, fuzzing and the
stateful chains as a customer (the coverage phase's boundary and negative inputs, five
thousand cases, would meet the same validation again); every phase as an anonymous client
over the operations the schema opens to one (that every other operation refuses one with
a 401 problem is proven for each of them in tests/contract/test_anonymous.py). The run
must find nothing; its closing figures are printed so they can be quoted. The
per-operation relaxations (and why) are in schemathesis.toml beside this file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.contract.conftest import Shop, live_schema, open_operations

CONFIG = Path(__file__).with_name("schemathesis.toml")
# `python -m schemathesis.cli` with a CPython 3.11 parser race kept out (see the module).
CLI = Path(__file__).with_name("schemathesis_cli.py")
# Lines of schemathesis' output that name a finding: the operation, the check, the repro.
FINDINGS = ("____", "- ST", "    curl ", "[4", "[5", "    `{")
ROLES = ("anonymous", "customer", "admin")
ALL_PHASES = ("examples", "coverage", "fuzzing", "stateful")
PHASES = {"customer": ("examples", "fuzzing", "stateful")}
# Cases per operation in the examples, fuzzing and stateful phases (the coverage phase
# is deterministic and complete); generation is deterministic (schemathesis.toml).
MAX_EXAMPLES = int(os.environ.get("CONTRACT_MAX_EXAMPLES", "10"))


def start_schemathesis(
    shop: Shop, role: str, report_dir: Path, *, operations: list[str] | None = None
) -> subprocess.Popen[str]:
    """`schemathesis run` as `role` (on `operations` only, when given: "METHOD /path"),
    writing its JSON report into `report_dir`."""
    command = [sys.executable, str(CLI), "--config-file", str(CONFIG)]
    command += ["--no-color", "run", f"{shop.url}/api/schema"]
    for name in operations or ():
        command += ["--include-name", name]
    command += ["--checks", "all", "--phases", ",".join(PHASES.get(role, ALL_PHASES))]
    command += ["--max-examples", str(MAX_EXAMPLES), "--workers", "2"]
    command += ["--report", "json", "--report-dir", str(report_dir)]
    if role in shop.tokens:
        command += ["--header", f"Authorization: Bearer {shop.tokens[role]}"]
    # Run in the report directory: schemathesis keeps its cache in the working directory.
    report_dir.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        command, cwd=report_dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def report_of(process: subprocess.Popen[str], report_dir: Path) -> dict[str, Any]:
    output, _ = process.communicate(timeout=800)
    reports = sorted(report_dir.glob("json-*.json"))
    assert reports, f"schemathesis wrote no report:\n{output[-3000:]}"
    report: dict[str, Any] = json.loads(reports[-1].read_text())
    # No running time: it stopped before testing anything (the schema did not load).
    assert report["running_time"] is not None, f"schemathesis did not run:\n{output[-3000:]}"
    report["output"] = output
    return report


def details(output: str) -> list[str]:
    """Schemathesis' own account of what it found: its ERRORS and FAILURES sections (an
    error names no check, only the exception and the request that raised it)."""
    lines = output.splitlines()
    start = next(
        (i for i, line in enumerate(lines) if line.strip("= ") in ("ERRORS", "FAILURES")), None
    )
    return [] if start is None else lines[start : start + 80]


def summary(role: str, report: dict[str, Any]) -> str:
    cases = report["test_cases"]
    failures = ", ".join(
        f"{failure['code']} {failure['title']}: {failure['count']}"
        for failure in report["failures"]
    )
    return (
        f"{role:<9} operations {report['operations']['tested']}/"
        f"{report['operations']['total']}, cases {cases['generated']}, "
        f"failures {sum(f['count'] for f in report['failures'])}"
        f"{f' ({failures})' if failures else ''}, errors {len(report['errors'])}, "
        f"{report['running_time']:.0f} s"
    )


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_schemathesis_finds_no_contract_violation(live_shop: Shop, tmp_path: Path) -> None:
    anonymous = open_operations(live_schema(live_shop))
    assert len(anonymous) >= 20, anonymous  # the catalog, carts, registration, tokens
    # The three callers at once.
    runs = {
        role: start_schemathesis(
            live_shop,
            role,
            tmp_path / role,
            operations=anonymous if role not in live_shop.tokens else None,
        )
        for role in ROLES
    }
    reports = {role: report_of(process, tmp_path / role) for role, process in runs.items()}

    lines = [summary(role, report) for role, report in reports.items()]
    print(f"\nschemathesis: all checks, {MAX_EXAMPLES} examples per operation")
    print("\n".join(lines))
    found = {
        role: [line for line in report["output"].splitlines() if line.startswith(FINDINGS)]
        + details(report["output"])
        for role, report in reports.items()
        if report["failures"] or report["errors"]
    }
    for role, report in reports.items():
        assert report["complete"] is True, f"{role}: {report['stop_reason']}"
        # The report lists every phase, those the run was not asked for too.
        assert set(PHASES.get(role, ALL_PHASES)) <= set(report["phases"]), role
        selected = len(anonymous) if role not in live_shop.tokens else report["operations"]["total"]
        assert report["operations"]["tested"] == selected, role
    assert not found, "\n".join(
        f"{role}:\n" + "\n".join(lines) + "\n" + json.dumps(reports[role]["errors"])[:3000]
        for role, lines in found.items()
    )
