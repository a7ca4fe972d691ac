"""The notifications and webhooks API: scoping, roles, the secret shown once, ping."""

from __future__ import annotations

import json

import pytest
from django.core import mail

from apps.notifications.models import Notification, NotificationStatus, WebhookEndpoint
from apps.notifications.services import create_once
from tests.notifications.receivers import webhook_receiver
from tests.notifications.signatures import verify_webhook

pytestmark = pytest.mark.django_db


def email_for(user, subject: str) -> Notification:
    notification, _ = create_once(
        recipient_id=user.pk, channel="email", event="user_registered", subject=subject, context={}
    )
    return notification


def test_a_customer_lists_only_their_own_notifications(customer, other_customer, client_for):
    mine = email_for(customer, "user:mine")
    theirs = email_for(other_customer, "user:theirs")
    client = client_for(customer)

    listed = client.get("/api/notifications")
    other = client.get(f"/api/notifications/{theirs.pk}")
    own = client.get(f"/api/notifications/{mine.pk}")

    assert [n["id"] for n in listed.json()["results"]] == [mine.pk]
    assert other.status_code == 404
    assert other.json()["code"] == "notification_not_found"
    assert own.status_code == 200
    assert own.json()["status"] == "pending"


def test_support_sees_everyones_notifications_and_filters_them(
    customer, other_customer, support, client_for
):
    first = email_for(customer, "user:a")
    second = email_for(other_customer, "user:b")
    Notification.objects.filter(pk=second.pk).update(status=NotificationStatus.FAILED)
    client = client_for(support)

    every = client.get("/api/notifications")
    failed = client.get("/api/notifications?status=failed")

    assert {n["id"] for n in every.json()["results"]} == {first.pk, second.pk}
    assert [n["id"] for n in failed.json()["results"]] == [second.pk]


def test_a_customer_cannot_resend_even_their_own(customer, client_for, on_commit):
    notification = email_for(customer, "user:x")

    with on_commit():
        response = client_for(customer).post(f"/api/notifications/{notification.pk}/resend")

    assert response.status_code == 403
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == (NotificationStatus.PENDING, 0)
    assert mail.outbox == []


@pytest.mark.parametrize("role", ["support", "shop_admin"])
def test_support_and_admin_resend_a_sent_notification(
    request, role, customer, client_for, on_commit
):
    notification = email_for(customer, "user:x")
    staff = request.getfixturevalue(role)
    client = client_for(staff)
    with on_commit():
        client.post(f"/api/notifications/{notification.pk}/resend")
    with on_commit():
        response = client.post(f"/api/notifications/{notification.pk}/resend/")

    assert response.status_code == 202
    assert response.json()["id"] == notification.pk
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == (NotificationStatus.SENT, 1)
    assert [m.to for m in mail.outbox] == [[customer.email], [customer.email]]


def test_resending_a_missing_notification_is_404(support, client_for):
    response = client_for(support).post("/api/notifications/999999/resend")

    assert response.status_code == 404


def test_the_secret_is_shown_once_at_creation(customer, client_for, allow_local):
    client = client_for(customer)

    created = client.post(
        "/api/webhooks", {"url": "http://127.0.0.1:9/hook", "events": ["order_paid"]}
    )

    assert created.status_code == 201
    body = created.json()
    endpoint = WebhookEndpoint.objects.get(pk=body["id"])
    assert body["secret"] == endpoint.secret
    assert body["secret"].startswith("whsec_")
    assert body["events"] == ["order_paid"]
    assert body["active"] is True
    assert created["Location"] == f"/api/webhooks/{endpoint.pk}/"
    assert "secret" not in client.get(f"/api/webhooks/{endpoint.pk}").json()
    assert "secret" not in client.get("/api/webhooks").json()["results"][0]
    assert "secret" not in client.patch(f"/api/webhooks/{endpoint.pk}", {"events": []}).json()


def test_creation_without_events_subscribes_to_every_order_event(customer, client_for, allow_local):
    body = client_for(customer).post("/api/webhooks", {"url": "http://localhost:9/hook"}).json()

    assert body["events"] == [
        "order_placed",
        "order_paid",
        "payment_failed",
        "order_cancelled",
        "order_expired",
        "order_fulfilled",
        "order_refunded",
        "order_partially_refunded",
        "payment_compensated",
    ]


@pytest.mark.parametrize(
    ("payload", "pointer"),
    [
        ({"url": "ftp://127.0.0.1/x"}, "#/url"),
        ({"url": "not a url"}, "#/url"),
        ({"url": "http://127.0.0.1/x", "events": ["user_registered"]}, "#/events/0"),
        ({"url": "http://127.0.0.1/x", "events": []}, "#/events"),
        ({}, "#/url"),
    ],
)
def test_invalid_endpoints_are_400_naming_the_field(
    customer, client_for, allow_local, payload, pointer
):
    response = client_for(customer).post("/api/webhooks", payload)

    assert response.status_code == 400
    assert pointer in {error["pointer"] for error in response.json()["errors"]}
    assert not WebhookEndpoint.objects.exists()


def test_rotating_the_secret_returns_the_new_one_once_and_signs_with_it(
    customer, client_for, allow_local, on_commit
):
    client = client_for(customer)
    with webhook_receiver() as receiver:
        created = client.post("/api/webhooks", {"url": receiver.url()}).json()
        rotated = client.post(f"/api/webhooks/{created['id']}/rotate-secret")
        with on_commit():
            pinged = client.post(f"/api/webhooks/{created['id']}/test")

    assert rotated.status_code == 200
    new_secret = rotated.json()["secret"]
    assert new_secret != created["secret"]
    assert pinged.status_code == 202
    assert pinged.json()["event"] == "ping"
    request = receiver.requests[0]
    signed = {
        "timestamp": request.headers["x-webhook-timestamp"],
        "signature": request.headers["x-webhook-signature"],
        "body": request.body,
    }
    assert verify_webhook(secret=new_secret, **signed)
    assert not verify_webhook(secret=created["secret"], **signed)
    assert json.loads(request.body)["event"] == "ping"
    assert Notification.objects.get(pk=pinged.json()["id"]).status == NotificationStatus.SENT


def test_a_disabled_endpoint_is_not_pinged_until_enabled_again(
    customer, client_for, allow_local, on_commit
):
    client = client_for(customer)
    endpoint = client.post("/api/webhooks", {"url": "http://127.0.0.1:9/hook"}).json()
    WebhookEndpoint.objects.filter(pk=endpoint["id"]).update(active=False, consecutive_failures=10)

    refused = client.post(f"/api/webhooks/{endpoint['id']}/test")
    enabled = client.patch(f"/api/webhooks/{endpoint['id']}", {"active": True})

    assert refused.status_code == 409
    assert refused.json()["code"] == "webhook_inactive"
    assert enabled.status_code == 200
    assert (enabled.json()["active"], enabled.json()["consecutive_failures"]) == (True, 0)


def test_put_replaces_and_delete_removes(customer, client_for, allow_local):
    client = client_for(customer)
    endpoint = client.post("/api/webhooks", {"url": "http://127.0.0.1:9/a"}).json()

    replaced = client.put(
        f"/api/webhooks/{endpoint['id']}",
        {"url": "http://localhost:9/b", "events": ["order_refunded"], "description": "ops"},
    )
    incomplete = client.put(f"/api/webhooks/{endpoint['id']}", {"events": ["order_paid"]})
    deleted = client.delete(f"/api/webhooks/{endpoint['id']}")

    assert replaced.status_code == 200
    assert (replaced.json()["url"], replaced.json()["events"], replaced.json()["description"]) == (
        "http://localhost:9/b",
        ["order_refunded"],
        "ops",
    )
    assert incomplete.status_code == 400
    assert deleted.status_code == 204
    assert not WebhookEndpoint.objects.exists()


def test_nobody_reads_or_touches_anothers_webhooks(
    customer, other_customer, support, shop_admin, client_for, allow_local
):
    endpoint = client_for(customer).post("/api/webhooks", {"url": "http://127.0.0.1:9/a"}).json()
    path = f"/api/webhooks/{endpoint['id']}"

    for stranger in (other_customer, support, shop_admin):
        client = client_for(stranger)
        assert client.get("/api/webhooks").json()["results"] == []
        assert client.get(path).status_code == 404
        assert client.patch(path, {"active": False}).status_code == 404
        assert client.put(path, {"url": "http://127.0.0.1:9/evil"}).status_code == 404
        assert client.post(f"{path}/rotate-secret").status_code == 404
        assert client.post(f"{path}/test").status_code == 404
        assert client.delete(path).status_code == 404

    stored = WebhookEndpoint.objects.get(pk=endpoint["id"])
    assert (stored.url, stored.active, stored.secret) == (
        "http://127.0.0.1:9/a",
        True,
        endpoint["secret"],
    )


def test_the_number_of_endpoints_per_user_is_capped(customer, client_for, allow_local, settings):
    settings.WEBHOOK_MAX_ENDPOINTS_PER_USER = 1
    client = client_for(customer)
    client.post("/api/webhooks", {"url": "http://127.0.0.1:9/a"})

    response = client.post("/api/webhooks", {"url": "http://127.0.0.1:9/b"})

    assert response.status_code == 409
    assert response.json()["code"] == "too_many_webhooks"
    assert WebhookEndpoint.objects.count() == 1


def test_anonymous_callers_get_401(api_client):
    assert api_client.get("/api/notifications").status_code == 401
    assert api_client.get("/api/webhooks").status_code == 401


def test_an_id_beyond_the_databases_range_is_a_404(customer, support, client_for):
    huge = "9" * 25

    assert client_for(customer).get(f"/api/notifications/{huge}").status_code == 404
    assert client_for(support).post(f"/api/notifications/{huge}/resend").status_code == 404
    assert client_for(customer).get(f"/api/webhooks/{huge}").status_code == 404
    assert client_for(customer).delete(f"/api/webhooks/{huge}").status_code == 404
