"""Domain events reach notifications through the outbox; the app's start-up checks."""

from __future__ import annotations

import pytest

from apps.notifications.checks import check_notification_settings
from apps.notifications.services import notify_order_event, notify_user_registered
from apps.users.exceptions import EmailAlreadyRegistered
from apps.users.services import register_user
from ecommerce.outbox import registry
from ecommerce.outbox.models import OutboxMessage


@pytest.mark.django_db
def test_registration_publishes_user_registered_in_its_own_transaction():
    user = register_user(email="Kim@Example.com", name="Kim")
    with pytest.raises(EmailAlreadyRegistered):
        register_user(email="kim@example.com", name="Kim again")

    messages = OutboxMessage.objects.filter(topic="user.registered")
    assert list(messages.values_list("payload", flat=True)) == [{"user_id": user.pk}]


def test_every_user_and_order_topic_has_a_notifications_handler():
    topics = [
        "user.registered",
        "order.placed",
        "order.paid",
        "order.payment_failed",
        "order.cancelled",
        "order.expired",
        "order.fulfilled",
        "order.refunded",
    ]
    handlers = {topic: registry.handlers_for(topic) for topic in topics}

    for topic, found in handlers.items():
        ours = [h for h in found if h.task_name.startswith("notifications.")]
        assert len(ours) == 1, topic
        assert ours[0].queue == "notifications"
    delivery = registry.handlers_for("notification.delivery_requested")
    assert [(h.task_name, h.queue) for h in delivery] == [
        ("notifications.deliver", "notifications")
    ]


@pytest.mark.django_db
def test_events_about_missing_subjects_make_no_notification():
    assert notify_order_event(event="order_paid", order_id=999_999) == []
    assert notify_user_registered(user_id=999_999) == []


def test_the_start_up_check_reports_bad_settings(settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["hooks.internal", " "]
    settings.NOTIFICATION_RETRY_BASE_SECONDS = 0
    settings.WEBHOOK_RETRY_BASE_SECONDS = 0
    settings.WEBHOOK_READ_TIMEOUT_SECONDS = -1
    settings.WEBHOOK_SECRET_ROTATION_OVERLAP_SECONDS = -5

    ids = sorted(message.id for message in check_notification_settings())

    assert ids == [
        "notifications.E001",
        "notifications.E001",
        "notifications.E002",
        "notifications.E003",
        "notifications.E003",
    ]


def test_the_start_up_check_passes_the_defaults():
    assert check_notification_settings() == []
