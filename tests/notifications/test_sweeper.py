"""The sweeper: events that missed their notifications get them, due deliveries get queued,
retries wait in the database, and a webhook fails for good only past its horizon."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core import mail
from django.utils import timezone
from prometheus_client import REGISTRY

from apps.notifications.models import (
    Notification,
    NotificationChannel,
    NotificationEvent,
    NotificationStatus,
)
from apps.notifications.services import (
    create_once,
    deliver_notification,
    send_webhook_ping,
    sweep_notifications,
)
from apps.orders.models import Order, OrderEvent
from ecommerce.celery import app
from ecommerce.outbox import registry
from tests.notifications.conftest import make_endpoint, place_order
from tests.notifications.receivers import Answer, webhook_receiver
from tests.users.factories import UserFactory

S = NotificationStatus
pytestmark = pytest.mark.django_db


def sweep_count(action: str) -> float:
    value = REGISTRY.get_sample_value(
        "ecommerce_notification_sweep_actions_total", {"action": action}
    )
    return value or 0.0


def aged(seconds: float) -> Any:
    return timezone.now() - timedelta(seconds=seconds)


def lost_order(client: Any) -> Order:
    """An order whose outbox messages were never handed over (no commit callbacks ran),
    placed two minutes ago: past the sweeper's grace period."""
    order = Order.objects.get(public_id=place_order(client)["id"])
    OrderEvent.objects.filter(order=order).update(created_at=aged(120))
    return order


def email_for(customer: Any, subject: str) -> Notification:
    notification, _ = create_once(
        recipient_id=customer.pk,
        channel=NotificationChannel.EMAIL,
        event=NotificationEvent.USER_REGISTERED,
        subject=subject,
        context={},
    )
    return notification


def test_beat_runs_the_sweeper_and_webhook_deliveries_have_their_own_queue():
    entry = django_settings.CELERY_BEAT_SCHEDULE["sweep-notifications"]
    app.loader.import_default_modules()

    assert entry["task"] == "notifications.sweep" in app.tasks
    assert entry["schedule"] == django_settings.NOTIFICATION_SWEEP_INTERVAL_SECONDS
    handlers = registry.handlers_for("notification.webhook_delivery_requested")
    assert [(h.task_name, h.queue) for h in handlers] == [
        ("notifications.deliver_webhook", "webhooks")
    ]
    routes = django_settings.CELERY_TASK_ROUTES
    assert routes["notifications.deliver_webhook"] == {"queue": "webhooks"}


@pytest.mark.usefixtures("allow_local")
def test_an_order_event_whose_handler_never_ran_gets_its_notifications(
    customer, client_for, on_commit
):
    with webhook_receiver() as receiver:
        endpoint = make_endpoint(customer, receiver.url(), events=["order_placed"])
        order = lost_order(client_for(customer))
        assert not Notification.objects.exists()
        handled_before = sweep_count("events_handled")

        with on_commit():
            first = sweep_notifications()
        with on_commit():
            second = sweep_notifications()

    assert (first.events_handled, second.events_handled) == (1, 0)
    assert sweep_count("events_handled") - handled_before == 1
    rows = Notification.objects.order_by("channel")
    assert [(n.event, n.subject, n.channel, n.status) for n in rows] == [
        ("order_placed", f"order:{order.pk}", "email", S.SENT),
        ("order_placed", f"order:{order.pk}", "webhook", S.SENT),
    ]
    assert rows.get(channel="webhook").endpoint == endpoint
    assert len(receiver.requests) == 1
    assert len(mail.outbox) == 1


def test_an_event_within_the_grace_period_is_left_to_the_outbox(customer, client_for):
    place_order(client_for(customer))

    assert sweep_notifications().events_handled == 0
    assert not Notification.objects.exists()


def test_an_event_older_than_the_lookback_is_not_swept(customer, client_for, settings):
    order = lost_order(client_for(customer))
    OrderEvent.objects.filter(order=order).update(
        created_at=aged(settings.NOTIFICATION_SWEEP_LOOKBACK_SECONDS + 60)
    )

    assert sweep_notifications().events_handled == 0
    assert not Notification.objects.exists()


def test_every_status_event_maps_to_its_notification(customer, client_for, on_commit):
    order = lost_order(client_for(customer))
    for to in ("paid", "fulfilled"):
        OrderEvent.objects.create(order=order, from_status="x", to_status=to, created_at=aged(90))
    OrderEvent.objects.filter(order=order).update(created_at=aged(90))

    with on_commit():
        assert sweep_notifications().events_handled == 3

    assert sorted(Notification.objects.values_list("event", flat=True)) == [
        "order_fulfilled",
        "order_paid",
        "order_placed",
    ]


def test_the_sweep_handles_at_most_its_batch_per_run(customer, client_for, settings):
    settings.NOTIFICATION_SWEEP_BATCH_SIZE = 1
    client = client_for(customer)
    lost_order(client)
    lost_order(client)

    handled = [sweep_notifications().events_handled for _ in range(3)]

    assert handled == [1, 1, 0]
    assert Notification.objects.filter(event="order_placed").count() == 2


def test_a_registration_without_its_welcome_email_gets_one(on_commit):
    newcomer = UserFactory()
    staff = UserFactory(roles=["support"], is_staff=True)
    UserFactory._meta.model.objects.filter(pk__in=[newcomer.pk, staff.pk]).update(
        date_joined=aged(300)
    )

    with on_commit():
        result = sweep_notifications()

    assert result.events_handled == 1
    welcome = Notification.objects.get()
    assert (welcome.event, welcome.recipient, welcome.status) == (
        "user_registered",
        newcomer,
        S.SENT,
    )
    assert [m.to for m in mail.outbox] == [[newcomer.email]]


@pytest.mark.usefixtures("allow_local")
def test_a_long_retry_waits_in_the_database_until_the_sweeper_queues_it(
    customer, on_commit, settings
):
    settings.WEBHOOK_RETRY_CAP_SECONDS = 600
    answers = [Answer(503, headers={"Retry-After": "300"})]
    with webhook_receiver(answers, default=200) as receiver:
        endpoint = make_endpoint(customer, receiver.url(), events=["order_paid"])
        notification, _ = create_once(
            recipient_id=customer.pk,
            channel=NotificationChannel.WEBHOOK,
            event=NotificationEvent.ORDER_PAID,
            subject="order:1",
            context={},
            endpoint_id=endpoint.pk,
        )
        result = deliver_notification(notification_id=notification.pk)
        notification.refresh_from_db()
        assert (result.outcome, result.retry_in_seconds) == ("scheduled", 300.0)
        assert (notification.status, notification.attempts) == (S.PENDING, 1)
        wait = (notification.next_attempt_at - timezone.now()).total_seconds()
        assert 295 < wait <= 300

        # Not due: neither the sweeper nor a duplicate message makes an attempt.
        assert sweep_notifications().requeued == 0
        assert deliver_notification(notification_id=notification.pk).outcome == "skipped"
        assert len(receiver.requests) == 1

        # Five minutes later: the wait is over.
        Notification.objects.filter(pk=notification.pk).update(
            updated_at=aged(301), next_attempt_at=aged(1)
        )
        with on_commit():
            assert sweep_notifications().requeued == 1
        assert sweep_notifications().requeued == 0

    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == (S.SENT, 2)
    assert notification.next_attempt_at is None
    assert len(receiver.requests) == 2


def test_a_queued_delivery_that_never_ran_is_queued_again_after_the_threshold(
    customer, on_commit, settings
):
    lost = email_for(customer, "user:lost")
    Notification.objects.filter(pk=lost.pk).update(
        updated_at=aged(settings.NOTIFICATION_REQUEUE_AFTER_SECONDS + 5)
    )
    fresh = email_for(customer, "user:fresh")

    with on_commit():
        assert sweep_notifications().requeued == 1

    statuses = dict(Notification.objects.values_list("pk", "status"))
    assert statuses == {lost.pk: S.SENT, fresh.pk: S.PENDING}


def test_a_send_abandoned_by_a_dead_worker_is_queued_again(customer, on_commit, settings):
    abandoned = email_for(customer, "user:abandoned")
    Notification.objects.filter(pk=abandoned.pk).update(
        status=S.SENDING,
        attempts=1,
        first_attempt_at=aged(600),
        updated_at=aged(settings.NOTIFICATION_LOCK_TTL_SECONDS + 5),
    )
    busy = email_for(customer, "user:busy")
    Notification.objects.filter(pk=busy.pk).update(status=S.SENDING, attempts=1)

    with on_commit():
        assert sweep_notifications().requeued == 1

    abandoned.refresh_from_db()
    busy.refresh_from_db()
    assert (abandoned.status, abandoned.attempts) == (S.SENT, 2)
    assert busy.status == S.SENDING
    assert len(mail.outbox) == 1


def failing_order_webhook(customer: Any, url: str, subject: str, **state: Any) -> Notification:
    endpoint = customer.webhook_endpoints.first() or make_endpoint(customer, url)
    notification, _ = create_once(
        recipient_id=customer.pk,
        channel=NotificationChannel.WEBHOOK,
        event=NotificationEvent.ORDER_PAID,
        subject=subject,
        context={},
        endpoint_id=endpoint.pk,
    )
    Notification.objects.filter(pk=notification.pk).update(**state)
    return notification


@pytest.mark.usefixtures("allow_local")
def test_a_webhook_fails_for_good_only_past_its_horizon_and_its_owner_hears_once_a_day(
    customer, on_commit, settings
):
    settings.WEBHOOK_MAX_ATTEMPTS = 100
    settings.WEBHOOK_RETRY_HORIZON_SECONDS = 3600
    with webhook_receiver(default=503) as receiver:
        young = failing_order_webhook(
            customer, receiver.url(), "order:1", attempts=5, first_attempt_at=aged(3590)
        )
        with on_commit():
            young_result = deliver_notification(notification_id=young.pk)
        old = failing_order_webhook(
            customer, receiver.url(), "order:2", attempts=7, first_attempt_at=aged(3601)
        )
        older = failing_order_webhook(
            customer, receiver.url(), "order:3", attempts=9, first_attempt_at=aged(7200)
        )
        with on_commit():
            outcomes = [deliver_notification(notification_id=n.pk).outcome for n in (old, older)]

    young.refresh_from_db()
    old.refresh_from_db()
    # Within the horizon: retried, never later than the horizon's end.
    assert young_result.outcome == "retry"
    assert young.status == S.PENDING
    assert young.next_attempt_at <= young.first_attempt_at + timedelta(seconds=3600)
    # Past it: failed for good, and the owner is told once for the day, naming the endpoint.
    assert outcomes == ["failed", "failed"]
    assert (old.status, old.attempts) == (S.FAILED, 8)
    assert old.last_error.startswith("attempt 8: HTTP 503")
    assert len(receiver.requests) == 3
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    endpoint = customer.webhook_endpoints.get()
    assert message.to == [customer.email]
    assert message.subject == "A webhook delivery to your endpoint failed"
    assert endpoint.url in message.body
    assert f"(id {endpoint.pk})" in message.body
    assert str(old.public_id) in message.body
    assert "8 attempt(s)" in message.body
    endpoint.refresh_from_db()
    assert (endpoint.active, endpoint.consecutive_failures) == (True, 2)


@pytest.mark.usefixtures("allow_local")
def test_a_wait_longer_than_the_broker_limit_is_not_retried_by_the_task(
    customer, on_commit, settings
):
    """The task retries on the broker only waits up to NOTIFICATION_BROKER_RETRY_MAX_SECONDS;
    (eager retries run at once, so a retried one would reach the receiver again)."""
    settings.NOTIFICATION_BROKER_RETRY_MAX_SECONDS = 0
    settings.WEBHOOK_RETRY_BASE_SECONDS = settings.WEBHOOK_RETRY_CAP_SECONDS = 0.5
    with webhook_receiver([500], default=200) as receiver:
        endpoint = make_endpoint(customer, receiver.url())
        with on_commit():
            notification = send_webhook_ping(owner=customer, endpoint_id=endpoint.pk)

    notification.refresh_from_db()
    assert len(receiver.requests) == 1
    assert (notification.status, notification.attempts) == (S.PENDING, 1)
    assert notification.next_attempt_at is not None
