"""Outgoing webhooks verify with the Standard Webhooks reference library, unchanged, also
while a rotated-out secret overlaps; our own signature header still verifies as before."""

from __future__ import annotations

import base64
import json
import re
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from apps.notifications.channels.webhook import standard_key
from apps.notifications.models import Notification, NotificationStatus, WebhookEndpoint
from apps.notifications.services import rotate_webhook_secret, send_webhook_ping
from apps.notifications.services.endpoints import new_secret
from tests.notifications.conftest import make_endpoint, place_order
from tests.notifications.receivers import Received, webhook_receiver
from tests.notifications.signatures import verify_webhook

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("allow_local")]


def ping_received(endpoint: WebhookEndpoint, on_commit: Any) -> Received:
    """One real delivery of a ping to the endpoint's receiver; the request it got."""
    with webhook_receiver() as receiver:
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(url=receiver.url())
        with on_commit():
            notification = send_webhook_ping(owner=endpoint.owner, endpoint_id=endpoint.pk)
    notification.refresh_from_db()
    assert notification.status == NotificationStatus.SENT
    assert len(receiver.requests) == 1
    return receiver.requests[0]


def test_a_new_secret_is_whsec_and_256_bits_of_standard_base64():
    secret = new_secret()

    assert re.fullmatch(r"whsec_[A-Za-z0-9+/]{43}=", secret)
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert standard_key(secret) == base64.b64decode(secret.removeprefix("whsec_"))


def test_the_standard_webhooks_library_verifies_an_order_event_unchanged(
    customer, client_for, on_commit
):
    with webhook_receiver() as receiver:
        endpoint = make_endpoint(customer, receiver.url(), events=["order_paid"])
        with on_commit():
            order = place_order(client_for(customer))

    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    payload = Webhook(endpoint.secret).verify(request.body, request.headers)
    notification = Notification.objects.get(endpoint=endpoint)
    assert payload["data"]["order"]["id"] == order["id"]
    assert request.headers["webhook-id"] == str(notification.public_id) == payload["id"]
    assert request.headers["webhook-timestamp"] == request.headers["x-webhook-timestamp"]
    assert len(request.headers["webhook-signature"].split(" ")) == 1
    # The existing header is still there and still verifies as docs/webhooks.md shows.
    assert verify_webhook(
        secret=endpoint.secret,
        timestamp=request.headers["x-webhook-timestamp"],
        signature=request.headers["x-webhook-signature"],
        body=request.body,
    )
    # A changed body or another secret is refused.
    with pytest.raises(WebhookVerificationError):
        Webhook(endpoint.secret).verify(request.body.replace(b"paid", b"PAID"), request.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(request.body, request.headers)


def test_during_a_rotation_overlap_both_secrets_verify_and_after_it_only_the_new_one(
    customer, on_commit, settings
):
    settings.WEBHOOK_SECRET_ROTATION_OVERLAP_SECONDS = 3600
    endpoint = make_endpoint(customer, "http://127.0.0.1:9/unused")
    old_secret = endpoint.secret

    rotated = rotate_webhook_secret(owner=customer, endpoint_id=endpoint.pk)
    during = ping_received(rotated, on_commit)

    new_secret_ = rotated.secret
    assert new_secret_ != old_secret
    assert json.loads(during.body)["event"] == "ping"
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    assert Webhook(old_secret).verify(during.body, during.headers)["event"] == "ping"
    assert Webhook(new_secret_).verify(during.body, during.headers)["event"] == "ping"
    # Our header is signed by the current secret alone: its receivers compare one value.
    assert verify_webhook(
        secret=new_secret_,
        timestamp=during.headers["x-webhook-timestamp"],
        signature=during.headers["x-webhook-signature"],
        body=during.body,
    )

    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        previous_secret_expires_at=timezone.now() - timedelta(seconds=1)
    )
    after = ping_received(rotated, on_commit)

    assert len(after.headers["webhook-signature"].split(" ")) == 1
    assert Webhook(new_secret_).verify(after.body, after.headers)["event"] == "ping"
    with pytest.raises(WebhookVerificationError):
        Webhook(old_secret).verify(after.body, after.headers)


def test_rotating_through_the_api_keeps_the_old_secret_for_the_overlap(
    customer, client_for, settings
):
    settings.WEBHOOK_SECRET_ROTATION_OVERLAP_SECONDS = 600
    endpoint = make_endpoint(customer, "http://127.0.0.1:9/unused")
    old_secret = endpoint.secret
    before = timezone.now()

    response = client_for(customer).post(f"/api/webhooks/{endpoint.pk}/rotate-secret")

    assert response.status_code == 200, response.content
    endpoint.refresh_from_db()
    assert response.json()["secret"] == endpoint.secret != old_secret
    assert endpoint.previous_secret == old_secret
    assert endpoint.previous_secret_expires_at is not None
    overlap = endpoint.previous_secret_expires_at - before
    assert timedelta(seconds=599) < overlap < timedelta(seconds=610)
    assert endpoint.signing_secrets(timezone.now()) == [endpoint.secret, old_secret]


def test_a_second_rotation_within_the_overlap_drops_the_oldest_secret(customer, settings):
    settings.WEBHOOK_SECRET_ROTATION_OVERLAP_SECONDS = 600
    endpoint = make_endpoint(customer, "http://127.0.0.1:9/unused")
    first = endpoint.secret

    second = rotate_webhook_secret(owner=customer, endpoint_id=endpoint.pk).secret
    third = rotate_webhook_secret(owner=customer, endpoint_id=endpoint.pk).secret

    endpoint.refresh_from_db()
    assert endpoint.signing_secrets(timezone.now()) == [third, second]
    assert first not in endpoint.signing_secrets(timezone.now())


def test_with_no_overlap_configured_the_old_secret_stops_at_once(customer, settings):
    settings.WEBHOOK_SECRET_ROTATION_OVERLAP_SECONDS = 0
    endpoint = make_endpoint(customer, "http://127.0.0.1:9/unused")

    rotated = rotate_webhook_secret(owner=customer, endpoint_id=endpoint.pk)

    rotated.refresh_from_db()
    assert (rotated.previous_secret, rotated.previous_secret_expires_at) == ("", None)
    assert rotated.signing_secrets(timezone.now()) == [rotated.secret]
