"""Checkout to payment across processes: the API here, a real Celery worker on the Redis
broker, and the payment sandbox as its own HTTP server.

Each test places orders through the API, lets the worker charge them, and asserts what
every side recorded: the order and its payment in PostgreSQL, the charges at the sandbox
(`GET /_sandbox/stats`), the breaker state in Redis, stock and its ledger.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.inventory.models import StockMovement
from apps.orders.models import Order, OrderStatus
from apps.payments.models import Payment, PaymentStatus
from apps.payments.services import reconcile_payments
from apps.payments.tasks import charge_payment_task, reconcile_payments_task
from ecommerce.outbox import relay_pending
from ecommerce.outbox.models import OutboxMessage
from ecommerce.resilience.breaker import breaker
from ecommerce.resilience.breaker_storage import CircuitState
from tests.catalog.factories import make_product
from tests.catalog.helpers import assert_ledger_matches, stock_of
from tests.integration.helpers import (
    history,
    logged,
    place,
    placed_order,
    provider_calls,
    publishing_to,
    task_outcomes,
    wait_for_status,
    wait_until,
)
from tests.integration.processes import Broker, CeleryWorker, SandboxServer, Workers
from tests.servers import free_port

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ONE_SUCCEEDED = {"succeeded": 1, "declined": 0, "total": 1}
# For the tests that kill workers. The sandbox records the charge at once and answers 2 s
# later (the worker waits up to 5 s), so a worker killed meanwhile has charged without
# knowing it. A dead pool process is noticed within the pool's 5 s maintenance interval
# and its message goes straight back (task_reject_on_worker_lost) while the order's charge
# lock (6 s) is still held. A dead worker's message comes back after the broker's
# visibility timeout (7 s), when that lock has expired, as in production (60 s against
# an hour).
CRASH_SETTINGS = {
    "PAYMENT_LOCK_TTL_SECONDS": "6",
    "CELERY_BROKER_VISIBILITY_TIMEOUT_SECONDS": "7",
    "PAYMENT_PROVIDER_READ_TIMEOUT_SECONDS": "5",
}
ANSWER_DELAY_MS = 2000


def test_an_order_is_charged_by_the_worker_and_ends_paid(
    live_celery: CeleryWorker, sandbox: SandboxServer, client: APIClient
) -> None:
    product = make_product(sku="p", stock=5, price="12.50")

    order = placed_order(place(client, "p", 2))

    wait_for_status(order, OrderStatus.PAID, worker=live_celery)
    payment = Payment.objects.get(order=order)
    assert (payment.status, payment.attempts, payment.last_error) == ("succeeded", 1, "")
    assert sandbox.charges() == ONE_SUCCEEDED
    charge = sandbox.charge_for(payment.idempotency_key)
    assert charge is not None
    assert (charge["id"], charge["amount"], charge["currency"]) == (
        payment.provider_charge_id,
        "25.00",
        "EUR",
    )
    assert history(order) == [("", "pending_payment"), ("pending_payment", "paid")]
    placed = OutboxMessage.objects.get(topic="order.placed", task_name="payments.charge_payment")
    assert (placed.payload, placed.attempts, placed.retries) == ({"order_id": order.pk}, 1, 0)
    # Completed by the worker once the task has returned (just after the order turned paid).
    wait_until(
        lambda: OutboxMessage.objects.filter(pk=placed.pk, completed_at__isnull=False).exists(),
        what="the charge message completed",
        worker=live_celery,
    )
    assert stock_of(product.variant.pk) == 3
    assert_ledger_matches(product.variant.pk)


def test_a_declined_card_fails_the_order_and_returns_its_stock(
    live_celery: CeleryWorker, sandbox: SandboxServer, client: APIClient
) -> None:
    product = make_product(sku="p", stock=5)

    order = placed_order(place(client, "p", 2, token="tok_card_declined"))

    wait_for_status(order, OrderStatus.PAYMENT_FAILED, worker=live_celery)
    payment = Payment.objects.get(order=order)
    assert (payment.status, payment.decline_code, payment.attempts) == (
        PaymentStatus.DECLINED,
        "card_declined",
        1,
    )
    assert sandbox.charges() == {"succeeded": 0, "declined": 1, "total": 1}
    assert stock_of(product.variant.pk) == 5
    assert list(
        StockMovement.objects.filter(reference=f"order:{order.public_id}")
        .order_by("pk")
        .values_list("delta", "reason")
    ) == [(-2, "order"), (2, "cancel")]
    assert_ledger_matches(product.variant.pk)
    # A decline is an answer: it never counts against the breaker.
    assert breaker("payment-provider").state().failures == 0


def test_provider_down_opens_the_shared_breaker_and_one_half_open_trial_closes_it(
    workers: Workers, publishing: Broker, sandbox: SandboxServer, client: APIClient
) -> None:
    # The breaker stays open 5 s, far longer than the steps that look at it open (three
    # refused connections, the second order refused): no half-open trial comes between.
    live_celery = workers.running(CIRCUIT_BREAKER_RECOVERY_TIMEOUT_SECONDS="5")
    provider = breaker("payment-provider")
    product = make_product(sku="p", stock=5)
    mark = len(live_celery.log())
    sandbox.stop()

    first = placed_order(place(client, "p"))

    # Read here, in Redis, under the prefix the worker writes: the state is shared.
    wait_until(
        lambda: provider.state().state is CircuitState.OPEN,
        what="the breaker opens",
        worker=live_celery,
    )
    first_payment = Payment.objects.get(order=first)
    refused = provider_calls(live_celery, first_payment.idempotency_key, since=mark)
    assert [call["reason"] for call in refused] == ["connect_error"] * 3
    assert first_payment.attempts >= 3
    first.refresh_from_db()
    assert first.status == OrderStatus.PENDING_PAYMENT

    second = placed_order(place(client, "p"))

    second_payment = wait_until(
        lambda: Payment.objects.filter(order=second, last_error__startswith="CircuitOpen:").first(),
        what="the open breaker refuses the second order's charge",
        worker=live_celery,
    )
    # A refusal never reached the provider, so it used up none of the payment's attempts.
    assert second_payment is not None
    assert (second_payment.attempts, second_payment.last_attempt_at) == (0, None)

    sandbox.start()  # on the same port, with no charges

    # The trial comes once the 5 s recovery has run out; a run refused while that trial is
    # in flight is told to come back up to 5 s later still.
    wait_for_status(first, OrderStatus.PAID, worker=live_celery, timeout_seconds=30)
    wait_for_status(second, OrderStatus.PAID, worker=live_celery, timeout_seconds=30)
    assert provider.state().state is CircuitState.CLOSED
    assert sandbox.charges() == {"succeeded": 2, "declined": 0, "total": 2}
    transitions = [
        (line["from"], line["to"])
        for line in logged(live_celery, "circuit_breaker_transition", since=mark)
    ]
    assert transitions[0] == ("closed", "open")
    assert transitions[-1] == ("half_open", "closed")
    # Between them only trials that failed while the sandbox was still down.
    assert set(transitions[1:-1]) <= {("open", "half_open"), ("half_open", "open")}
    assert transitions[-2] == ("open", "half_open")
    assert stock_of(product.variant.pk) == 3
    assert_ledger_matches(product.variant.pk)


def test_a_charge_whose_answer_times_out_is_found_by_its_key_on_retry(
    live_celery: CeleryWorker, sandbox: SandboxServer, client: APIClient
) -> None:
    # The sandbox commits the charge, then answers after 1.5 s; the worker waits 0.5 s.
    sandbox.configure(respond_after_commit_delay_ms=1500)
    make_product(sku="p", stock=5)
    mark = len(live_celery.log())

    order = placed_order(place(client, "p"))

    wait_for_status(order, OrderStatus.PAID, worker=live_celery)
    payment = Payment.objects.get(order=order)
    calls = provider_calls(live_celery, payment.idempotency_key, since=mark)
    assert [(c["event"], c.get("reason"), c.get("replayed")) for c in calls] == [
        ("payment_provider.unavailable", "read_timeout", None),
        ("payment_provider.response", None, True),
    ]
    assert sandbox.charges() == ONE_SUCCEEDED
    charge = sandbox.charge_for(payment.idempotency_key)
    assert charge is not None
    assert (payment.status, payment.attempts, payment.provider_charge_id) == (
        PaymentStatus.SUCCEEDED,
        2,
        charge["id"],
    )


def test_the_same_charge_task_twice_at_once_charges_once(
    workers: Workers,
    publishing: Broker,
    sandbox: SandboxServer,
    client: APIClient,
    no_charge_requests: None,
) -> None:
    # The provider answers after 1.5 s, well within the worker's 5 s read timeout and its
    # 5 s charge lock: the second task starts while the first still holds the order's lock.
    live_celery = workers.running(
        PAYMENT_PROVIDER_READ_TIMEOUT_SECONDS="5", PAYMENT_LOCK_TTL_SECONDS="5"
    )
    make_product(sku="p", stock=5)
    order = placed_order(place(client, "p"))
    sandbox.configure(latency_ms=1500)
    mark = len(live_celery.log())

    charge_payment_task.delay(order.pk)
    charge_payment_task.delay(order.pk)

    wait_for_status(order, OrderStatus.PAID, worker=live_celery)
    assert sandbox.charges() == ONE_SUCCEEDED
    payment = Payment.objects.get(order=order)
    assert (payment.status, payment.attempts) == (PaymentStatus.SUCCEEDED, 1)
    assert len(provider_calls(live_celery, payment.idempotency_key, since=mark)) == 1
    assert logged(
        live_celery, "payment_charge_skipped", since=mark, order_id=order.pk, reason="lock_busy"
    )
    # The run that found the lock taken looks again after the lock's TTL (5 s): nothing to do.
    wait_until(
        lambda: task_outcomes(live_celery, since=mark) == ["succeeded", "noop"],
        what="the second run comes back to a paid order",
        timeout_seconds=20,
        worker=live_celery,
    )
    assert sandbox.charges() == ONE_SUCCEEDED


def test_an_order_placed_while_no_worker_runs_is_opened_and_charged_once_one_comes_up(
    workers: Workers,
    publishing: Broker,
    sandbox: SandboxServer,
    client: APIClient,
    process_env: dict[str, str],
    integration_dir: Path,
) -> None:
    # given: no worker at all; the order's messages wait in the broker
    workers.stop()
    product = make_product(sku="p", stock=5, price="12.50")
    order = placed_order(place(client, "p", 2))
    assert not Payment.objects.filter(order=order).exists()
    assert publishing.backlog() == 2  # its charge and its notification

    # when: a worker comes up (started here: Workers.running would purge the queues)
    worker = CeleryWorker(
        env=process_env,
        nodename=f"late-{os.getpid()}@127.0.0.1",
        log_path=integration_dir / f"late-{os.getpid()}-{order.pk}.log",
    )
    try:
        wait_for_status(order, OrderStatus.PAID, worker=worker)
        wait_until(
            lambda: not OutboxMessage.objects.filter(completed_at__isnull=True).exists(),
            what="every outbox message handled",
            worker=worker,
        )
    finally:
        worker.stop()

    # then: the handler opened the payment from the order and charged it once
    payment = Payment.objects.get(order=order)
    assert (payment.status, payment.attempts, payment.amount) == (
        PaymentStatus.SUCCEEDED,
        1,
        Decimal("25.00"),
    )
    assert sandbox.charges() == ONE_SUCCEEDED
    charge = sandbox.charge_for(payment.idempotency_key)
    assert charge is not None
    assert charge["id"] == payment.provider_charge_id
    assert len(logged(worker, "payment_opened", order_id=str(order.public_id))) == 1
    assert task_outcomes(worker) == ["succeeded"]
    assert history(order) == [("", "pending_payment"), ("pending_payment", "paid")]
    assert stock_of(product.variant.pk) == 3


def test_an_order_committed_while_the_broker_is_down_is_paid_after_the_relay(
    live_celery: CeleryWorker, sandbox: SandboxServer, client: APIClient
) -> None:
    make_product(sku="p", stock=5)

    with publishing_to(f"redis://127.0.0.1:{free_port()}/0"):
        response = place(client, "p")

    order = placed_order(response)
    assert order.status == OrderStatus.PENDING_PAYMENT
    # One row per handler; the first refused publish left both due for the relay at once.
    messages = OutboxMessage.objects.filter(topic="order.placed")
    assert sorted(messages.values_list("task_name", "completed_at", "attempts")) == [
        ("notifications.notify_order_placed", None, 1),
        ("payments.charge_payment", None, 1),
    ]
    assert all(m.last_error.startswith("OperationalError:") for m in messages)
    assert not Payment.objects.filter(order=order).exists()  # opened by the handler

    assert relay_pending() == 2

    wait_for_status(order, OrderStatus.PAID, worker=live_celery)
    assert sandbox.charges() == ONE_SUCCEEDED
    wait_until(
        lambda: not messages.filter(completed_at__isnull=True).exists(),
        what="both messages completed",
        worker=live_celery,
    )
    assert list(messages.values_list("attempts", flat=True)) == [2, 2]


def test_a_pool_process_killed_mid_charge_has_its_task_run_again_and_charged_once(
    workers: Workers, publishing: Broker, sandbox: SandboxServer, client: APIClient
) -> None:
    worker = workers.running(**CRASH_SETTINGS)
    sandbox.configure(respond_after_commit_delay_ms=ANSWER_DELAY_MS)
    make_product(sku="p", stock=5)
    mark = len(worker.log())
    order = placed_order(place(client, "p"))
    key = Payment.key_for(order.public_id)  # the payment is opened by the worker
    wait_until(lambda: sandbox.charge_for(key), what="the provider charged", worker=worker)

    assert len(worker.kill_pool()) == 2  # while the charging run waits for the answer

    # task_reject_on_worker_lost hands the message back at once.
    wait_for_status(order, OrderStatus.PAID, worker=worker)
    payment = Payment.objects.get(order=order)
    assert (payment.status, payment.attempts) == (PaymentStatus.SUCCEEDED, 2)
    assert sandbox.charges() == ONE_SUCCEEDED
    # No second attempt while the dead run's lock was held: it was taken after the order
    # was placed, so it held at least until then plus its TTL. (Usually the message comes
    # back at once and that run finds the lock taken and waits it out; on a busy machine the
    # new pool process may start only once the lock has run out.)
    held_until = order.created_at + timedelta(
        seconds=int(CRASH_SETTINGS["PAYMENT_LOCK_TTL_SECONDS"])
    )
    assert payment.last_attempt_at is not None
    assert payment.last_attempt_at >= held_until, (payment.last_attempt_at, held_until)
    calls = provider_calls(worker, key, since=mark)
    assert [call.get("replayed") for call in calls] == [True]
    wait_until(
        lambda: task_outcomes(worker, since=mark) == ["succeeded"],
        what="the run that charged is acknowledged",
        worker=worker,
    )


def test_a_worker_killed_mid_charge_leaves_the_task_to_another_that_charges_once(
    workers: Workers, publishing: Broker, sandbox: SandboxServer, client: APIClient
) -> None:
    doomed = workers.running(**CRASH_SETTINGS)
    sandbox.configure(respond_after_commit_delay_ms=ANSWER_DELAY_MS)
    make_product(sku="p", stock=5)
    mark = len(doomed.log())
    order = placed_order(place(client, "p"))
    key = Payment.key_for(order.public_id)  # the payment is opened by the worker
    wait_until(lambda: sandbox.charge_for(key), what="the provider charged", worker=doomed)

    doomed.kill()  # the main process and its pool, while the run waits for the answer

    payment = Payment.objects.get(order=order)
    assert (order.status, payment.attempts) == (OrderStatus.PENDING_PAYMENT, 1)
    assert payment.last_attempt_at is not None
    # Past the visibility timeout, counted from the delivery (just before the attempt).
    time.sleep(max(0.0, payment.last_attempt_at.timestamp() + 7.2 - time.time()))
    successor = workers.running(**CRASH_SETTINGS)

    wait_for_status(order, OrderStatus.PAID, worker=successor)
    payment.refresh_from_db()
    assert (payment.status, payment.attempts) == (PaymentStatus.SUCCEEDED, 2)
    assert sandbox.charges() == ONE_SUCCEEDED
    assert logged(doomed, "payment_attempt", since=mark) == []
    calls = provider_calls(successor, key)
    assert [call.get("replayed") for call in calls] == [True]


def charge_calls(worker: CeleryWorker, key: str, *, since: int = 0) -> list[Any]:
    """The worker's charge requests (POSTs) under `key`, as its HTTP gateway logged them."""
    return [c for c in provider_calls(worker, key, since=since) if c.get("method") == "POST"]


def test_one_card_the_provider_always_fails_ends_failed_and_others_still_get_paid(
    workers: Workers, publishing: Broker, sandbox: SandboxServer, client: APIClient
) -> None:
    # A card the provider answers 500 every time (tok_processing_error) trips the shared
    # breaker (threshold 3 here) again and again; it gets 4 calls in all, then ends.
    worker = workers.running(PAYMENT_MAX_ATTEMPTS_PER_PAYMENT="4")
    product = make_product(sku="p", stock=10)
    mark = len(worker.log())

    bad = placed_order(place(client, "p", 2, token="tok_processing_error"))

    wait_for_status(bad, OrderStatus.PAYMENT_FAILED, worker=worker, timeout_seconds=30)
    payment = Payment.objects.get(order=bad)
    assert (payment.status, payment.attempts) == (PaymentStatus.FAILED, 4)
    assert payment.last_error == "gave up after 4 provider attempts"
    assert [c.get("status") for c in charge_calls(worker, payment.idempotency_key)] == [500] * 4
    assert sandbox.charge_for(payment.idempotency_key) is None
    assert history(bad) == [("", "pending_payment"), ("pending_payment", "payment_failed")]
    assert stock_of(product.variant.pk) == 10
    assert_ledger_matches(product.variant.pk)

    others = [placed_order(place(client, "p")) for _ in range(3)]

    for order in others:
        wait_for_status(order, OrderStatus.PAID, worker=worker, timeout_seconds=30)
    assert sandbox.charges() == {"succeeded": 3, "declined": 0, "total": 3}
    assert breaker("payment-provider").state().state is CircuitState.CLOSED
    assert stock_of(product.variant.pk) == 7
    assert_ledger_matches(product.variant.pk)
    # No sweep gives the failed payment a fresh count.
    swept = reconcile_payments(now=timezone.now() + timedelta(hours=1))
    assert swept == {"paid": 0, "declined": 0, "failed": 0, "refunded": 0, "deferred": 0}
    assert Payment.objects.get(pk=payment.pk).attempts == 4
    assert logged(worker, "payment_failed", since=mark, order_id=bad.pk)


def test_a_charge_task_out_of_retries_ends_its_order_cleanly(
    workers: Workers, publishing: Broker, sandbox: SandboxServer, client: APIClient
) -> None:
    # Three runs of the task, far below the per-payment cap, and a breaker that stays shut.
    worker = workers.running(
        PAYMENT_RETRY_MAX_ATTEMPTS="3",
        PAYMENT_MAX_ATTEMPTS_PER_PAYMENT="50",
        CIRCUIT_BREAKER_FAILURE_THRESHOLD="50",
    )
    product = make_product(sku="p", stock=5)
    mark = len(worker.log())

    order = placed_order(place(client, "p", 3, token="tok_processing_error"))

    wait_for_status(order, OrderStatus.PAYMENT_FAILED, worker=worker, timeout_seconds=30)
    payment = Payment.objects.get(order=order)
    assert (payment.status, payment.attempts) == (PaymentStatus.FAILED, 3)
    assert payment.last_error == "charge retries exhausted after 3 runs"
    assert logged(worker, "payment_retries_exhausted", since=mark, order_id=order.pk)
    wait_until(
        lambda: task_outcomes(worker, since=mark) == ["failed"],
        what="the last run reports the order failed",
        worker=worker,
    )
    assert sandbox.charges()["total"] == 0
    assert stock_of(product.variant.pk) == 5
    assert_ledger_matches(product.variant.pk)


def test_an_order_whose_charge_message_was_lost_is_charged_by_the_sweep(
    live_celery: CeleryWorker,
    sandbox: SandboxServer,
    client: APIClient,
    no_charge_requests: None,
) -> None:
    # given: placed a while ago, but its order.placed never queued (a broker restarted
    # empty), so payments never opened a payment for it
    product = make_product(sku="p", stock=5)
    order = placed_order(place(client, "p", 2))
    Order.objects.filter(pk=order.pk).update(created_at=timezone.now() - timedelta(seconds=61))
    assert not Payment.objects.filter(order=order).exists()
    mark = len(live_celery.log())

    # when: the periodic sweep runs on the worker
    reconcile_payments_task.delay()

    # then: opened, asked first (nothing there), then charged once
    wait_for_status(order, OrderStatus.PAID, worker=live_celery)
    payment = Payment.objects.get(order=order)
    assert (payment.status, payment.attempts) == (PaymentStatus.SUCCEEDED, 1)
    asked = logged(live_celery, "payment_provider.response", since=mark, method="GET")
    assert [(c["path"], c["status"]) for c in asked] == [("/v1/charges", 200)]
    charged = provider_calls(live_celery, payment.idempotency_key, since=mark)
    assert [(c["method"], c["status"]) for c in charged] == [("POST", 201)]
    assert live_celery.log(since=mark).index(asked[0]) < live_celery.log(since=mark).index(
        charged[0]
    )
    assert sandbox.charges() == ONE_SUCCEEDED
    assert stock_of(product.variant.pk) == 3
