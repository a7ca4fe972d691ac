"""Webhook endpoints: create, change, delete, rotate the secret, ping, and failure accounting."""

from __future__ import annotations

import base64
import secrets
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.notifications import locks
from apps.notifications.channels import webhook as webhook_channel
from apps.notifications.exceptions import (
    TooManyWebhookEndpoints,
    WebhookEndpointInactive,
    WebhookEndpointNotFound,
    WebhookURLRefused,
)
from apps.notifications.models import (
    WEBHOOK_EVENTS,
    Notification,
    NotificationChannel,
    NotificationEvent,
    WebhookEndpoint,
)
from apps.notifications.services.creation import create_once, queue_delivery
from ecommerce.observability.logging import get_logger
from ecommerce.ssrf import UnresolvableHost, UnsafeDestination, resolve_destination

logger = get_logger(__name__)

SECRET_PREFIX = webhook_channel.SECRET_PREFIX


SECRET_BYTES = 32


def new_secret() -> str:
    """A signing secret in the Standard Webhooks form: `whsec_` and 256 random bits in
    standard base64 (the prefix makes it recognisable in a leak; the libraries decode the
    rest into the HMAC key)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def _normalized_events(events: Sequence[str] | None) -> list[str]:
    chosen = set(events) if events else set(WEBHOOK_EVENTS)
    return [event for event in WEBHOOK_EVENTS if event in chosen]


def check_webhook_url(url: str) -> None:
    """Refuse a URL the delivery would refuse: not http(s), or not resolving to public
    addresses (outside WEBHOOK_ALLOWED_HOSTS). Delivery checks again: DNS can change.

    Raises WebhookURLRefused.
    """
    try:
        resolve_destination(url, allowed=settings.WEBHOOK_ALLOWED_HOSTS)
    except (UnsafeDestination, UnresolvableHost) as exc:
        raise WebhookURLRefused(exc.detail, url=url) from None


def _owned_for_update(*, owner: Any, endpoint_id: int) -> WebhookEndpoint:
    endpoint = locks.endpoint_for_update(endpoint_id)
    if endpoint is None or endpoint.owner_id != owner.pk:
        raise WebhookEndpointNotFound(f"No webhook endpoint {endpoint_id}.")
    return endpoint


def create_webhook_endpoint(
    *, owner: Any, url: str, events: Sequence[str] | None = None, description: str = ""
) -> WebhookEndpoint:
    """Register an endpoint with a fresh secret (the caller shows it once).

    No events means every order event. Raises WebhookURLRefused and
    TooManyWebhookEndpoints (WEBHOOK_MAX_ENDPOINTS_PER_USER; a soft limit: two creations
    at the same instant may both pass).
    """
    check_webhook_url(url)
    with transaction.atomic():
        if WebhookEndpoint.objects.filter(owner=owner).count() >= (
            settings.WEBHOOK_MAX_ENDPOINTS_PER_USER
        ):
            raise TooManyWebhookEndpoints(limit=settings.WEBHOOK_MAX_ENDPOINTS_PER_USER)
        endpoint = WebhookEndpoint.objects.create(
            owner=owner,
            url=url,
            events=_normalized_events(events),
            description=description,
            secret=new_secret(),
        )
    logger.info("webhook_endpoint_created", endpoint_id=endpoint.pk, owner_id=owner.pk)
    return endpoint


def update_webhook_endpoint(
    *,
    owner: Any,
    endpoint_id: int,
    url: str | None = None,
    events: Sequence[str] | None = None,
    description: str | None = None,
    active: bool | None = None,
) -> WebhookEndpoint:
    """Change an endpoint of the owner's; enabling it again clears its failure count.

    Raises WebhookEndpointNotFound (also for another's) and WebhookURLRefused.
    """
    if url is not None:
        check_webhook_url(url)
    with transaction.atomic():
        endpoint = _owned_for_update(owner=owner, endpoint_id=endpoint_id)
        fields = ["updated_at"]
        if url is not None:
            endpoint.url = url
            fields.append("url")
        if events is not None:
            endpoint.events = _normalized_events(events)
            fields.append("events")
        if description is not None:
            endpoint.description = description
            fields.append("description")
        if active is not None and active != endpoint.active:
            endpoint.active = active
            endpoint.consecutive_failures = 0
            endpoint.disabled_at = None if active else timezone.now()
            fields += ["active", "consecutive_failures", "disabled_at"]
        endpoint.save(update_fields=fields)
    logger.info("webhook_endpoint_updated", endpoint_id=endpoint.pk, fields=fields[1:])
    return endpoint


def delete_webhook_endpoint(*, owner: Any, endpoint_id: int) -> None:
    """Delete an endpoint of the owner's and keep its delivery history: its notifications
    keep the URL they were sent to and lose the link to the endpoint.

    Raises WebhookEndpointNotFound (also for another's).
    """
    with transaction.atomic():
        endpoint = _owned_for_update(owner=owner, endpoint_id=endpoint_id)
        Notification.objects.filter(endpoint=endpoint).update(endpoint_url=endpoint.url)
        endpoint.delete()
    logger.info("webhook_endpoint_deleted", endpoint_id=endpoint_id, owner_id=owner.pk)


def rotate_webhook_secret(*, owner: Any, endpoint_id: int) -> WebhookEndpoint:
    """Replace the secret (the caller shows the new one once). For
    WEBHOOK_SECRET_ROTATION_OVERLAP_SECONDS the replaced secret keeps signing too (a second
    signature in `webhook-signature`), so a receiver can switch secrets without refusing a
    delivery; a second rotation within that window drops the oldest secret at once.
    Attempts after this, retries included, are signed with the new secret.

    Raises WebhookEndpointNotFound (also for another's).
    """
    overlap = settings.WEBHOOK_SECRET_ROTATION_OVERLAP_SECONDS
    with transaction.atomic():
        endpoint = _owned_for_update(owner=owner, endpoint_id=endpoint_id)
        if overlap > 0:
            endpoint.previous_secret = endpoint.secret
            endpoint.previous_secret_expires_at = timezone.now() + timedelta(seconds=overlap)
        else:
            endpoint.previous_secret = ""
            endpoint.previous_secret_expires_at = None
        endpoint.secret = new_secret()
        endpoint.save(
            update_fields=[
                "secret",
                "previous_secret",
                "previous_secret_expires_at",
                "updated_at",
            ]
        )
    logger.info(
        "webhook_secret_rotated",
        endpoint_id=endpoint.pk,
        previous_expires_at=endpoint.previous_secret_expires_at,
    )
    return endpoint


def send_webhook_ping(*, owner: Any, endpoint_id: int) -> Notification:
    """Queue a `ping` event to an active endpoint; each call is a new delivery.

    Raises WebhookEndpointNotFound (also for another's) and WebhookEndpointInactive.
    """
    with transaction.atomic():
        endpoint = _owned_for_update(owner=owner, endpoint_id=endpoint_id)
        if not endpoint.active:
            raise WebhookEndpointInactive(endpoint_id=endpoint.pk)
        notification, _ = create_once(
            recipient_id=owner.pk,
            channel=NotificationChannel.WEBHOOK,
            event=NotificationEvent.PING,
            subject=f"ping:{uuid.uuid4().hex}",
            context={"endpoint_id": endpoint.pk, "message": "Webhook test from the shop."},
            endpoint_id=endpoint.pk,
        )
        queue_delivery(notification)
    return notification


def record_delivery_success(endpoint: WebhookEndpoint) -> None:
    """A delivery got through: the failure streak ends. Caller holds the endpoint's lock."""
    if endpoint.consecutive_failures:
        endpoint.consecutive_failures = 0
        endpoint.save(update_fields=["consecutive_failures", "updated_at"])


def record_delivery_failure(endpoint: WebhookEndpoint, notification: Notification) -> None:
    """A delivery failed for good: count it and tell the owner. At
    WEBHOOK_DISABLE_AFTER_FAILURES in a row, disable the endpoint and email its owner that
    (once per disabling); otherwise email the owner that the delivery failed, at most once
    per endpoint and UTC day (a receiver down for a day fails every event of that day).
    A failed `ping` is a test the owner is watching: it sends no email.

    Caller holds the endpoint's lock inside a transaction.
    """
    _count_failure(endpoint)
    if endpoint.active and notification.event != NotificationEvent.PING:
        _notify_failed_delivery(endpoint, notification)


def _notify_failed_delivery(endpoint: WebhookEndpoint, notification: Notification) -> None:
    now = timezone.now()
    first = notification.first_attempt_at
    notice, created = create_once(
        recipient_id=endpoint.owner_id,
        channel=NotificationChannel.EMAIL,
        event=NotificationEvent.WEBHOOK_FAILED,
        subject=f"webhook:{endpoint.pk}:failed:{now.date().isoformat()}",
        context={
            "endpoint": {"id": endpoint.pk, "url": endpoint.url},
            "delivery": {
                "id": str(notification.public_id),
                "event": notification.event,
                "attempts": notification.attempts,
                "first_attempt_at": first.isoformat() if first else "",
                "last_error": notification.last_error[:500],
            },
        },
    )
    if created:
        queue_delivery(notice)
        logger.warning(
            "webhook_delivery_failed_notice",
            endpoint_id=endpoint.pk,
            notification_id=notification.pk,
        )


def _count_failure(endpoint: WebhookEndpoint) -> None:
    endpoint.consecutive_failures += 1
    fields = ["consecutive_failures", "updated_at"]
    limit = settings.WEBHOOK_DISABLE_AFTER_FAILURES
    if endpoint.active and endpoint.consecutive_failures >= limit:
        now = timezone.now()
        endpoint.active = False
        endpoint.disabled_at = now
        fields += ["active", "disabled_at"]
        notification, _ = create_once(
            recipient_id=endpoint.owner_id,
            channel=NotificationChannel.EMAIL,
            event=NotificationEvent.WEBHOOK_DISABLED,
            subject=f"webhook:{endpoint.pk}:{now.isoformat()}",
            context={
                "endpoint": {
                    "id": endpoint.pk,
                    "url": endpoint.url,
                    "failures": endpoint.consecutive_failures,
                }
            },
        )
        queue_delivery(notification)
        logger.warning(
            "webhook_endpoint_disabled",
            endpoint_id=endpoint.pk,
            consecutive_failures=endpoint.consecutive_failures,
        )
    endpoint.save(update_fields=fields)
