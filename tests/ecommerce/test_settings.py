"""Settings start-up in a clean process: embedded defaults, and one clear line when unsafe."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from django.conf import settings

pytestmark = pytest.mark.slow

POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/ecommerce"
SETUP = ["-c", "import django; django.setup()"]
CHECK = ["manage.py", "check"]
PRINT_SETTINGS = [
    "-c",
    "import json; from django.conf import settings as s; print(json.dumps({"
    "'engine': s.DATABASES['default']['ENGINE'], 'name': str(s.DATABASES['default']['NAME']), "
    "'cache': s.CACHES['default']['BACKEND'], 'eager': s.CELERY_TASK_ALWAYS_EAGER, "
    "'debug': s.DEBUG}))",
]


def run_python(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    """Run the venv's Python in the project folder with only `env` (never a .env file)."""
    clean_env = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "ecommerce.settings",
        "DJANGO_READ_DOT_ENV_FILE": "0",
        **env,
    }
    return subprocess.run(
        [sys.executable, *args],
        cwd=settings.BASE_DIR,
        env=clean_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def printed_settings(**env: str) -> dict[str, Any]:
    result = run_python(PRINT_SETTINGS, **env)
    assert result.returncode == 0, result.stderr
    printed: dict[str, Any] = json.loads(result.stdout)
    return printed


@pytest.mark.parametrize("command", [SETUP, CHECK], ids=["setup", "manage-check"])
@pytest.mark.parametrize(
    ("missing", "present"),
    [
        ("SECRET_KEY", {"ALLOWED_HOSTS": "shop.example"}),
        ("ALLOWED_HOSTS", {"SECRET_KEY": "k" * 50}),
    ],
)
def test_missing_variable_with_debug_off_stops_with_one_line(
    command: list[str], missing: str, present: dict[str, str]
) -> None:
    result = run_python(command, DEBUG="0", DATABASE_URL=POSTGRES_URL, **present)

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"ImproperlyConfigured: {missing} must be set when DEBUG is off (see .env.example).\n"
    )


def test_database_url_without_debug_means_production_and_requires_a_secret_key() -> None:
    result = run_python(SETUP, DATABASE_URL=POSTGRES_URL, ALLOWED_HOSTS="shop.example")

    assert result.returncode == 1
    assert result.stderr == (
        "ImproperlyConfigured: SECRET_KEY must be set when DEBUG is off (see .env.example).\n"
    )


def test_complete_production_environment_starts() -> None:
    result = run_python(
        CHECK,
        DEBUG="0",
        DATABASE_URL=POSTGRES_URL,
        SECRET_KEY="k" * 50,
        ALLOWED_HOSTS="shop.example",
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == "System check identified no issues (0 silenced).\n"


def test_no_environment_at_all_runs_embedded() -> None:
    assert printed_settings() == {
        "engine": "django.db.backends.sqlite3",
        "name": str(settings.BASE_DIR / "db.sqlite3"),
        "cache": "django.core.cache.backends.locmem.LocMemCache",
        "eager": True,
        "debug": True,
    }


def test_service_urls_switch_to_postgres_redis_and_real_workers() -> None:
    printed = printed_settings(
        DEBUG="1",
        DATABASE_URL=POSTGRES_URL,
        REDIS_URL="redis://127.0.0.1:6379/0",
        CELERY_BROKER_URL="redis://127.0.0.1:6379/1",
    )

    assert printed == {
        "engine": "django_prometheus.db.backends.postgresql",
        "name": "ecommerce",
        "cache": "django_redis.cache.RedisCache",
        "eager": False,
        "debug": True,
    }
