"""Notifications on real workers with the real broker: emails on the `notifications` pool,
webhooks on a pool of their own (`webhooks`, as the Procfile's `webhooks` process), retries
as broker countdowns or waiting in the database for the sweeper, and the circuit breaker.

The eager tests in tests/notifications prove the logic; these prove the wiring: the
routing to the right queue, `self.retry` on a broker, and that a slow receiver holds only
the webhook workers while charges go on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from apps.notifications.models import Notification, NotificationStatus, WebhookEndpoint
from apps.notifications.services import send_webhook_ping, sweep_notifications
from apps.notifications.services.endpoints import new_secret
from apps.orders.models import Order, OrderStatus
from tests.catalog.factories import make_product
from tests.integration.conftest import XDIST_WORKER
from tests.integration.helpers import logged, place, placed_order, wait_until
from tests.integration.processes import Broker, CeleryWorker, Workers
from tests.notifications.receivers import Answer, SmtpSink, smtp_server, webhook_receiver
from tests.users.factories import UserFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

S = NotificationStatus
# The webhook pool's settings: quick timeouts and retries, local receivers allowed. Retries
# (at most 0.3 s) wait on the broker; a wait for an open breaker (about its 5 s recovery)
# is longer than NOTIFICATION_BROKER_RETRY_MAX_SECONDS, so it waits in the database for
# the sweeper. Receivers on `localhost` have a breaker that opens after two failures and
# stays open 5 s, far longer than a retry takes to come back (so that retry is refused);
# on `127.0.0.1`, one that a slow receiver never opens. One set of settings for every
# test: a worker restart costs seconds.
WEBHOOK_WORKER_SETTINGS = {
    "WEBHOOK_ALLOWED_HOSTS": "127.0.0.1,localhost",
    "WEBHOOK_CONNECT_TIMEOUT_SECONDS": "1",
    "WEBHOOK_READ_TIMEOUT_SECONDS": "1",
    "WEBHOOK_RETRY_BASE_SECONDS": "0.15",
    "WEBHOOK_RETRY_CAP_SECONDS": "0.3",
    "WEBHOOK_MAX_ATTEMPTS": "3",
    "NOTIFICATION_BROKER_RETRY_MAX_SECONDS": "0.5",
    "CIRCUIT_BREAKERS": json.dumps(
        {
            "webhook:localhost": {"failure_threshold": 2, "recovery_timeout_seconds": 5},
            "webhook:127.0.0.1": {"failure_threshold": 1000},
        }
    ),
}


# A worker for any queues: CeleryWorker takes them.
QueueWorker = CeleryWorker


class WebhookPool:
    """The `webhooks` worker of this test process, restarted only when its settings change."""

    def __init__(self, *, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.started = 0
        self.current: QueueWorker | None = None
        self._overrides: dict[str, str] = {}

    def running(self, **overrides: str) -> QueueWorker:
        if self.current is not None and self.current.alive and overrides == self._overrides:
            return self.current
        self.stop()
        self.started += 1
        name = f"it-webhooks-{XDIST_WORKER}-{self.started}"
        self.current = QueueWorker(
            env={**self.env, **WEBHOOK_WORKER_SETTINGS, **overrides},
            nodename=f"{name}@127.0.0.1",
            log_path=self.log_dir / f"{name}.log",
            queues=("webhooks",),
        )
        self._overrides = dict(overrides)
        return self.current

    def stop(self) -> None:
        if self.current is not None:
            self.current.stop()
            self.current = None


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[SmtpSink, int]]:
    with smtp_server() as server:
        yield server


@pytest.fixture(scope="module")
def webhook_pool(process_env: dict[str, str], integration_dir: Path) -> Iterator[WebhookPool]:
    pool = WebhookPool(env=process_env, log_dir=integration_dir)
    yield pool
    pool.stop()


@pytest.fixture
def email_worker(workers: Workers, publishing: Broker, smtp: tuple[SmtpSink, int]) -> CeleryWorker:
    """The shared worker (default, payments, notifications), sending mail to the SMTP sink."""
    sink, port = smtp
    sink.messages.clear()
    return workers.running(EMAIL_URL=f"smtp://127.0.0.1:{port}")


@pytest.fixture
def webhook_worker(webhook_pool: WebhookPool, email_worker: CeleryWorker) -> QueueWorker:
    """Both pools up: the shared one and the `webhooks` one."""
    return webhook_pool.running()


def endpoint_for(owner: Any, url: str, events: list[str]) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(owner=owner, url=url, events=events, secret=new_secret())


def settled(notification: Notification) -> Notification | None:
    notification.refresh_from_db()
    return notification if notification.status in (S.SENT, S.FAILED) else None


def waited(
    check: Callable[[], Notification | None], *, what: str, worker: CeleryWorker
) -> Notification:
    """wait_until for a notification: the one `check` returned once it returned one."""
    found = wait_until(check, what=what, worker=worker)
    assert found is not None
    return found


def test_order_emails_are_delivered_by_the_worker_over_smtp(
    email_worker: CeleryWorker, smtp: tuple[SmtpSink, int], client: APIClient, buyer: Any
) -> None:
    make_product(sku="mail", stock=3, price="4.00")

    order = placed_order(place(client, "mail", 2))

    def both_sent() -> bool:
        rows = Notification.objects.filter(subject=f"order:{order.pk}", channel="email")
        return sorted(rows.values_list("event", "status")) == [
            ("order_paid", S.SENT),
            ("order_placed", S.SENT),
        ]

    wait_until(both_sent, what="order emails sent", worker=email_worker)
    sink, _ = smtp
    short = str(order.public_id)[:8]
    assert sorted(m["Subject"] for m in sink.messages) == sorted(
        [f"We received your order {short}", f"Payment received for order {short}"]
    )
    assert {m["To"] for m in sink.messages} == {buyer.email}
    assert logged(email_worker, "notification_sent", channel="email", event_name="order_paid")


def test_a_receiver_failing_twice_gets_exactly_one_successful_delivery(
    webhook_worker: QueueWorker, buyer: Any
) -> None:
    with webhook_receiver([500, 500], default=200) as receiver:
        endpoint = endpoint_for(buyer, receiver.url(), ["order_paid"])
        notification = send_webhook_ping(owner=buyer, endpoint_id=endpoint.pk)

        done = waited(lambda: settled(notification), what="ping settled", worker=webhook_worker)

    assert (done.status, done.attempts) == (S.SENT, 3)
    assert [r.headers["x-webhook-id"] for r in receiver.requests] == [str(done.public_id)] * 3
    retries = logged(webhook_worker, "notification_retry", notification_id=done.pk)
    assert [(line["attempts"], line["waits_in"]) for line in retries] == [
        (1, "broker"),
        (2, "broker"),
    ]
    assert len(logged(webhook_worker, "notification_sent", notification_id=done.pk)) == 1


def test_an_open_breaker_does_not_use_up_a_deliverys_attempts(
    webhook_worker: QueueWorker, broker: Broker, buyer: Any
) -> None:
    """Three attempts allowed; two failures open the `localhost` breaker (5 s recovery).
    The refused call is not an attempt: it waits for the breaker in the database (no
    message in the broker) until the sweeper queues it, and the third real attempt, the
    breaker's trial, delivers."""
    worker = webhook_worker
    with webhook_receiver([503, 503], default=200) as receiver:
        endpoint = endpoint_for(buyer, receiver.url(host="localhost"), ["order_paid"])
        notification = send_webhook_ping(owner=buyer, endpoint_id=endpoint.pk)

        def refused() -> Notification | None:
            notification.refresh_from_db()
            waiting = notification.last_error.startswith("not attempted")
            return notification if waiting and notification.status == S.PENDING else None

        waiting = waited(refused, what="refused by the open breaker", worker=worker)
        assert waiting.attempts == 2
        assert waiting.next_attempt_at is not None
        assert broker.redis.llen("webhooks") == 0

        def swept_and_settled() -> Notification | None:
            sweep_notifications()
            return settled(notification)

        done = waited(swept_and_settled, what="delivered after a sweep", worker=worker)

    assert (done.status, done.attempts) == (S.SENT, 3)
    assert len(receiver.requests) == 3
    retries = logged(worker, "notification_retry", notification_id=done.pk)
    breaker_waits = [line for line in retries if line["error"].startswith("not attempted")]
    assert breaker_waits, worker.log_tail()
    assert {(line["attempts"], line["waits_in"]) for line in breaker_waits} == {(2, "database")}
    assert "circuit breaker 'webhook:localhost' is open" in breaker_waits[0]["error"]


def times_to_paid(client: APIClient, sku: str, count: int, worker: CeleryWorker) -> list[float]:
    """Place `count` orders one after the other; seconds from each placement to `paid`."""
    placed_at = {}
    for _ in range(count):
        order = placed_order(place(client, sku))
        placed_at[order.pk] = time.monotonic()
    paid_after: dict[int, float] = {}

    def all_paid() -> bool:
        statuses = dict(Order.objects.filter(pk__in=placed_at).values_list("pk", "status"))
        for order_id, started in placed_at.items():
            if order_id not in paid_after and statuses[order_id] == OrderStatus.PAID:
                paid_after[order_id] = time.monotonic() - started
        return len(paid_after) == len(placed_at)

    wait_until(all_paid, what=f"{count} orders paid", timeout_seconds=20, worker=worker)
    return sorted(round(seconds, 2) for seconds in paid_after.values())


def test_a_slow_receiver_holds_only_the_webhook_pool_while_charges_go_on(
    webhook_worker: QueueWorker, email_worker: CeleryWorker, client_for: Any, buyer: Any
) -> None:
    """Tenant A's receiver answers after 2 s (the timeout is 1 s) to every event of six
    orders: the two webhook workers are busy for seconds. Tenant B's orders, placed just
    after, are charged by the other pool and paid while A's deliveries still queue."""
    make_product(sku="slow", stock=50, price="3.00")
    tenant_b = client_for(UserFactory())
    baseline = times_to_paid(tenant_b, "slow", 3, email_worker)
    with webhook_receiver(default=Answer(200, delay_seconds=2.0)) as receiver:
        endpoint_for(buyer, receiver.url(), ["order_placed", "order_paid"])
        tenant_a = client_for(buyer)
        for _ in range(6):
            placed_order(place(tenant_a, "slow"))
        wait_until(
            lambda: len(receiver.requests) >= 2, what="slow deliveries", worker=webhook_worker
        )

        during = times_to_paid(tenant_b, "slow", 3, email_worker)
        in_flight = Notification.objects.filter(
            channel="webhook", recipient=buyer, status__in=(S.PENDING, S.SENDING)
        ).count()
        answered = len(receiver.requests)
        WebhookEndpoint.objects.filter(owner=buyer).update(active=False)  # end the backlog

    print(
        f"\ntenant B time to paid (s): alone {baseline}, during the slow receiver {during}; "
        f"tenant A webhook deliveries still queued then: {in_flight} of 12, "
        f"receiver calls so far: {answered}"
    )
    assert in_flight > 0
    assert max(during) < 10
