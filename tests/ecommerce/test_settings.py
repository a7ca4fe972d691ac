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


# Everything production needs besides SECRET_KEY and ALLOWED_HOSTS.
PRODUCTION = {
    "DEBUG": "0",
    "DATABASE_URL": POSTGRES_URL,
    "SECRET_KEY": "k" * 50,
    "ALLOWED_HOSTS": "shop.example",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "PAYMENT_PROVIDER_URL": "https://payments.example.com",
    "METRICS_TOKEN": "m" * 40,
}
REFUSED = {
    "METRICS_TOKEN": (
        "ImproperlyConfigured: METRICS_TOKEN must be set when DEBUG is off: /metrics and "
        "/traces would be open to anyone (set METRICS_PUBLIC=true only if the network keeps "
        "them private)."
    ),
    "PAYMENT_PROVIDER_URL": (
        "ImproperlyConfigured: PAYMENT_PROVIDER_URL must be set when DEBUG is off: without it "
        "payments go to the in-process sandbox and no money moves (set "
        "ALLOW_IN_PROCESS_PAYMENT_SANDBOX=true if that is meant)."
    ),
    "REDIS_URL": (
        "ImproperlyConfigured: REDIS_URL must be set when DEBUG is off: without it locks, "
        "circuit breakers and rate limits are per process (set ALLOW_LOCAL_STATE=true if "
        "that is meant)."
    ),
}
OPT_INS = {
    "METRICS_TOKEN": "METRICS_PUBLIC",
    "PAYMENT_PROVIDER_URL": "ALLOW_IN_PROCESS_PAYMENT_SANDBOX",
    "REDIS_URL": "ALLOW_LOCAL_STATE",
}
CLEAN = "System check identified no issues (0 silenced).\n"


def without(*names: str, **extra: str) -> dict[str, str]:
    return {**{k: v for k, v in PRODUCTION.items() if k not in names}, **extra}


def env_example_value(name: str) -> str:
    (line,) = [
        line
        for line in (settings.BASE_DIR / ".env.example").read_text().splitlines()
        if line.startswith(f"{name}=")
    ]
    return line.split("=", 1)[1]


def test_complete_production_environment_starts() -> None:
    result = run_python(CHECK, **PRODUCTION)

    assert result.returncode == 0, result.stderr
    assert result.stdout == CLEAN


def test_production_refuses_every_embedded_stand_in_at_once() -> None:
    """No Redis, no provider, no metrics token: each one line, and nothing starts."""
    result = run_python(CHECK, **without(*REFUSED))

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        REFUSED["METRICS_TOKEN"],
        REFUSED["PAYMENT_PROVIDER_URL"],
        REFUSED["REDIS_URL"],
    ]


def test_a_stand_in_is_started_when_a_setting_says_it_is_meant() -> None:
    opted_in = {OPT_INS[name]: "true" for name in REFUSED}
    result = run_python(CHECK, **without(*REFUSED, **opted_in))

    assert result.returncode == 0, result.stderr
    assert result.stdout == CLEAN


def test_gunicorn_refuses_to_boot_a_stand_in_too() -> None:
    """The refusal is in the settings, so every process refuses, not only manage.py check."""
    result = run_python(
        ["-m", "gunicorn", "--check-config", "ecommerce.wsgi"], **without("REDIS_URL")
    )

    assert result.returncode != 0
    assert REFUSED["REDIS_URL"] in result.stderr


def test_the_placeholder_secrets_of_env_example_are_refused() -> None:
    """Each refusal on its own is covered fast in test_startup_checks.py; this is the real
    start-up, with the values of .env.example itself."""
    secrets = {name: env_example_value(name) for name in ("SECRET_KEY", "JWT_SIGNING_KEY")}
    assert all("replace-me" in value for value in secrets.values())

    result = run_python(CHECK, **without(**secrets))

    assert result.returncode == 1
    assert [line.split(" is ")[0] for line in result.stderr.splitlines()] == [
        "ImproperlyConfigured: SECRET_KEY",
        "ImproperlyConfigured: JWT_SIGNING_KEY",
    ]
    assert result.stderr.splitlines()[0].endswith(
        "is the placeholder from the examples; generate a real one "
        "(python -c 'import secrets; print(secrets.token_urlsafe(50))')."
    )


def test_behind_a_proxy_start_up_requires_trusted_proxies() -> None:
    refused = run_python(CHECK, **without(BEHIND_PROXY="true"))
    trusted = run_python(CHECK, **without(BEHIND_PROXY="true", TRUSTED_PROXY_CIDRS="10.0.0.0/8"))

    assert refused.returncode == 1
    assert refused.stderr == (
        "ImproperlyConfigured: BEHIND_PROXY says a proxy stands in front, but neither "
        "TRUSTED_PROXY_CIDRS nor TRUSTED_PROXY_COUNT is set: every client would have the "
        "proxy's address, and one client's failed logins would lock everyone out.\n"
    )
    assert (trusted.returncode, trusted.stdout) == (0, CLEAN), trusted.stderr


def test_debug_refuses_nothing() -> None:
    result = run_python(
        CHECK,
        DEBUG="1",
        DATABASE_URL=POSTGRES_URL,
        SECRET_KEY=env_example_value("SECRET_KEY"),
        BEHIND_PROXY="true",
    )

    assert result.returncode == 0, result.stderr


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
        "engine": "ecommerce.db.backends.postgresql",
        "name": "ecommerce",
        "cache": "django_redis.cache.RedisCache",
        "eager": False,
        "debug": True,
    }


def test_metrics_off_leaves_the_plain_backend_and_no_request_metrics() -> None:
    result = run_python(
        [
            "-c",
            "import json; from django.conf import settings as s; print(json.dumps({"
            "'engine': s.DATABASES['default']['ENGINE'],"
            " 'metrics': [m for m in s.MIDDLEWARE if 'Metrics' in m]}))",
        ],
        DEBUG="1",
        DATABASE_URL=POSTGRES_URL,
        METRICS_ENABLED="0",
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"engine": "django.db.backends.postgresql", "metrics": []}


DATABASE_OPTIONS = [
    "-c",
    "from django.conf import settings as s; print(s.DATABASES['default']['OPTIONS']['options'])",
]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "-c jit=off"),
        ({"DATABASE_JIT": "true"}, ""),
        ({"PGOPTIONS": "-c lock_timeout=300"}, "-c lock_timeout=300 -c jit=off"),
        (
            {"PGOPTIONS": "-c lock_timeout=300", "DATABASE_STATEMENT_TIMEOUT_SECONDS": "2"},
            "-c lock_timeout=300 -c statement_timeout=2000 -c jit=off",
        ),
    ],
    ids=["jit-off", "jit-asked-for", "pgoptions-kept", "pgoptions-and-timeout"],
)
def test_connection_options_keep_pgoptions_and_turn_jit_off(
    env: dict[str, str], expected: str
) -> None:
    # libpq ignores PGOPTIONS once `options` is given, so the settings must carry it on.
    result = run_python(
        DATABASE_OPTIONS,
        DEBUG="1",
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/ecommerce",
        **env,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected
