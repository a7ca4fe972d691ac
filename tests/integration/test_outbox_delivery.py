"""The outbox hand-off on a real worker with a real Redis broker: a message counts as
delivered only once its task has finished, whatever the broker, the database or the
worker did in between.

Tests that break the broker (kill it, freeze it) give it a redis-server of their own on
its own port, and a worker of their own on it, so the shared broker of the other tests is
never touched.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from apps.notifications.models import Notification
from apps.orders.models import Order, OrderStatus
from apps.payments.models import Payment
from apps.payments.services import CHARGE_REQUESTED
from ecommerce import outbox
from ecommerce.outbox import registry
from ecommerce.outbox.models import OutboxMessage
from tests.catalog.factories import make_product
from tests.integration.faults import SamePortRedis
from tests.integration.helpers import (
    logged,
    place,
    placed_order,
    provider_calls,
    publishing_to,
    wait_for_status,
    wait_until,
)
from tests.integration.processes import Broker, CeleryWorker, SandboxServer, Workers

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ONE_SUCCEEDED = {"succeeded": 1, "declined": 0, "total": 1}
CHARGE = "payments.charge_payment"
NOTIFY_PLACED = "notifications.notify_order_placed"


@pytest.fixture
def own_broker() -> Iterator[SamePortRedis]:
    server = SamePortRedis()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def short_lease(settings: Any) -> int:
    """Rows published by this process come back to the relay after 2 s, not 5 minutes."""
    settings.OUTBOX_LEASE_SECONDS = 2
    return 2


def broker_url(server: SamePortRedis) -> str:
    return f"redis://127.0.0.1:{server.port}/0"


def placed_rows(order: Order) -> Any:
    return OutboxMessage.objects.filter(topic="order.placed", payload={"order_id": order.pk})


def all_completed(rows: Any) -> bool:
    return rows.exists() and not rows.filter(completed_at__isnull=True).exists()


def wait_drained(broker: Broker, worker: CeleryWorker) -> None:
    """Until nothing waits in `broker` or is held unacknowledged, twice in a row."""
    quiet = [0]

    def drained() -> bool:
        quiet[0] = 0 if broker.backlog() else quiet[0] + 1
        return quiet[0] >= 2

    wait_until(drained, what="the broker drained", worker=worker)


@contextmanager
def no_handlers() -> Iterator[None]:
    """Orders placed inside publish nothing (no handler for any topic in this process)."""
    saved = registry._handlers
    registry._handlers = {}
    try:
        yield
    finally:
        registry._handlers = saved


def test_a_broker_restarted_empty_after_commit_loses_no_event(
    workers: Workers,
    publishing: Broker,
    sandbox: SandboxServer,
    client: APIClient,
    own_broker: SamePortRedis,
    short_lease: int,
) -> None:
    make_product(sku="p", stock=5)
    url = broker_url(own_broker)
    with publishing_to(url):
        order = placed_order(place(client, "p"))
    own = Broker(url)
    assert own.backlog() == 2  # charge and notification, handed over, no worker yet

    own_broker.restart_empty()  # SIGKILL, and a new empty server on the same port

    assert own.backlog() == 0
    worker = workers.running(CELERY_BROKER_URL=url)
    rows = placed_rows(order)
    assert sorted(rows.values_list("task_name", "completed_at")) == [
        (NOTIFY_PLACED, None),
        (CHARGE, None),
    ]
    time.sleep(
        max(0.0, (rows.earliest("lease_until").lease_until - timezone.now()).total_seconds())
    )

    with publishing_to(url):
        assert registry.relay_pending() == 2

    wait_for_status(order, OrderStatus.PAID, worker=worker)
    wait_until(lambda: all_completed(rows), what="both rows completed", worker=worker)
    assert sandbox.charges() == ONE_SUCCEEDED
    assert list(rows.values_list("attempts", flat=True)) == [2, 2]
    placed_notifications = Notification.objects.filter(
        event="order_placed", subject=f"order:{order.pk}"
    )
    assert list(placed_notifications.values_list("channel", flat=True)) == ["email"]
    # Every event after it (order.paid, the deliveries) completed too; completed rows are
    # never sent again, even when the relay is told to send everything.
    wait_until(
        lambda: all_completed(OutboxMessage.objects.all()), what="all rows completed", worker=worker
    )
    with publishing_to(url):
        assert registry.relay_pending(min_age_seconds=0) == 0
    wait_drained(own, worker)
    assert sandbox.charges() == ONE_SUCCEEDED
    assert list(rows.values_list("attempts", flat=True)) == [2, 2]
    workers.stop()


def test_a_frozen_broker_gives_the_order_request_up_fast_and_the_relay_sends_later(
    workers: Workers,
    publishing: Broker,
    sandbox: SandboxServer,
    client: APIClient,
    own_broker: SamePortRedis,
    settings: Any,
) -> None:
    # After the failed hand-off this process hands nothing to the broker for a minute, far
    # longer than the three later orders take however busy the machine (an autouse fixture
    # resumes hand-offs before the next test).
    settings.OUTBOX_HANDOFF_PAUSE_SECONDS = 60
    make_product(sku="p", stock=10)
    url = broker_url(own_broker)
    with publishing_to(url):
        placed_order(place(client, "p"))  # a pooled broker connection, as in a live server
        own_broker.freeze()  # SIGSTOP: connections accepted, nothing ever answered
        try:
            started = time.monotonic()
            response = place(client, "p")
            elapsed = time.monotonic() - started
            # The next requests of this process do not ask the frozen broker again.
            later_elapsed = []
            later = []
            for _ in range(3):
                started = time.monotonic()
                later.append(placed_order(place(client, "p")))
                later_elapsed.append(time.monotonic() - started)
        finally:
            own_broker.thaw()
    print(f"order request with the broker frozen: {elapsed:.3f} s, then {later_elapsed}")

    order = placed_order(response)
    # The publish gave up after the broker socket timeout (0.5 s), once for both rows: not
    # the seconds a wait for each row, or for a frozen broker, would take.
    assert elapsed < 4.0
    rows = placed_rows(order)
    assert sorted(rows.values_list("task_name", "completed_at")) == [
        (NOTIFY_PLACED, None),
        (CHARGE, None),
    ]
    assert all(row.lease_until <= timezone.now() for row in rows)
    assert all(row.last_error.startswith("OperationalError:") for row in rows)
    # Each later order waited for no broker at all: its rows went straight to the relay
    # (the hand-off paused, as their error says), not after another socket timeout each.
    assert max(later_elapsed) < 1.5
    later_rows = OutboxMessage.objects.filter(
        topic="order.placed", payload__order_id__in=[o.pk for o in later]
    )
    assert later_rows.count() == 6
    assert set(later_rows.values_list("last_error", flat=True)) == {
        "hand-off paused: the broker failed moments ago"
    }
    assert all(row.lease_until <= timezone.now() for row in later_rows)

    Broker(url).purge_queues()  # the earlier order's messages: not this test's subject
    worker = workers.running(CELERY_BROKER_URL=url)
    with publishing_to(url):
        assert registry.relay_pending(batch_size=1000) >= 2

    wait_for_status(order, OrderStatus.PAID, worker=worker)
    for later_order in later:
        wait_for_status(later_order, OrderStatus.PAID, worker=worker)
    for later_order in later:
        wait_for_status(later_order, OrderStatus.PAID, worker=worker)
    wait_until(lambda: all_completed(rows), what="both rows completed", worker=worker)
    wait_drained(Broker(url), worker)
    payment = Payment.objects.get(order=order)
    assert sandbox.charge_for(payment.idempotency_key) is not None
    workers.stop()


@contextmanager
def rows_locked(order: Order) -> Iterator[threading.Event]:
    """Hold the order's and its payment's row locks from another connection until the
    returned event is set (or the block ends)."""
    release = threading.Event()
    locked = threading.Event()
    errors: list[BaseException] = []

    def hold() -> None:
        try:
            with transaction.atomic():
                list(Order.objects.select_for_update().filter(pk=order.pk))
                list(Payment.objects.select_for_update().filter(order_id=order.pk))
                locked.set()
                release.wait(timeout=60)
        except BaseException as exc:
            errors.append(exc)
            locked.set()
        finally:
            connection.close()

    thread = threading.Thread(target=hold)
    thread.start()
    locked.wait(timeout=10)
    try:
        assert errors == []
        yield release
    finally:
        release.set()
        thread.join(timeout=10)


def test_a_task_that_hits_a_database_error_is_retried_and_completed_only_when_done(
    workers: Workers, publishing: Broker, sandbox: SandboxServer, client: APIClient
) -> None:
    # The worker's statements give up after 300 ms waiting for a row lock: PostgreSQL's
    # LockNotAvailable, an OperationalError like any database outage.
    worker = workers.running(PGOPTIONS="-c lock_timeout=300")
    make_product(sku="p", stock=5)
    with no_handlers():
        order = placed_order(place(client, "p"))
    mark = len(worker.log())

    with rows_locked(order) as release:
        with transaction.atomic():
            (message_id,) = outbox.publish(CHARGE_REQUESTED, {"order_id": order.pk})
        retried = wait_until(
            lambda: [
                line
                for line in worker.log(since=mark)
                if " retry: Retry in " in str(line.get("event"))
                and "OperationalError" in str(line.get("event"))
            ],
            what="the charge task retried after a database error",
            worker=worker,
        )
        # Retrying: not completed, its lease pushed past the retry, the retry counted.
        message = OutboxMessage.objects.get(pk=message_id)
        assert message.completed_at is None
        assert message.retries >= 1
        assert message.last_error.startswith("OperationalError:")
        assert message.lease_until > timezone.now()
        assert order.status == OrderStatus.PENDING_PAYMENT
        release.set()

    wait_for_status(order, OrderStatus.PAID, worker=worker)
    wait_until(
        lambda: OutboxMessage.objects.filter(pk=message_id, completed_at__isnull=False).exists(),
        what="the row completed",
        worker=worker,
    )
    assert sandbox.charges() == ONE_SUCCEEDED
    assert len(retried) >= 1
    assert OutboxMessage.objects.get(pk=message_id).attempts == 1  # never re-sent by a relay


def test_a_long_retry_waits_in_the_outbox_not_in_the_broker_and_keeps_its_count(
    workers: Workers, publishing: Broker, sandbox: SandboxServer, client: APIClient
) -> None:
    # Any countdown is too long for the broker here; two runs in all for a charge. The
    # retry's wait is drawn from [0, 10^9 s] (full jitter): one short enough to run out
    # before the assertions below (a minute) has odds of about 6 in 10^8.
    worker = workers.running(
        OUTBOX_MAX_BROKER_COUNTDOWN_SECONDS="0",
        PAYMENT_RETRY_BASE_SECONDS="1000000000",
        PAYMENT_RETRY_CAP_SECONDS="1000000000",
        PAYMENT_RETRY_MAX_ATTEMPTS="2",
    )
    make_product(sku="p", stock=5)
    sandbox.stop()
    mark = len(worker.log())
    order = placed_order(place(client, "p"))
    rows = placed_rows(order)
    charge = rows.get(task_name=CHARGE)

    deferred = wait_until(
        lambda: logged(worker, "outbox_retry_deferred", since=mark, message_id=charge.pk),
        what="the retry deferred to the outbox",
        worker=worker,
    )
    # The message was acknowledged: nothing of it waits in the broker as an ETA message.
    wait_drained(publishing, worker)
    charge.refresh_from_db()
    assert (charge.completed_at, charge.retries, charge.attempts) == (None, 1, 1)
    assert charge.last_error.startswith("ProviderUnavailable:")
    waits = (charge.lease_until - timezone.now()).total_seconds()
    assert 0 < waits <= deferred[0]["delay_seconds"]
    assert registry.relay_pending() == 0  # not due yet

    OutboxMessage.objects.filter(pk=charge.pk).update(lease_until=timezone.now())  # time passes
    assert registry.relay_pending() == 1

    # The re-sent run is the second of two (its count came along): it gives up, done.
    wait_until(
        lambda: logged(worker, "payment_retries_exhausted", since=mark, order_id=order.pk),
        what="the second run gives up",
        worker=worker,
    )
    wait_until(lambda: all_completed(rows), what="the rows completed", worker=worker)
    charge.refresh_from_db()
    assert (charge.retries, charge.attempts) == (1, 2)
    assert len(logged(worker, "outbox_retry_deferred", since=mark, message_id=charge.pk)) == 1
    payment = Payment.objects.get(order=order)
    assert provider_calls(worker, payment.idempotency_key, since=mark)


def test_a_message_lost_with_a_killed_worker_runs_again_after_its_lease(
    workers: Workers,
    publishing: Broker,
    sandbox: SandboxServer,
    client: APIClient,
    short_lease: int,
) -> None:
    # The provider records the charge at once and answers 2 s later; the worker waits 5 s.
    settings = {"PAYMENT_PROVIDER_READ_TIMEOUT_SECONDS": "5", "PAYMENT_LOCK_TTL_SECONDS": "3"}
    doomed = workers.running(**settings)
    sandbox.configure(respond_after_commit_delay_ms=2000)
    make_product(sku="p", stock=5)
    order = placed_order(place(client, "p"))
    key = Payment.key_for(order.public_id)  # the payment is opened by the worker
    wait_until(lambda: sandbox.charge_for(key), what="the provider charged", worker=doomed)

    doomed.kill()  # SIGKILL, mid-charge: its message stays unacknowledged in the broker
    killed_at = time.monotonic()

    successor = workers.running(**settings)
    charge = placed_rows(order).get(task_name=CHARGE)
    assert charge.completed_at is None
    # The broker would hand the message out again only after its visibility timeout (10
    # minutes); the relay does once the lease (2 s here) has run out.
    wait_until(
        lambda: registry.relay_pending(),
        what="the relay re-sends the lost charge",
        worker=successor,
    )
    wait_for_status(order, OrderStatus.PAID, worker=successor)
    print(f"killed worker's charge paid {time.monotonic() - killed_at:.1f} s after the kill")
    wait_until(
        lambda: OutboxMessage.objects.filter(pk=charge.pk, completed_at__isnull=False).exists(),
        what="the charge row completed",
        worker=successor,
    )
    assert sandbox.charges() == ONE_SUCCEEDED
    assert [c.get("replayed") for c in provider_calls(successor, key)] == [True]
    # The dead worker's copy would come back after the visibility timeout and find the
    # order paid; drop it so the next test starts clean.
    publishing.redis.delete("unacked", "unacked_index")


def test_a_worker_consumes_again_after_its_broker_was_frozen(
    workers: Workers,
    publishing: Broker,
    sandbox: SandboxServer,
    client: APIClient,
    own_broker: SamePortRedis,
) -> None:
    # Longer than the broker socket timeout (0.5 s): a consumer reading with that timeout
    # never fetched another message after this (ecommerce/celery.py drops it in workers).
    url = broker_url(own_broker)
    worker = workers.running(CELERY_BROKER_URL=url)
    make_product(sku="p", stock=5)
    with publishing_to(url):
        wait_for_status(placed_order(place(client, "p")), OrderStatus.PAID, worker=worker)
        own_broker.freeze()
        time.sleep(8)
        own_broker.thaw()

        order = placed_order(place(client, "p"))

    paid = wait_for_status(order, OrderStatus.PAID, worker=worker, timeout_seconds=30)
    wait_drained(Broker(url), worker)
    workers.stop()
    assert paid.status == OrderStatus.PAID
    assert all_completed(placed_rows(order))
