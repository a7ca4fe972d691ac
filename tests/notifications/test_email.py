"""Email delivery through a real SMTP server (aiosmtpd), and every event's templates."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from prometheus_client import REGISTRY

from apps.catalog import services as catalog_services
from apps.notifications.channels.email import render_email
from apps.notifications.models import (
    Notification,
    NotificationChannel,
    NotificationEvent,
    NotificationStatus,
)
from apps.notifications.services import (
    create_once,
    deliver_notification,
    notify_order_event,
    queue_delivery,
)
from apps.orders.models import Order
from tests.notifications.conftest import make_tee, place_order
from tests.notifications.receivers import html_part, smtp_server, text_part
from tests.orders.factories import untaxed_line
from tests.servers import free_port

pytestmark = pytest.mark.django_db


def _counted(outcome: str) -> float:
    return (
        REGISTRY.get_sample_value(
            "ecommerce_notifications_total", {"channel": "email", "outcome": outcome}
        )
        or 0.0
    )


@pytest.fixture
def smtp_settings(settings: Any) -> Any:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 2
    return settings


def test_the_order_paid_email_reaches_a_real_smtp_server_with_items_and_total(
    customer, client_for, on_commit, smtp_settings
):
    with smtp_server() as (sink, port):
        smtp_settings.EMAIL_PORT = port
        with on_commit():
            order = place_order(client_for(customer), quantity=3, price="19.99")

    by_subject = {message["Subject"]: message for message in sink.messages}
    short = order["id"][:8]
    assert set(by_subject) == {
        f"We received your order {short}",
        f"Payment received for order {short}",
    }
    paid = by_subject[f"Payment received for order {short}"]
    assert paid["To"] == customer.email
    assert paid["From"] == "Shop <shop@example.com>"
    notification = Notification.objects.get(event="order_paid", channel="email")
    assert paid["X-Notification-Id"] == str(notification.public_id)
    text = text_part(paid)
    assert f"Hello {customer.name}," in text
    assert "3 x Blue Mug" in text
    assert "at 19.99 EUR = 59.97 EUR" in text
    assert "Total: 59.97 EUR" in text
    assert "status: paid" in text
    html = html_part(paid)
    assert "<td>Blue Mug</td>" in html
    assert "<strong>59.97 EUR</strong>" in html
    assert (notification.status, notification.attempts) == (NotificationStatus.SENT, 1)


def test_a_permanent_smtp_refusal_fails_without_retry(customer, smtp_settings):
    notification, _ = create_once(
        recipient_id=customer.pk,
        channel=NotificationChannel.EMAIL,
        event=NotificationEvent.USER_REGISTERED,
        subject=f"user:{customer.pk}",
        context={},
    )
    failed_before = _counted("failed")
    with smtp_server(refuse_rcpt="550 5.1.1 No such user") as (sink, port):
        smtp_settings.EMAIL_PORT = port
        result = deliver_notification(notification_id=notification.pk)

    notification.refresh_from_db()
    assert result.outcome == "failed"
    assert _counted("failed") == failed_before + 1
    assert sink.messages == []
    assert (notification.status, notification.attempts) == (NotificationStatus.FAILED, 1)
    assert "No such user" in notification.last_error


def test_a_temporary_smtp_refusal_is_retried_until_the_attempts_run_out(
    customer, on_commit, smtp_settings
):
    with smtp_server(refuse_rcpt="451 4.3.0 Try again later") as (sink, port):
        smtp_settings.EMAIL_PORT = port
        with on_commit():
            notification, _ = create_once(
                recipient_id=customer.pk,
                channel=NotificationChannel.EMAIL,
                event=NotificationEvent.USER_REGISTERED,
                subject=f"user:{customer.pk}",
                context={},
            )
            queue_delivery(notification)

    notification.refresh_from_db()
    assert sink.messages == []
    assert (notification.status, notification.attempts) == (NotificationStatus.FAILED, 3)
    assert notification.last_error.startswith("attempt 3:")


def test_an_unreachable_smtp_server_means_retry_later(customer, smtp_settings):
    smtp_settings.EMAIL_PORT = free_port()  # nobody listens
    notification, _ = create_once(
        recipient_id=customer.pk,
        channel=NotificationChannel.EMAIL,
        event=NotificationEvent.USER_REGISTERED,
        subject=f"user:{customer.pk}",
        context={},
    )

    result = deliver_notification(notification_id=notification.pk)

    notification.refresh_from_db()
    assert result.outcome == "retry"
    assert 0 <= result.retry_in_seconds <= 0.01
    assert (notification.status, notification.attempts) == (NotificationStatus.PENDING, 1)
    assert "smtp_unavailable" not in notification.last_error  # the detail, not the code
    assert "ConnectionRefusedError" in notification.last_error


ORDER = {
    "id": "0f6c2a9e-58b8-4a2c-9a55-0d7c2b1c9e11",
    "status": "paid",
    "currency": "EUR",
    "subtotal": "30.00",
    "total": "30.00",
    "items": [
        {
            "sku": "mug",
            "name": "Mug & Co",
            "unit_price": "10.00",
            "quantity": 3,
            "line_total": "30.00",
        },
    ],
}


@pytest.mark.parametrize(
    ("event", "subject", "phrase"),
    [
        ("order_placed", "We received your order 0f6c2a9e", "taking the payment now"),
        ("order_paid", "Payment received for order 0f6c2a9e", "payment of 30.00 EUR"),
        ("payment_failed", "Payment failed for order 0f6c2a9e", "could not take the payment"),
        ("order_cancelled", "Order 0f6c2a9e cancelled", "was cancelled"),
        ("order_expired", "Order 0f6c2a9e expired", "in time, so it expired"),
        ("order_fulfilled", "Order 0f6c2a9e is on its way", "has been fulfilled"),
        ("order_refunded", "Order 0f6c2a9e refunded", "We refunded 30.00 EUR"),
    ],
)
def test_every_order_event_has_its_subject_text_and_html(customer, event, subject, phrase):
    notification = Notification(
        recipient=customer,
        channel="email",
        event=event,
        subject="order:1",
        context={"order": ORDER},
    )

    rendered = render_email(notification)

    assert rendered.subject == subject
    assert phrase in rendered.text
    assert "3 x Mug & Co (mug) at 10.00 EUR = 30.00 EUR" in rendered.text  # not escaped
    assert "Total: 30.00 EUR" in rendered.text
    assert "<td>Mug &amp; Co</td>" in rendered.html  # escaped
    assert phrase.split(",")[0] in rendered.html


def test_order_lines_show_their_variant_and_older_snapshots_still_render(customer):
    """A line names its variant after the product's name; a line of a one-variant product,
    and a snapshot taken before lines had variants, show the product's name alone."""
    order = {
        **ORDER,
        "subtotal": "79.60",
        "total": "79.60",
        "items": [
            {
                "sku": "TEE-BW-M",
                "name": "Organic tee",
                "variant": "M / Black & White",
                "unit_price": "19.90",
                "quantity": 2,
                "line_total": "39.80",
            },
            {
                "sku": "mug",
                "name": "Mug & Co",
                "variant": "",
                "unit_price": "10.00",
                "quantity": 3,
                "line_total": "30.00",
            },
            {  # stored before variants: no "variant" key
                "sku": "POSTER",
                "name": "Poster",
                "unit_price": "9.80",
                "quantity": 1,
                "line_total": "9.80",
            },
        ],
    }
    notification = Notification(
        recipient=customer,
        channel="email",
        event="order_paid",
        subject="order:1",
        context={"order": order},
    )

    rendered = render_email(notification)

    lines = [line.strip() for line in rendered.text.splitlines() if " x " in line]
    assert lines == [
        "2 x Organic tee (M / Black & White) (TEE-BW-M) at 19.90 EUR = 39.80 EUR",
        "3 x Mug & Co (mug) at 10.00 EUR = 30.00 EUR",
        "1 x Poster (POSTER) at 9.80 EUR = 9.80 EUR",
    ]
    assert "<td>Organic tee (M / Black &amp; White)</td><td>TEE-BW-M</td>" in rendered.html
    assert "<td>Mug &amp; Co</td><td>mug</td>" in rendered.html
    assert "<td>Poster</td><td>POSTER</td>" in rendered.html


def test_an_order_email_names_the_variant_bought_as_the_order_line_copied_it(
    customer, client_for, on_commit
):
    tee = make_tee()
    with on_commit():
        order = place_order(client_for(customer), quantity=2, sku="tee-blk-m")

    placed = Notification.objects.get(event="order_placed", channel="email")
    sent = next(m for m in mail.outbox if m.subject == f"We received your order {order['id'][:8]}")
    assert "2 x Organic tee (M / Black) (TEE-BLK-M) at 19.90 EUR = 39.80 EUR" in sent.body
    assert "<td>Organic tee (M / Black)</td>" in sent.alternatives[0][0]
    assert placed.context["order"]["items"] == [
        {
            "sku": "TEE-BLK-M",
            "name": "Organic tee",
            "variant": "M / Black",
            "unit_price": "19.90",
            "quantity": 2,
            "line_total": "39.80",
            **untaxed_line("39.80"),
        }
    ]

    # Renamed in the catalog afterwards: a later event still shows what was bought.
    variant = tee.variants.get(sku="TEE-BLK-M")
    catalog_services.update_variant(variant=variant, name="Medium / Midnight")
    catalog_services.update_product(product=tee, name="Organic tee, 2027 cut")
    order_id = Order.objects.get(public_id=order["id"]).pk
    (fulfilled,) = notify_order_event(event=NotificationEvent.ORDER_FULFILLED, order_id=order_id)

    rendered = render_email(fulfilled)
    assert "2 x Organic tee (M / Black) (TEE-BLK-M) at 19.90 EUR = 39.80 EUR" in rendered.text
    assert "Midnight" not in rendered.text
    assert "2027" not in rendered.html


def test_the_welcome_email_of_a_passwordless_account_carries_a_set_password_link(
    api_client, on_commit
):
    with on_commit():
        response = api_client.post("/api/users", {"name": "Ann", "email": "ann@example.com"})

    assert response.status_code == 201
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.subject == "Welcome to the shop, Ann"
    assert message.to == ["ann@example.com"]
    assert "https://shop.example/set-password?token=" in message.body
    assert "works once and for 72 hours" in message.body
    html = message.alternatives[0][0]
    assert 'href="https://shop.example/set-password?token=' in html


def test_the_welcome_email_of_an_account_with_a_password_has_no_link(api_client, on_commit):
    with on_commit():
        api_client.post(
            "/api/users",
            {"name": "Bo", "email": "bo@example.com", "password": "a-long-enough-passphrase"},
        )

    assert [m.subject for m in mail.outbox] == ["Welcome to the shop, Bo"]
    assert "set-password" not in mail.outbox[0].body
