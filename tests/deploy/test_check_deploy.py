"""`manage.py check --deploy` is clean with the production settings shipped in deploy/.

The settings are the ConfigMap's (plain manifests and the rendered chart), plus the Secret's
keys with generated values, exactly as a pod receives them through envFrom.
"""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from tests.deploy.checks import config_map
from tests.deploy.helpers import ROOT, Render, yaml_documents
from tests.ecommerce.test_settings import POSTGRES_URL, run_python

pytestmark = pytest.mark.slow

CHECK_DEPLOY = ["manage.py", "check", "--deploy", "--fail-level", "WARNING"]
CLEAN = "System check identified no issues (0 silenced).\n"


def secret_values() -> dict[str, str]:
    """What the Secret ecommerce-secrets holds, freshly generated (secret.example.yaml keys)."""
    return {
        "SECRET_KEY": secrets.token_urlsafe(50),
        "JWT_SIGNING_KEY": secrets.token_urlsafe(50),
        "DATABASE_URL": POSTGRES_URL,
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/1",
        "EMAIL_URL": "smtp+tls://shop:password@smtp.example.com:587",
        "METRICS_TOKEN": secrets.token_urlsafe(32),
    }


def plain_manifests_config() -> dict[str, str]:
    objects = yaml_documents((ROOT / "deploy" / "k8s" / "configmap.yaml").read_text())
    return dict(config_map(objects)["data"])


def assert_deploy_check_is_clean(config: dict[str, Any]) -> None:
    result = run_python(CHECK_DEPLOY, **config, **secret_values())

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout == CLEAN


def test_the_kubernetes_manifests_pass_check_deploy() -> None:
    assert_deploy_check_is_clean(plain_manifests_config())


def test_the_helm_chart_passes_check_deploy(render: Render) -> None:
    assert_deploy_check_is_clean(config_map(render())["data"])


def test_without_the_shipped_security_settings_check_deploy_complains() -> None:
    """The check is not vacuous: drop what deploy/ sets and Django names each gap."""
    config = plain_manifests_config()
    for name in ("SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SESSION_COOKIE_SECURE"):
        del config[name]
    config["DEBUG"] = "false"
    result = run_python(CHECK_DEPLOY, **config, **secret_values(), SESSION_COOKIE_SECURE="false")

    assert result.returncode == 1
    for check_id in ("security.W004", "security.W008"):
        assert check_id in result.stderr
    # The insecure session cookie: W010 (the sessions app) now that the session middleware
    # is the admin-only subclass (ecommerce/middleware.py) Django does not know by name;
    # W012 when it is Django's own.
    assert "security.W010" in result.stderr or "security.W012" in result.stderr
