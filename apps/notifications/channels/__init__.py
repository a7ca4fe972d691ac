"""Delivery channels: each sends one notification or says why not (retry it, or never)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from apps.notifications.channels.email import send_email
from apps.notifications.channels.webhook import send_webhook
from apps.notifications.models import NotificationChannel

if TYPE_CHECKING:
    from apps.notifications.models import Notification


def send(notification: Notification) -> None:
    """Send through the notification's channel, once.

    Raises DeliveryUnavailable (may recover: retry), DeliveryRefused (never will) and
    CircuitOpen (the destination's breaker refused the call without making it).
    """
    if notification.channel == NotificationChannel.EMAIL:
        send_email(notification)
    else:
        send_webhook(notification)


__all__ = ["send"]
