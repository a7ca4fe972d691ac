"""ecommerce/checks.py in-process: every refusal, its opt-out, and what is never refused.

tests/ecommerce/test_settings.py proves the refusals stop real processes; these cover each
rule without starting one.
"""

from __future__ import annotations

import dataclasses

import pytest

from ecommerce.checks import StartupSettings, is_placeholder, refusals

PRODUCTION = StartupSettings(
    debug=False,
    secret_key="k" * 50,
    secret_key_fallbacks=[],
    jwt_signing_key="k" * 50,
    metrics_token="m" * 40,
    metrics_public=False,
    payment_provider_url="https://payments.example.com",
    allow_in_process_payment_sandbox=False,
    redis_url="redis://redis:6379/0",
    allow_local_state=False,
    behind_proxy=False,
    trust_x_forwarded_proto=False,
    trusted_proxy_cidrs=[],
    trusted_proxy_count=0,
)


def first_words(values: StartupSettings) -> list[str]:
    return [problem.split(" ")[0] for problem in refusals(values)]


def test_a_complete_production_configuration_is_accepted() -> None:
    assert refusals(PRODUCTION) == []


@pytest.mark.parametrize(
    ("missing", "opt_in", "name"),
    [
        ({"metrics_token": ""}, {"metrics_public": True}, "METRICS_TOKEN"),
        (
            {"payment_provider_url": ""},
            {"allow_in_process_payment_sandbox": True},
            "PAYMENT_PROVIDER_URL",
        ),
        ({"redis_url": ""}, {"allow_local_state": True}, "REDIS_URL"),
    ],
)
def test_each_stand_in_is_refused_unless_a_setting_says_it_is_meant(
    missing: dict[str, str], opt_in: dict[str, bool], name: str
) -> None:
    refused = dataclasses.replace(PRODUCTION, **missing)

    assert first_words(refused) == [name]
    assert refusals(dataclasses.replace(refused, **opt_in)) == []


@pytest.mark.parametrize(
    ("field", "value", "name"),
    [
        (
            "secret_key",
            "replace-me-with-the-output-of-python-c-import-secrets-print-secrets-token-urlsafe-50",
            "SECRET_KEY",
        ),
        ("jwt_signing_key", "replace-me-with-another-long-random-string", "JWT_SIGNING_KEY"),
        ("secret_key_fallbacks", ["k" * 50, "PLACEHOLDER-old-key"], "SECRET_KEY_FALLBACKS"),
        ("metrics_token", "PLACEHOLDER-replace-with-a-random-token", "METRICS_TOKEN"),
        ("secret_key", "Change-Me-please-0123456789-0123456789-0123456789", "SECRET_KEY"),
    ],
)
def test_placeholder_secrets_are_refused(field: str, value: object, name: str) -> None:
    problems = refusals(dataclasses.replace(PRODUCTION, **{field: value}))

    assert [problem.split(" is ")[0] for problem in problems] == [name]
    assert problems[0].endswith(
        "is the placeholder from the examples; generate a real one "
        "(python -c 'import secrets; print(secrets.token_urlsafe(50))')."
    )


def test_a_jwt_key_defaulting_to_a_placeholder_secret_key_is_one_refusal() -> None:
    placeholder = "replace-me-with-the-output-of-python-c-import-secrets"
    values = dataclasses.replace(PRODUCTION, secret_key=placeholder, jwt_signing_key=placeholder)

    assert first_words(values) == ["SECRET_KEY"]


@pytest.mark.parametrize("flag", ["behind_proxy", "trust_x_forwarded_proto"])
@pytest.mark.parametrize(
    ("trust", "refused"),
    [
        ({}, True),
        ({"trusted_proxy_cidrs": ["10.0.0.0/8"]}, False),
        ({"trusted_proxy_count": 1}, False),
    ],
)
def test_a_proxy_in_front_needs_trusted_proxies(
    flag: str, trust: dict[str, object], refused: bool
) -> None:
    problems = refusals(dataclasses.replace(PRODUCTION, **{flag: True}, **trust))

    assert len(problems) == int(refused)
    if refused:
        assert problems[0].startswith(f"{flag.upper()} says a proxy stands in front")


def test_debug_refuses_nothing() -> None:
    everything_wrong = dataclasses.replace(
        PRODUCTION,
        debug=True,
        secret_key="replace-me",
        metrics_token="",
        payment_provider_url="",
        redis_url="",
        behind_proxy=True,
    )

    assert refusals(everything_wrong) == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("PLACEHOLDER-password", True),
        ("replace-me", True),
        ("changeme", True),
        ("k" * 50, False),
        ("compose-local-only-not-a-secret-6f1d0c1e9a8b4e2f9d7c5a3b1e0f2d4c6b8a", False),
        ("", False),
    ],
)
def test_what_counts_as_a_placeholder(value: str, expected: bool) -> None:
    assert is_placeholder(value) is expected
