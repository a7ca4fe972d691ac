"""Webhook delivery against a real local HTTP receiver: signature, retries, refusals, breaker."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone

from apps.notifications.models import Notification, NotificationStatus, WebhookEndpoint
from apps.notifications.services import deliver_notification, send_webhook_ping
from ecommerce.resilience.breaker import breaker
from tests.notifications.conftest import make_endpoint, make_tee, place_order
from tests.notifications.receivers import Answer, webhook_receiver
from tests.notifications.signatures import verify_webhook
from tests.orders.factories import untaxed_line
from tests.servers import silent_tcp_server

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("allow_local")]


def ping(endpoint: WebhookEndpoint, on_commit: Any) -> Notification:
    with on_commit():
        notification = send_webhook_ping(owner=endpoint.owner, endpoint_id=endpoint.pk)
    notification.refresh_from_db()
    return notification


def test_an_order_event_reaches_the_receiver_signed_with_the_endpoint_secret(
    customer, client_for, on_commit
):
    with webhook_receiver() as receiver:
        endpoint = make_endpoint(customer, receiver.url(), events=["order_paid"])
        with on_commit():
            order = place_order(client_for(customer), quantity=2, price="12.50")

    assert len(receiver.requests) == 1  # order_placed is not subscribed
    request = receiver.requests[0]
    assert request.path == "/hook"
    assert request.headers["content-type"] == "application/json"
    assert verify_webhook(
        secret=endpoint.secret,
        timestamp=request.headers["x-webhook-timestamp"],
        signature=request.headers["x-webhook-signature"],
        body=request.body,
    )
    assert not verify_webhook(
        secret=endpoint.secret,
        timestamp=request.headers["x-webhook-timestamp"],
        signature=request.headers["x-webhook-signature"],
        body=request.body.replace(b"25.00", b"0.01"),
    )
    payload = json.loads(request.body)
    notification = Notification.objects.get(endpoint=endpoint)
    assert set(payload) == {"id", "event", "created", "data"}
    assert payload["id"] == str(notification.public_id) == request.headers["x-webhook-id"]
    assert payload["event"] == "order_paid" == request.headers["x-webhook-event"]
    assert payload["data"]["order"]["id"] == order["id"]
    assert payload["data"]["order"]["total"] == "25.00"
    assert payload["data"]["order"]["status"] == "paid"
    assert payload["data"]["order"]["items"][0]["quantity"] == 2
    assert (notification.status, notification.attempts) == (NotificationStatus.SENT, 1)
    assert notification.sent_at is not None


def test_an_order_event_lists_each_line_with_its_product_and_variant_names(
    customer, client_for, on_commit
):
    make_tee()
    with webhook_receiver() as receiver:
        make_endpoint(customer, receiver.url(), events=["order_placed"])
        with on_commit():
            order = place_order(client_for(customer), quantity=3, sku="TEE-BLK-L")

    (request,) = receiver.requests
    payload = json.loads(request.body)
    assert payload["data"]["order"]["items"] == [
        {
            "sku": "TEE-BLK-L",
            "name": "Organic tee",
            "variant": "L / Black",
            "unit_price": "21.90",
            "quantity": 3,
            "line_total": "65.70",
            **untaxed_line("65.70"),
        }
    ]
    assert payload["data"]["order"]["items"] == order["items"]  # as the order API shows it


def test_a_receiver_failing_twice_gets_the_event_on_the_third_attempt(customer, on_commit):
    with webhook_receiver([500, 500], default=200) as receiver:
        endpoint = make_endpoint(customer, receiver.url())
        notification = ping(endpoint, on_commit)

    assert len(receiver.requests) == 3
    assert len({r.headers["x-webhook-id"] for r in receiver.requests}) == 1
    assert (notification.status, notification.attempts) == (NotificationStatus.SENT, 3)
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 0


def test_a_400_fails_at_once_without_a_retry(customer, on_commit):
    with webhook_receiver(default=Answer(400, body=b"unknown event")) as receiver:
        endpoint = make_endpoint(customer, receiver.url())
        notification = ping(endpoint, on_commit)

    assert len(receiver.requests) == 1
    assert (notification.status, notification.attempts) == (NotificationStatus.FAILED, 1)
    assert "HTTP 400: unknown event" in notification.last_error
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 1


@pytest.mark.parametrize("status", [408, 429, 500, 503])
def test_retryable_statuses_are_retried_until_the_attempts_run_out(customer, on_commit, status):
    with webhook_receiver(default=status) as receiver:
        endpoint = make_endpoint(customer, receiver.url())
        notification = ping(endpoint, on_commit)

    assert len(receiver.requests) == 3  # WEBHOOK_MAX_ATTEMPTS
    assert (notification.status, notification.attempts) == (NotificationStatus.FAILED, 3)
    assert notification.last_error.startswith(f"attempt 3: HTTP {status}")


def test_a_read_timeout_is_retried(customer, on_commit, settings):
    settings.WEBHOOK_READ_TIMEOUT_SECONDS = 0.2
    with silent_tcp_server() as port:
        endpoint = make_endpoint(customer, f"http://127.0.0.1:{port}/hook")
        notification = ping(endpoint, on_commit)

    assert (notification.status, notification.attempts) == (NotificationStatus.FAILED, 3)
    assert "read_timeout" in notification.last_error


def test_a_refused_connection_is_retried(customer, on_commit):
    with webhook_receiver() as receiver:
        url = receiver.url()
    endpoint = make_endpoint(customer, url)  # nobody listens there any more

    notification = ping(endpoint, on_commit)

    assert (notification.status, notification.attempts) == (NotificationStatus.FAILED, 3)
    assert "Could not connect" in notification.last_error


def test_redirects_are_never_followed(customer, on_commit):
    with (
        webhook_receiver() as target,
        webhook_receiver(default=Answer(307, headers={"Location": target.url()})) as redirecting,
    ):
        endpoint = make_endpoint(customer, redirecting.url())
        notification = ping(endpoint, on_commit)

    assert len(redirecting.requests) == 1
    assert target.requests == []
    assert (notification.status, notification.attempts) == (NotificationStatus.FAILED, 1)
    assert "never follow redirects" in notification.last_error


def test_a_redirect_to_a_private_address_is_refused(customer, on_commit):
    location = "http://10.0.0.1/internal"
    with webhook_receiver(default=Answer(302, headers={"Location": location})) as receiver:
        endpoint = make_endpoint(customer, receiver.url())
        notification = ping(endpoint, on_commit)

    assert len(receiver.requests) == 1
    assert notification.status == NotificationStatus.FAILED
    assert location in notification.last_error


def test_an_endpoint_is_disabled_after_n_failures_and_its_owner_is_emailed(
    customer, on_commit, settings
):
    settings.WEBHOOK_DISABLE_AFTER_FAILURES = 2
    with webhook_receiver(default=410) as receiver:
        endpoint = make_endpoint(customer, receiver.url())
        first = ping(endpoint, on_commit)
        endpoint.refresh_from_db()
        assert (endpoint.active, endpoint.consecutive_failures) == (True, 1)
        assert mail.outbox == []

        second = ping(endpoint, on_commit)

    endpoint.refresh_from_db()
    assert first.status == second.status == NotificationStatus.FAILED
    assert (endpoint.active, endpoint.consecutive_failures) == (False, 2)
    assert endpoint.disabled_at is not None
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [customer.email]
    assert message.subject == "Your webhook endpoint was disabled"
    assert endpoint.url in message.body
    assert "2 failed deliveries in a row" in message.body
    notice = Notification.objects.get(event="webhook_disabled")
    assert (notice.recipient, notice.status) == (customer, NotificationStatus.SENT)


def test_a_disabled_endpoint_receives_nothing(customer, client_for, on_commit):
    with webhook_receiver() as receiver:
        endpoint = make_endpoint(customer, receiver.url())
        endpoint.active = False
        endpoint.save(update_fields=["active"])
        with on_commit():
            place_order(client_for(customer))

    assert receiver.requests == []
    assert not Notification.objects.filter(endpoint=endpoint).exists()


def test_the_breaker_of_a_failing_host_stops_calls_to_it_but_not_to_other_hosts(
    customer, on_commit, settings
):
    settings.CIRCUIT_BREAKERS = {"webhook:127.0.0.1": {"failure_threshold": 2}}
    with webhook_receiver(default=503) as failing, webhook_receiver() as healthy:
        broken = ping(make_endpoint(customer, failing.url()), on_commit)
        fine = ping(make_endpoint(customer, healthy.url(host="localhost")), on_commit)

    # Two calls failed and opened the breaker; the third was refused without a call: not
    # an attempt, so the delivery waits for the breaker instead of failing.
    assert len(failing.requests) == 2
    assert (broken.status, broken.attempts) == (NotificationStatus.PENDING, 2)
    assert broken.last_error.startswith(
        "not attempted: The circuit breaker 'webhook:127.0.0.1' is open"
    )
    assert broken.next_attempt_at is not None
    wait = (broken.next_attempt_at - timezone.now()).total_seconds()
    assert 25 < wait <= settings.CIRCUIT_BREAKER_RECOVERY_TIMEOUT_SECONDS
    assert len(healthy.requests) == 1
    assert healthy.requests[0].headers["host"] == f"localhost:{healthy.port}"
    assert fine.status == NotificationStatus.SENT


def test_refusals_by_an_open_breaker_never_use_up_a_deliverys_attempts(
    customer, on_commit, settings
):
    """WEBHOOK_MAX_ATTEMPTS is 3: two failures, ten refusals, then the third attempt lands."""
    settings.CIRCUIT_BREAKERS = {"webhook:127.0.0.1": {"failure_threshold": 2}}
    with webhook_receiver([503, 503], default=200) as receiver:
        notification = ping(make_endpoint(customer, receiver.url()), on_commit)
        outcomes = []
        for _ in range(10):  # each time the wait is over, the breaker is still open
            Notification.objects.filter(pk=notification.pk).update(next_attempt_at=None)
            outcomes.append(deliver_notification(notification_id=notification.pk).outcome)
        notification.refresh_from_db()
        assert (notification.status, notification.attempts) == (NotificationStatus.PENDING, 2)
        assert len(receiver.requests) == 2

        breaker("webhook:127.0.0.1").reset()
        Notification.objects.filter(pk=notification.pk).update(next_attempt_at=None)
        last = deliver_notification(notification_id=notification.pk).outcome

    notification.refresh_from_db()
    assert outcomes == ["retry"] * 10
    assert last == "sent"
    assert (notification.status, notification.attempts) == (NotificationStatus.SENT, 3)
    assert len(receiver.requests) == 3


def test_only_the_owners_endpoints_get_their_orders_events(
    customer, other_customer, client_for, on_commit
):
    with webhook_receiver() as mine, webhook_receiver() as theirs:
        make_endpoint(customer, mine.url(), events=["order_placed"])
        make_endpoint(other_customer, theirs.url(), events=["order_placed"])
        with on_commit():
            order = place_order(client_for(customer))

    assert [json.loads(r.body)["data"]["order"]["id"] for r in mine.requests] == [order["id"]]
    assert theirs.requests == []
