"""Start-up refusals outside DEBUG: settings that would run production unsafely, or on stand-ins.

`ecommerce/settings.py` calls `refusals()` with the values it read and stops the process
(one `ImproperlyConfigured: ...` line per problem) when the list is not empty, so gunicorn,
Celery and every `manage.py` command refuse alike; a Django system check would run only for
`manage.py check` and `runserver`, never under gunicorn.

Each refusal has an explicit way out, named in its message, for the setups where the
condition is meant (the test suite, a local stack): never a silent fallback.

This module is imported by the settings, so it must not import Django's settings itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# Substrings of the example values shipped in .env.example, deploy/k8s/secret.example.yaml
# and the Helm values: a secret containing one was copied, not generated.
PLACEHOLDER_MARKERS = ("replace-me", "placeholder", "change-me", "changeme")


@dataclass(frozen=True)
class StartupSettings:
    """The settings the refusals look at, as read from the environment."""

    debug: bool
    secret_key: str
    secret_key_fallbacks: Sequence[str]
    jwt_signing_key: str
    metrics_token: str
    metrics_public: bool
    payment_provider_url: str
    allow_in_process_payment_sandbox: bool
    redis_url: str
    allow_local_state: bool
    behind_proxy: bool
    trust_x_forwarded_proto: bool
    trusted_proxy_cidrs: Sequence[str]
    trusted_proxy_count: int


def is_placeholder(value: str) -> bool:
    """True when `value` is (or contains) one of the shipped example values."""
    lowered = value.lower()
    return any(marker in lowered for marker in PLACEHOLDER_MARKERS)


def refusals(values: StartupSettings) -> list[str]:
    """Why this configuration must not start, one sentence each; empty when it may.

    Nothing is refused with DEBUG on: embedded mode and local development run on the
    in-process stand-ins on purpose.
    """
    if values.debug:
        return []
    problems: list[str] = []
    secrets = {
        "SECRET_KEY": [values.secret_key],
        "SECRET_KEY_FALLBACKS": list(values.secret_key_fallbacks),
        # It defaults to SECRET_KEY: one placeholder is one refusal.
        "JWT_SIGNING_KEY": [values.jwt_signing_key]
        if values.jwt_signing_key != values.secret_key
        else [],
        "METRICS_TOKEN": [values.metrics_token],
    }
    for name, candidates in secrets.items():
        if any(is_placeholder(candidate) for candidate in candidates):
            problems.append(
                f"{name} is the placeholder from the examples; generate a real one "
                "(python -c 'import secrets; print(secrets.token_urlsafe(50))')."
            )
    if not values.metrics_token and not values.metrics_public:
        problems.append(
            "METRICS_TOKEN must be set when DEBUG is off: /metrics and /traces would be "
            "open to anyone (set METRICS_PUBLIC=true only if the network keeps them private)."
        )
    if not values.payment_provider_url and not values.allow_in_process_payment_sandbox:
        problems.append(
            "PAYMENT_PROVIDER_URL must be set when DEBUG is off: without it payments go to "
            "the in-process sandbox and no money moves (set "
            "ALLOW_IN_PROCESS_PAYMENT_SANDBOX=true if that is meant)."
        )
    if not values.redis_url and not values.allow_local_state:
        problems.append(
            "REDIS_URL must be set when DEBUG is off: without it locks, circuit breakers and "
            "rate limits are per process (set ALLOW_LOCAL_STATE=true if that is meant)."
        )
    proxied = values.behind_proxy or values.trust_x_forwarded_proto
    if proxied and not values.trusted_proxy_cidrs and values.trusted_proxy_count <= 0:
        reason = "BEHIND_PROXY" if values.behind_proxy else "TRUST_X_FORWARDED_PROTO"
        problems.append(
            f"{reason} says a proxy stands in front, but neither TRUSTED_PROXY_CIDRS nor "
            "TRUSTED_PROXY_COUNT is set: every client would have the proxy's address, and "
            "one client's failed logins would lock everyone out."
        )
    return problems
