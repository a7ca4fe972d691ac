"""A Celery worker's warm shutdown: SIGTERM lets the running task finish and acknowledge.

The hard-kill case (SIGKILL mid-charge: the message is redelivered and the order is charged
exactly once) is in test_payments_flow.py
(`test_a_worker_killed_mid_charge_leaves_the_task_to_another_that_charges_once`).
"""

from __future__ import annotations

import signal
import time

import pytest
from rest_framework.test import APIClient

from apps.orders.models import OrderStatus
from apps.payments.models import Payment, PaymentStatus
from tests.catalog.factories import make_product
from tests.integration.helpers import place, placed_order, provider_calls, wait_until
from tests.integration.processes import UNACKED_KEY, Broker, SandboxServer, Workers

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ONE_SUCCEEDED = {"succeeded": 1, "declined": 0, "total": 1}
PROVIDER_LATENCY_MS = 1500
# Long enough for the provider's latency (the suite's workers time out after 0.5 s).
SLOW_PROVIDER = {"PAYMENT_PROVIDER_READ_TIMEOUT_SECONDS": "5"}
WARM_SHUTDOWN_LIMIT_SECONDS = 15


def test_a_warm_shutdown_lets_the_running_charge_finish_and_acknowledges_it(
    workers: Workers, publishing: Broker, sandbox: SandboxServer, client: APIClient
) -> None:
    worker = workers.running(**SLOW_PROVIDER)
    sandbox.configure(latency_ms=PROVIDER_LATENCY_MS)
    make_product(sku="p", stock=5)
    mark = len(worker.log())

    order = placed_order(place(client, "p"))
    payment = wait_until(
        lambda: Payment.objects.filter(order=order, attempts=1).first(),
        what="the charge is in flight",
        worker=worker,
    )
    time.sleep(0.3)  # the request has reached the sandbox and waits in its latency

    worker.process.send_signal(signal.SIGTERM)
    term = time.monotonic()
    exit_code = worker.process.wait(timeout=WARM_SHUTDOWN_LIMIT_SECONDS)
    exited_after = time.monotonic() - term

    order.refresh_from_db()
    payment.refresh_from_db()
    print(
        f"\ncelery warm shutdown: SIGTERM with a {PROVIDER_LATENCY_MS} ms charge in flight; "
        f"worker exit code {exit_code} after {exited_after:.2f}s; order {order.status}, "
        f"payment {payment.status} after {payment.attempts} attempt(s); "
        f"unacknowledged messages: {publishing.redis.hlen(UNACKED_KEY)}"
    )
    assert exit_code == 0
    assert exited_after < WARM_SHUTDOWN_LIMIT_SECONDS
    assert order.status == OrderStatus.PAID
    assert (payment.status, payment.attempts) == (PaymentStatus.SUCCEEDED, 1)
    assert sandbox.charges() == ONE_SUCCEEDED
    assert len(provider_calls(worker, payment.idempotency_key, since=mark)) == 1
    # Acknowledged before the worker left: nothing is held for redelivery, and no charge
    # waits (a notification the order queued may: the worker took nothing new).
    assert publishing.redis.hlen(UNACKED_KEY) == 0
    assert publishing.redis.llen("payments") == 0
    assert "Warm shutdown" in worker.log_path.read_text()
