"""Exactly once: one notification per event and channel, one send per notification."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from apps.notifications.models import (
    Notification,
    NotificationChannel,
    NotificationEvent,
    NotificationStatus,
)
from apps.notifications.services import create_once, deliver_notification
from apps.notifications.services import delivery as delivery_module
from apps.notifications.tasks import ORDER_EVENT_TASKS
from apps.orders.models import Order
from ecommerce.outbox import relay_pending
from ecommerce.outbox.models import OutboxMessage
from tests.notifications.conftest import make_endpoint, place_order
from tests.notifications.receivers import Answer, webhook_receiver

S = NotificationStatus


def ping_notification(endpoint: Any) -> Notification:
    notification, _ = create_once(
        recipient_id=endpoint.owner_id,
        channel=NotificationChannel.WEBHOOK,
        event=NotificationEvent.PING,
        subject="ping:race",
        context={},
        endpoint_id=endpoint.pk,
    )
    return notification


@pytest.mark.django_db
@pytest.mark.usefixtures("allow_local")
def test_the_same_domain_event_twice_gives_one_delivery_per_channel(
    customer, client_for, on_commit
):
    with webhook_receiver() as receiver:
        make_endpoint(customer, receiver.url(), events=["order_paid"])
        with on_commit():
            order = place_order(client_for(customer))
        order_pk = Order.objects.get(public_id=order["id"]).pk
        # The relay hands the completed order.paid message over again (as after a lost
        # completion), and a worker runs the handler once more by hand.
        OutboxMessage.objects.filter(topic="order.paid").update(completed_at=None)
        with on_commit():
            assert relay_pending(min_age_seconds=0) == 1
            ORDER_EVENT_TASKS[NotificationEvent.ORDER_PAID].apply(kwargs={"order_id": order_pk})

    paid = Notification.objects.filter(event="order_paid")
    assert sorted(paid.values_list("channel", "status")) == [("email", "sent"), ("webhook", "sent")]
    assert paid.get(channel="webhook").attempts == 1
    assert len(receiver.requests) == 1
    assert [m.subject for m in mail.outbox].count(
        f"Payment received for order {order['id'][:8]}"
    ) == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("allow_local")
def test_two_workers_racing_one_notification_deliver_it_once(customer):
    outcomes = race_two_workers(customer)

    assert sorted(outcomes) == ["busy", "sent"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("allow_local")
def test_the_row_lock_alone_keeps_a_second_worker_out_when_the_redis_lock_is_lost(
    customer, monkeypatch
):
    @contextmanager
    def expired_lock(name: str, **kwargs: Any) -> Iterator[str]:
        yield "no-lock"  # as if the first holder's TTL had run out

    monkeypatch.setattr(delivery_module, "distributed_lock", expired_lock)

    outcomes = race_two_workers(customer)

    assert sorted(outcomes) == ["sent", "skipped"]


def race_two_workers(customer: Any) -> list[str]:
    """Two threads deliver one notification at the same moment to a slow receiver; the
    receiver must see one request, and the row ends sent after one attempt."""
    outcomes: list[str] = []
    with webhook_receiver(default=Answer(200, delay_seconds=0.3)) as receiver:
        notification = ping_notification(make_endpoint(customer, receiver.url()))
        start = threading.Barrier(2)

        def worker() -> None:
            try:
                start.wait(timeout=5)
                outcomes.append(deliver_notification(notification_id=notification.pk).outcome)
            finally:
                connection.close()

        threads = [threading.Thread(target=worker) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)

    notification.refresh_from_db()
    assert len(receiver.requests) == 1
    assert (notification.status, notification.attempts) == (S.SENT, 1)
    return outcomes


@pytest.mark.django_db
@pytest.mark.usefixtures("allow_local")
def test_a_notification_being_sent_is_skipped_and_an_abandoned_one_is_taken_again(
    customer, settings
):
    with webhook_receiver() as receiver:
        notification = ping_notification(make_endpoint(customer, receiver.url()))
        Notification.objects.filter(pk=notification.pk).update(status=S.SENDING, attempts=1)

        assert deliver_notification(notification_id=notification.pk).outcome == "skipped"
        assert receiver.requests == []

        # Its worker died: untouched for longer than the lock TTL, the row is taken again.
        abandoned_at = timezone.now() - timedelta(
            seconds=settings.NOTIFICATION_LOCK_TTL_SECONDS + 1
        )
        Notification.objects.filter(pk=notification.pk).update(updated_at=abandoned_at)
        assert deliver_notification(notification_id=notification.pk).outcome == "sent"

    notification.refresh_from_db()
    assert len(receiver.requests) == 1
    assert (notification.status, notification.attempts) == (S.SENT, 2)


@pytest.mark.django_db
def test_a_sent_notification_is_never_sent_again_by_a_late_task(customer, on_commit):
    notification, _ = create_once(
        recipient_id=customer.pk,
        channel=NotificationChannel.EMAIL,
        event=NotificationEvent.USER_REGISTERED,
        subject=f"user:{customer.pk}",
        context={},
    )
    assert deliver_notification(notification_id=notification.pk).outcome == "sent"

    assert deliver_notification(notification_id=notification.pk).outcome == "skipped"

    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_a_transient_failure_asks_for_a_retry_after_the_destinations_retry_after(
    customer, allow_local, settings
):
    settings.WEBHOOK_RETRY_CAP_SECONDS = 60
    with webhook_receiver(default=Answer(429, headers={"Retry-After": "7"})) as receiver:
        notification = ping_notification(make_endpoint(customer, receiver.url()))
        result = deliver_notification(notification_id=notification.pk)

    notification.refresh_from_db()
    assert (result.outcome, result.retry_in_seconds) == ("retry", 7.0)
    assert (notification.status, notification.attempts) == (S.PENDING, 1)


def failed_email(customer: Any, subject: str, *, created_days_ago: int = 0) -> Notification:
    notification, _ = create_once(
        recipient_id=customer.pk,
        channel=NotificationChannel.EMAIL,
        event=NotificationEvent.USER_REGISTERED,
        subject=subject,
        context={},
    )
    Notification.objects.filter(pk=notification.pk).update(
        status=S.FAILED,
        attempts=3,
        last_error="attempt 3: SMTP 451",
        created_at=timezone.now() - timedelta(days=created_days_ago),
    )
    return notification


@pytest.mark.django_db
def test_retry_notifications_failed_resends_failed_ones_since_a_date(customer, on_commit):
    recent = failed_email(customer, "user:recent")
    old = failed_email(customer, "user:old", created_days_ago=10)
    since = (timezone.now() - timedelta(days=1)).date().isoformat()
    out = io.StringIO()

    with on_commit():
        call_command("retry_notifications", "--failed", "--since", since, stdout=out)

    recent.refresh_from_db()
    old.refresh_from_db()
    assert out.getvalue() == "Queued 1 notification(s).\n"
    assert (recent.status, recent.attempts, recent.last_error) == (S.SENT, 1, "")
    assert (old.status, old.attempts) == (S.FAILED, 3)
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_retry_notifications_without_failed_requeues_only_lost_ones(customer, on_commit, settings):
    failed_email(customer, "user:failed")
    lost, _ = create_once(
        recipient_id=customer.pk,
        channel=NotificationChannel.EMAIL,
        event=NotificationEvent.USER_REGISTERED,
        subject="user:lost",
        context={},
    )
    quiet = timezone.now() - timedelta(seconds=settings.NOTIFICATION_LOCK_TTL_SECONDS + 5)
    Notification.objects.filter(pk=lost.pk).update(updated_at=quiet)
    create_once(
        recipient_id=customer.pk,
        channel=NotificationChannel.EMAIL,
        event=NotificationEvent.USER_REGISTERED,
        subject="user:fresh",
        context={},
    )

    out = io.StringIO()
    with on_commit():
        call_command("retry_notifications", stdout=out)

    assert out.getvalue() == "Queued 1 notification(s).\n"
    statuses = dict(Notification.objects.values_list("subject", "status"))
    assert statuses == {"user:failed": S.FAILED, "user:lost": S.SENT, "user:fresh": S.PENDING}


def test_retry_notifications_refuses_a_malformed_since():
    with pytest.raises(CommandError, match="not an ISO 8601"):
        call_command("retry_notifications", "--since", "last tuesday")
