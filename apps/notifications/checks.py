"""Start-up checks of the notification settings: a bad value stops `manage.py check` and boot."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error

from apps.notifications.models import NotificationChannel
from apps.notifications.services import retry_policy_for
from ecommerce.ssrf import parse_allow_list

HINT = "See the Notifications section of .env.example."


def check_notification_settings(
    app_configs: Sequence[Any] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Build what the code builds at runtime from the settings, and report what fails."""
    errors: list[CheckMessage] = []
    for channel in NotificationChannel:
        try:
            retry_policy_for(channel)
        except (ValueError, TypeError) as exc:
            errors.append(
                Error(
                    f"Retry settings of {channel} notifications: {exc}",
                    hint=HINT,
                    id="notifications.E001",
                )
            )
    try:
        parse_allow_list(settings.WEBHOOK_ALLOWED_HOSTS)
    except ValueError as exc:
        errors.append(Error(f"WEBHOOK_ALLOWED_HOSTS: {exc}", hint=HINT, id="notifications.E002"))
    for name in (
        "WEBHOOK_CONNECT_TIMEOUT_SECONDS",
        "WEBHOOK_READ_TIMEOUT_SECONDS",
        "NOTIFICATION_LOCK_TTL_SECONDS",
        "NOTIFICATION_REQUEUE_AFTER_SECONDS",
        "NOTIFICATION_BROKER_RETRY_MAX_SECONDS",
        "NOTIFICATION_SWEEP_INTERVAL_SECONDS",
        "NOTIFICATION_SWEEP_LOOKBACK_SECONDS",
        "NOTIFICATION_SWEEP_BATCH_SIZE",
        "WEBHOOK_DISABLE_AFTER_FAILURES",
        "WEBHOOK_RETRY_HORIZON_SECONDS",
    ):
        value = getattr(settings, name)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            errors.append(
                Error(
                    f"{name} must be a positive number, not {value!r}",
                    hint=HINT,
                    id="notifications.E003",
                )
            )
    for name in ("NOTIFICATION_SWEEP_GRACE_SECONDS", "WEBHOOK_SECRET_ROTATION_OVERLAP_SECONDS"):
        value = getattr(settings, name)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            errors.append(
                Error(
                    f"{name} must be a number of seconds >= 0, not {value!r}",
                    hint=HINT,
                    id="notifications.E003",
                )
            )
    return errors
