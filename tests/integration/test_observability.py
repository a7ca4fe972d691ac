"""One order across real processes is one trace, and the worker's metrics reach the scrape.

gunicorn (the web), a Celery worker and the payment sandbox run as their own processes on
a throwaway Redis (broker, cache and trace store) and the test database. The order is
placed over HTTP; the web's `/traces?trace_id=` must then hold the web's request and SQL
spans, the worker's task span and the sandbox's HTTP span under one trace id, and the
web's `/metrics` must show the task run the worker counted in its own process.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from rest_framework_simplejwt.tokens import RefreshToken

from apps.orders.models import Order, OrderStatus
from tests.catalog.factories import make_product
from tests.integration.processes import ROOT, CeleryWorker
from tests.observability.test_metrics import sample
from tests.servers import GunicornServer, free_port, project_env, redis_server
from tests.users.factories import UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def wait_for(check: Any, *, what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Web, worker and sandbox sharing one Redis, one test database and one metrics root."""
    with redis_server() as redis:
        prefix = f"obs-{uuid.uuid4().hex[:8]}"
        metrics_dir = tmp_path / "metrics"
        sandbox_port = free_port()
        env = project_env(
            REDIS_URL=f"redis://127.0.0.1:{redis.port}/0",
            CELERY_BROKER_URL=f"redis://127.0.0.1:{redis.port}/1",
            CACHE_KEY_PREFIX=prefix,
            TRACES_KEY_PREFIX=prefix,
            PAYMENT_PROVIDER_URL=f"http://127.0.0.1:{sandbox_port}",
            OTEL_ENABLED="1",
            OTEL_TRACES_SAMPLER_RATIO="1.0",
            METRICS_DIR=str(metrics_dir),
            LOG_JSON="1",
            RATE_LIMIT_ENABLED="0",
        )
        sandbox = subprocess.Popen(
            [sys.executable, "-m", "apps.payments.sandbox", "--port", str(sandbox_port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        web = worker = None
        try:
            wait_for(
                lambda: _answers(f"http://127.0.0.1:{sandbox_port}/health"), what="the sandbox"
            )
            worker = CeleryWorker(
                env={**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir / "worker")},
                nodename=f"obs-{uuid.uuid4().hex[:6]}@localhost",
                log_path=tmp_path / "worker.log",
            )
            web = GunicornServer(
                workers=2,
                env={**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir / "web")},
                log_path=tmp_path / "web.log",
            )
            yield {"web": web, "worker": worker}
        finally:
            if web is not None:
                web.stop()
            if worker is not None:
                worker.stop()
            sandbox.terminate()
            sandbox.wait(timeout=10)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=0.5).status_code == 200
    except httpx.TransportError:
        return False


def test_one_order_is_one_trace_across_web_worker_and_sandbox(stack):
    make_product(sku="trace-me", stock=3, price="7.00")
    buyer = UserFactory()
    web = stack["web"]
    token = RefreshToken.for_user(buyer).access_token

    response = httpx.post(
        f"{web.url}/api/orders",
        json={"items": [{"id": "trace-me", "quantity": 1}], "payment_token": "tok_success"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    trace_id = response.headers["X-Trace-Id"]
    wait_for(
        lambda: Order.objects.get(public_id=response.json()["id"]).status == OrderStatus.PAID,
        what="the worker to charge the order",
    )

    def whole_trace() -> dict[str, Any] | None:
        found = httpx.get(f"{web.url}/traces", params={"trace_id": trace_id}).json()["traces"]
        services = {"ecommerce", "ecommerce-worker", "payment-sandbox"}
        if found and services <= set(found[0]["services"]):
            # A parent span ends, and is exported, after its children: wait for both parents.
            names = {span["name"] for span in found[0]["spans"]}
            if "run/payments.charge_payment" in names and any(
                span["parent_id"] is None for span in found[0]["spans"]
            ):
                return found[0]
        return None

    trace = wait_for(whole_trace, what="spans of all three processes in /traces")
    spans = trace["spans"]
    by_service = {s["service"]: [x for x in spans if x["service"] == s["service"]] for s in spans}
    print(
        f"\ntrace {trace_id}: {len(spans)} spans, services {trace['services']}, "
        f"{trace['duration_ms']:.0f} ms"
    )
    assert trace["root"].startswith("POST api/orders")
    assert any(s["attributes"].get("db.system") == "postgresql" for s in by_service["ecommerce"])
    assert any("payments.charge_payment" in s["name"] for s in by_service["ecommerce-worker"])
    assert any(s["kind"] == "server" for s in by_service["payment-sandbox"])
    # The provider call hangs, parent by parent, from the request: one causal chain.
    by_id = {s["span_id"]: s for s in spans}
    chain, span = [], next(s for s in by_service["payment-sandbox"] if s["kind"] == "server")
    while span is not None:
        chain.append((span["service"], span["name"]))
        span = by_id.get(span["parent_id"]) if span["parent_id"] else None
    print("chain: " + " <- ".join(name for _, name in chain))
    assert chain[-1] == ("ecommerce", trace["root"])
    assert ("ecommerce-worker", "run/payments.charge_payment") in chain
    assert ("ecommerce", "apply_async/payments.charge_payment") in chain


def test_a_worker_task_run_is_counted_in_the_web_scrape(stack):
    make_product(sku="count-me", stock=3)
    token = RefreshToken.for_user(UserFactory()).access_token
    web = stack["web"]

    response = httpx.post(
        f"{web.url}/api/orders",
        json={"items": [{"id": "count-me", "quantity": 1}], "payment_token": "tok_success"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert response.status_code == 201

    def counted() -> float | None:
        return sample(
            httpx.get(f"{web.url}/metrics").text,
            "ecommerce_celery_task_runs_total",
            task="payments.charge_payment",
            outcome="success",
        )

    assert wait_for(counted, what="the worker's task counter in the web's /metrics") >= 1
    exposition = httpx.get(f"{web.url}/metrics").text
    assert sample(exposition, "ecommerce_payments_total", outcome="succeeded") >= 1
    heartbeat = sample(exposition, "ecommerce_celery_worker_heartbeat_timestamp_seconds")
    assert heartbeat is not None
    assert abs(heartbeat - time.time()) < 60
