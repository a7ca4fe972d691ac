"""Start-up checks of the resilience settings: a bad value stops `manage.py check` and boot."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error

from ecommerce.resilience.breaker import default_policy, policy_for, validate_name
from ecommerce.resilience.retry import payment_retry_policy

HINT = "See the Resilience section of .env.example."


def check_resilience_settings(
    app_configs: Sequence[Any] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Build every configured policy once, as the code will at runtime, and report failures."""
    errors: list[CheckMessage] = []
    try:
        default_policy()
    except (ValueError, TypeError) as exc:
        errors.append(Error(f"CIRCUIT_BREAKER_* settings: {exc}", hint=HINT, id="resilience.E001"))
    overrides = settings.CIRCUIT_BREAKERS
    if not isinstance(overrides, dict):
        errors.append(
            Error(
                f"CIRCUIT_BREAKERS must be a dict of name to policy, not {overrides!r}",
                hint=HINT,
                id="resilience.E002",
            )
        )
        overrides = {}
    for name in overrides:
        try:
            validate_name(name)
        except ValueError as exc:
            errors.append(Error(f"CIRCUIT_BREAKERS: {exc}", hint=HINT, id="resilience.E003"))
            continue
        try:
            policy_for(name)
        except (ValueError, TypeError) as exc:
            errors.append(Error(str(exc), hint=HINT, id="resilience.E003"))
    try:
        payment_retry_policy()
    except (ValueError, TypeError) as exc:
        errors.append(Error(f"PAYMENT_RETRY_* settings: {exc}", hint=HINT, id="resilience.E004"))
    return errors
