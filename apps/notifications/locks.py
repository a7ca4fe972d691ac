"""Row locks of the notifications app."""

from __future__ import annotations

from apps.notifications.models import Notification, WebhookEndpoint


def notification_for_update(notification_id: int) -> Notification | None:
    """Lock one notification row until the surrounding transaction ends (None if gone).

    Must be called inside `transaction.atomic()`.
    """
    return Notification.objects.select_for_update().filter(pk=notification_id).first()


def endpoint_for_update(endpoint_id: int) -> WebhookEndpoint | None:
    """Lock one webhook endpoint row until the transaction ends (None if deleted).

    Must be called inside `transaction.atomic()`.
    """
    return WebhookEndpoint.objects.select_for_update().filter(pk=endpoint_id).first()
