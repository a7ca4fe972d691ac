"""The notifications admin as staff read it: emails and order public ids instead of internal
ids, data rendered readably, no Save button; resend and enable/disable say what they did and
why not; webhook endpoints only with the permission meant for it; deleting an endpoint keeps
its delivery history."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from apps.notifications.models import Notification, NotificationStatus, WebhookEndpoint
from apps.notifications.services import create_once, delete_webhook_endpoint
from ecommerce.api.permissions import Role
from tests.notifications.conftest import make_endpoint
from tests.users.factories import UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("notification_grants")]

NOTIFICATIONS = "/admin/notifications/notification/"
ENDPOINTS = "/admin/notifications/webhookendpoint/"
ORDER_ID = "5b0c2a8e-7d1f-4c3e-9a61-0f2d8e4b7c19"


def logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def messages_of(response: Any) -> list[tuple[str, str]]:
    return [(m.level_tag, m.message) for m in get_messages(response.wsgi_request)]


def order_email(user: Any, *, order_pk: int = 41) -> Notification:
    notification, _ = create_once(
        recipient_id=user.pk,
        channel="email",
        event="order_paid",
        subject=f"order:{order_pk}",
        context={"order": {"id": ORDER_ID, "status": "paid", "total": {"amount": "25.00"}}},
    )
    return notification


def webhook_for(endpoint: WebhookEndpoint, *, subject: str = "order:41") -> Notification:
    notification, _ = create_once(
        recipient_id=endpoint.owner_id,
        channel="webhook",
        event="order_paid",
        subject=subject,
        context={"order": {"id": ORDER_ID}},
        endpoint_id=endpoint.pk,
    )
    return notification


@pytest.fixture
def superuser() -> Any:
    return UserFactory(is_staff=True, is_superuser=True)


# --- What staff read ---------------------------------------------------------------------------


def test_the_list_shows_the_recipients_email_and_the_orders_public_id(customer, support):
    # given
    order_email(customer)

    # when
    response = logged_in(support).get(NOTIFICATIONS)

    # then
    assert response.status_code == 200
    page = response.content.decode()
    assert customer.email in page
    assert ORDER_ID in page
    assert 'href="/admin/orders/order/41/change/"' in page
    assert "order:41" not in page


def test_the_page_titles_by_email_and_renders_the_data_readably(customer, support):
    # given
    notification = order_email(customer)

    # when
    response = logged_in(support).get(f"{NOTIFICATIONS}{notification.pk}/change/")

    # then
    page = response.content.decode()
    assert f"Order paid to {customer.email} by email" in page
    assert f"to {customer.pk} (" not in page
    assert "<th>total</th>" in page
    assert "25.00" in page
    assert '{"order"' not in page
    assert "{&#x27;order" not in page


@pytest.mark.parametrize("who", ["support", "shop_admin"])
def test_a_notification_page_has_no_save_button(customer, who, request):
    notification = order_email(customer)

    response = logged_in(request.getfixturevalue(who)).get(
        f"{NOTIFICATIONS}{notification.pk}/change/"
    )

    assert response.status_code == 200
    assert 'name="_save"' not in response.content.decode()


# --- Resend ------------------------------------------------------------------------------------


def test_resend_names_what_it_queued_and_why_it_skipped_a_deleted_endpoints(
    customer, shop_admin, on_commit
):
    # given: an email, and a webhook whose endpoint its owner deleted
    email = order_email(customer)
    endpoint = make_endpoint(customer, "https://hooks.example/in")
    webhook = webhook_for(endpoint)
    delete_webhook_endpoint(owner=customer, endpoint_id=endpoint.pk)

    # when
    with on_commit():
        response = logged_in(shop_admin).post(
            NOTIFICATIONS, {"action": "resend", "_selected_action": [email.pk, webhook.pk]}
        )

    # then
    assert messages_of(response) == [
        (
            "success",
            f"Queued 1 notification(s) again: {email.public_id} to {customer.email}.",
        ),
        (
            "error",
            f"Notification {webhook.public_id} (Order paid): its webhook endpoint was "
            "deleted, nowhere to send it.",
        ),
    ]


def test_resend_of_nothing_resendable_says_nothing_was_queued(customer, shop_admin):
    endpoint = make_endpoint(customer, "https://hooks.example/in")
    webhook = webhook_for(endpoint)
    delete_webhook_endpoint(owner=customer, endpoint_id=endpoint.pk)

    response = logged_in(shop_admin).post(
        NOTIFICATIONS, {"action": "resend", "_selected_action": [webhook.pk]}
    )

    assert messages_of(response)[0] == ("warning", "Nothing was queued again.")
    webhook.refresh_from_db()
    assert webhook.status == NotificationStatus.PENDING


# --- Webhook endpoints -------------------------------------------------------------------------


def test_support_does_not_see_webhook_endpoints(customer, support):
    endpoint = make_endpoint(customer, "https://hooks.example/in")
    client = logged_in(support)

    assert client.get(ENDPOINTS).status_code == 403
    assert client.get(f"{ENDPOINTS}{endpoint.pk}/change/").status_code == 403
    assert ENDPOINTS not in client.get("/admin/").content.decode()


def test_the_plain_view_permission_is_not_enough(customer):
    # given: staff holding only the model's view permission, not the one for all endpoints
    make_endpoint(customer, "https://hooks.example/in")
    reader = UserFactory(is_staff=True, roles=[Role.SUPPORT])
    assert reader.has_perm("notifications.view_webhookendpoint")

    assert logged_in(reader).get(ENDPOINTS).status_code == 403


def test_the_admin_role_sees_webhook_endpoints(customer, shop_admin):
    make_endpoint(customer, "https://hooks.example/in")

    response = logged_in(shop_admin).get(ENDPOINTS)

    assert response.status_code == 200
    assert "https://hooks.example/in" in response.content.decode()
    assert ENDPOINTS in logged_in(shop_admin).get("/admin/").content.decode()


def test_an_endpoint_page_has_no_save_button(customer, shop_admin):
    endpoint = make_endpoint(customer, "https://hooks.example/in")

    response = logged_in(shop_admin).get(f"{ENDPOINTS}{endpoint.pk}/change/")

    assert response.status_code == 200
    assert 'name="_save"' not in response.content.decode()


def test_enable_and_disable_say_which_endpoints_were_already_so(customer, shop_admin):
    # given
    on = make_endpoint(customer, "https://hooks.example/on")
    off = make_endpoint(customer, "https://hooks.example/off")
    WebhookEndpoint.objects.filter(pk=off.pk).update(active=False)

    # when
    enabled = logged_in(shop_admin).post(
        ENDPOINTS, {"action": "enable", "_selected_action": [on.pk, off.pk]}
    )
    again = logged_in(shop_admin).post(ENDPOINTS, {"action": "enable", "_selected_action": [on.pk]})

    # then
    assert messages_of(enabled) == [
        ("success", "Enabled 1 endpoint(s): https://hooks.example/off."),
        ("info", f"Endpoint https://hooks.example/on ({customer.email}): already enabled."),
    ]
    assert messages_of(again) == [
        ("warning", "Nothing changed: no endpoint was enabled."),
        ("error", f"Endpoint https://hooks.example/on ({customer.email}): already enabled."),
    ]
    assert set(WebhookEndpoint.objects.values_list("active", flat=True)) == {True}


def test_deleting_an_endpoint_in_the_admin_keeps_its_notifications(customer, superuser):
    # given
    endpoint = make_endpoint(customer, "https://hooks.example/in")
    delivered = webhook_for(endpoint)
    client = logged_in(superuser)

    # when: the confirmation says what happens, then the deletion
    confirm = client.get(f"{ENDPOINTS}{endpoint.pk}/delete/")
    deleted = client.post(f"{ENDPOINTS}{endpoint.pk}/delete/", {"post": "yes"})

    # then
    assert confirm.status_code == 200
    assert (
        "Its delivery history is kept, not deleted:\n1 notification sent to this endpoint"
        in confirm.content.decode()
    )
    assert deleted.status_code == 302
    assert not WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()
    delivered.refresh_from_db()
    assert (delivered.endpoint_id, delivered.endpoint_url) == (None, "https://hooks.example/in")
    listing = client.get(NOTIFICATIONS).content.decode()
    assert "https://hooks.example/in (endpoint deleted)" in listing


def test_deleting_endpoints_with_the_bulk_action_keeps_their_notifications(customer, superuser):
    # given: two endpoints with the same event delivered (the dedup must not collide)
    first = make_endpoint(customer, "https://hooks.example/a")
    second = make_endpoint(customer, "https://hooks.example/b")
    kept = [webhook_for(first), webhook_for(second)]

    client = logged_in(superuser)
    chosen = {"action": "delete_selected", "_selected_action": [first.pk, second.pk]}

    # when: the confirmation, then the deletion
    confirm = client.post(ENDPOINTS, chosen)
    response = client.post(ENDPOINTS, {**chosen, "post": "yes"})

    # then
    assert "Their delivery history is kept, not deleted" in confirm.content.decode()
    assert response.status_code == 302
    assert WebhookEndpoint.objects.count() == 0
    assert sorted(
        Notification.objects.filter(pk__in=[n.pk for n in kept]).values_list(
            "endpoint_url", flat=True
        )
    ) == ["https://hooks.example/a", "https://hooks.example/b"]


def test_the_owner_deleting_an_endpoint_keeps_its_notifications(customer):
    endpoint = make_endpoint(customer, "https://hooks.example/in")
    delivered = webhook_for(endpoint)

    delete_webhook_endpoint(owner=customer, endpoint_id=endpoint.pk)

    delivered.refresh_from_db()
    assert (delivered.endpoint_id, delivered.endpoint_url) == (None, "https://hooks.example/in")


def test_staff_find_an_orders_notifications_by_its_public_id(customer, other_customer, support):
    # given
    wanted = order_email(customer)
    create_once(
        recipient_id=other_customer.pk,
        channel="email",
        event="order_paid",
        subject="order:42",
        context={"order": {"id": "0f0f0f0f-0000-4000-8000-000000000000"}},
    )

    # when
    response = logged_in(support).get(NOTIFICATIONS, {"q": ORDER_ID})

    # then
    assert [row.pk for row in response.context["cl"].result_list] == [wanted.pk]


def test_other_subjects_read_as_the_account_or_the_endpoint(customer, support):
    # given
    create_once(
        recipient_id=customer.pk,
        channel="email",
        event="user_registered",
        subject=f"user:{customer.pk}",
        context={},
    )
    create_once(
        recipient_id=customer.pk,
        channel="email",
        event="webhook_disabled",
        subject="webhook:9:2026-01-01T00:00:00",
        context={"endpoint": {"id": 9, "url": "https://hooks.example/gone", "failures": 5}},
    )

    # when
    page = logged_in(support).get(NOTIFICATIONS).content.decode()

    # then
    assert f"Account {customer.email}" in page
    assert "Webhook endpoint https://hooks.example/gone" in page
    assert f"user:{customer.pk}" not in page
