"""The admin: support reads notifications filtered; admins resend; secrets never shown."""

from __future__ import annotations

import pytest
from django.core import mail
from django.test import Client

from apps.notifications.models import Notification, NotificationStatus
from apps.notifications.services import create_once
from tests.notifications.conftest import make_endpoint

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("notification_grants")]


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def email_for(user, subject: str) -> Notification:
    notification, _ = create_once(
        recipient_id=user.pk, channel="email", event="user_registered", subject=subject, context={}
    )
    return notification


def test_support_lists_notifications_filtered_by_status_channel_and_event(customer, support):
    sent = email_for(customer, "user:sent")
    Notification.objects.filter(pk=sent.pk).update(status=NotificationStatus.SENT)
    pending = email_for(customer, "user:pending")

    response = logged_in(support).get(
        "/admin/notifications/notification/",
        {"status__exact": "pending", "channel__exact": "email", "event__exact": "user_registered"},
    )

    assert response.status_code == 200
    shown = [row.pk for row in response.context["cl"].result_list]
    assert shown == [pending.pk]


def test_support_cannot_run_the_resend_action(customer, support):
    notification = email_for(customer, "user:x")

    response = logged_in(support).get("/admin/notifications/notification/")

    assert "resend" not in dict(
        response.context["cl"].model_admin.get_actions(response.wsgi_request)
    )
    assert notification.status == NotificationStatus.PENDING


def test_an_admin_resends_from_the_changelist(customer, shop_admin, on_commit):
    notification = email_for(customer, "user:x")
    Notification.objects.filter(pk=notification.pk).update(
        status=NotificationStatus.FAILED, attempts=3
    )

    with on_commit():
        response = logged_in(shop_admin).post(
            "/admin/notifications/notification/",
            {"action": "resend", "_selected_action": [notification.pk]},
            follow=True,
        )

    assert response.status_code == 200
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == (NotificationStatus.SENT, 1)
    assert [m.to for m in mail.outbox] == [[customer.email]]


def test_the_webhook_endpoint_page_never_shows_the_secret(customer, shop_admin):
    endpoint = make_endpoint(customer, "https://hooks.example/in")

    changelist = logged_in(shop_admin).get("/admin/notifications/webhookendpoint/")
    change = logged_in(shop_admin).get(
        f"/admin/notifications/webhookendpoint/{endpoint.pk}/change/"
    )

    assert changelist.status_code == change.status_code == 200
    assert "https://hooks.example/in" in change.content.decode()
    assert endpoint.secret not in changelist.content.decode()
    assert endpoint.secret not in change.content.decode()


def test_an_admin_disables_and_enables_endpoints(customer, shop_admin):
    endpoint = make_endpoint(customer, "https://hooks.example/in")
    client = logged_in(shop_admin)

    client.post(
        "/admin/notifications/webhookendpoint/",
        {"action": "disable", "_selected_action": [endpoint.pk]},
    )
    endpoint.refresh_from_db()
    assert endpoint.active is False

    client.post(
        "/admin/notifications/webhookendpoint/",
        {"action": "enable", "_selected_action": [endpoint.pk]},
    )
    endpoint.refresh_from_db()
    assert endpoint.active is True
