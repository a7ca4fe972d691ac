"""Typed errors of notifications: lookups, webhook endpoint rules, and delivery outcomes.

Delivery errors are split the way the task needs them (STYLE.md R5, R9): `DeliveryUnavailable`
may recover (a 5xx, 408, 429, a timeout, an SMTP hiccup) and is retried with backoff;
`DeliveryRefused` never will (a 4xx, a redirect, an unsafe destination) and fails at once.
"""

from __future__ import annotations

from ecommerce.errors import Conflict, InvalidInput, NotFound, Unavailable, Unprocessable


class NotificationNotFound(NotFound):
    code = "notification_not_found"
    title = "Notification not found"


class WebhookEndpointNotFound(NotFound):
    code = "webhook_not_found"
    title = "Webhook endpoint not found"


class NotificationBusy(Conflict):
    code = "notification_busy"
    title = "Notification being sent"

    def __init__(self, *, notification_id: int) -> None:
        super().__init__(
            f"Notification {notification_id} is being sent right now; try again shortly.",
            notification_id=notification_id,
        )


class WebhookEndpointInactive(Conflict):
    code = "webhook_inactive"
    title = "Webhook endpoint disabled"

    def __init__(self, *, endpoint_id: int) -> None:
        super().__init__(
            f"Webhook endpoint {endpoint_id} is disabled; enable it (active: true) first.",
            endpoint_id=endpoint_id,
        )


class TooManyWebhookEndpoints(Conflict):
    code = "too_many_webhooks"
    title = "Too many webhook endpoints"

    def __init__(self, *, limit: int) -> None:
        super().__init__(f"An account may have at most {limit} webhook endpoints.", limit=limit)


class WebhookURLRefused(InvalidInput):
    code = "webhook_url_refused"
    title = "Webhook URL not allowed"


class DeliveryUnavailable(Unavailable):
    """The destination could not take the notification now; retry later.

    `reason` is short and low-cardinality (`http_503`, `read_timeout`, `smtp_451`);
    `retry_after_seconds` is the destination's own hint (Retry-After), when it gave one.
    """

    code = "delivery_unavailable"
    title = "Delivery temporarily failed"

    def __init__(
        self, *, reason: str, detail: str | None = None, retry_after_seconds: float | None = None
    ) -> None:
        self.reason = reason
        self.retry_after_seconds = retry_after_seconds
        super().__init__(detail or f"Delivery failed for now ({reason}).", reason=reason)


class DeliveryRefused(Unprocessable):
    """The destination refused the notification, or may not be reached: never retried."""

    code = "delivery_refused"
    title = "Delivery refused"

    def __init__(self, *, reason: str, detail: str | None = None) -> None:
        self.reason = reason
        super().__init__(detail or f"Delivery refused ({reason}).", reason=reason)
