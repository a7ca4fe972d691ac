"""docs/operations.md: every alert has its section, and every link to one lands."""

from __future__ import annotations

import re

import pytest

from tests.deploy.helpers import ROOT

OPERATIONS = ROOT / "docs" / "operations.md"
ALERT_ANCHORS = [
    "alert-high-5xx-ratio",
    "alert-latency-slo-burn",
    "alert-payment-failure-ratio",
    "alert-circuit-breaker-open",
    "alert-outbox-backlog",
    "alert-celery-backlog",
    "alert-celery-no-worker",
    "alert-database-down",
    "alert-redis-down",
    "alert-rate-limited-surge",
]


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to dashes."""
    kept = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return kept.replace(" ", "-")


def anchors() -> set[str]:
    headings = re.findall(r"^#{1,6} (.+)$", OPERATIONS.read_text(), re.MULTILINE)
    return {github_slug(heading) for heading in headings}


def test_github_slug_matches_githubs_rules() -> None:
    assert github_slug("Alert: rate-limited surge") == "alert-rate-limited-surge"
    assert github_slug("Alert: latency SLO burn") == "alert-latency-slo-burn"


@pytest.mark.parametrize("anchor", ALERT_ANCHORS)
def test_every_alert_has_a_section_with_its_anchor(anchor: str) -> None:
    assert anchor in anchors()
    text = OPERATIONS.read_text()
    heading = next(
        line
        for line in text.splitlines()
        if line.startswith("#") and github_slug(line.lstrip("#")) == anchor
    )
    section = text.split(heading, 1)[1].split("\n### ", 1)[0]
    assert "**Means" in section
    assert "**Do:**" in section


def test_runbook_sections_and_links_land() -> None:
    found = anchors()
    assert {"deploy", "migrate", "scale-web-and-workers", "rotate-secrets", "drain-a-node"} <= found
    for target in re.findall(r"\]\(#([^)]+)\)", OPERATIONS.read_text()):
        assert target in found, target


def test_alert_rules_link_to_existing_sections() -> None:
    """Whatever rule files exist: every runbook_url into operations.md names a real anchor."""
    links = [
        match
        for path in (ROOT / "docker" / "prometheus").rglob("*.yml")
        for match in re.findall(r"operations\.md#([\w-]+)", path.read_text())
    ]
    assert set(links) <= anchors()


def test_readme_links_the_runbook() -> None:
    readme = (ROOT / "README.md").read_text()
    operations = readme.split("## Operations", 1)[1].split("\n## ", 1)[0]
    assert "(docs/operations.md)" in operations
