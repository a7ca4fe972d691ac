"""`/metrics`: right across gunicorn workers, protected by a token, with business metrics."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from prometheus_client import REGISTRY

from ecommerce.api.permissions import Role
from tests.catalog.factories import make_product
from tests.servers import GunicornServer, project_env
from tests.users.factories import UserFactory


def sample(exposition: str, name: str, **labels: str) -> float | None:
    """The value of one sample in a text exposition, or None when absent."""
    for line in exposition.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


@pytest.mark.django_db
def test_counters_add_up_across_three_gunicorn_workers(tmp_path):
    metrics_dir = tmp_path / "metrics"
    env = project_env(
        METRICS_DIR=str(metrics_dir),
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir / "web"),
        OTEL_ENABLED="0",
        ACCESS_LOG="0",
        LOG_LEVEL="WARNING",
    )
    # Polled on another view: a slow start-up poll must not land in the counted one.
    server = GunicornServer(
        workers=3, env=env, log_path=tmp_path / "gunicorn.log", ready_path="/api/categories"
    )
    try:
        before = sample(
            httpx.get(f"{server.url}/metrics").text,
            "django_http_responses_total_by_status_view_method_total",
            view="health-live",
        )
        with httpx.Client(base_url=server.url) as client, ThreadPoolExecutor(12) as pool:
            statuses = list(pool.map(lambda _: client.get("/health/live").status_code, range(300)))
        exposition = httpx.get(f"{server.url}/metrics").text
        worker_files = {p.name.split("_")[-1] for p in (metrics_dir / "web").glob("*.db")}
    finally:
        assert server.stop() == 0

    after = sample(
        exposition,
        "django_http_responses_total_by_status_view_method_total",
        view="health-live",
        method="GET",
        status="200",
    )
    print(f"\n300 requests over 3 workers: counter {before or 0:.0f} -> {after:.0f}")
    assert statuses == [200] * 300
    assert (after or 0) - (before or 0) == 300
    assert len(worker_files) >= 2  # more than one worker served and wrote its file
    assert sample(exposition, "ecommerce_dependency_up", dependency="database") == 1.0


@pytest.mark.django_db
def test_metrics_and_traces_refuse_a_wrong_token(client, settings):
    settings.METRICS_TOKEN = "s3cret-scrape-token"
    for path in ("/metrics", "/traces"):
        missing = client.get(path)
        wrong = client.get(path, HTTP_AUTHORIZATION="Bearer nope")
        right = client.get(path, HTTP_AUTHORIZATION="Bearer s3cret-scrape-token")

        assert missing.status_code == wrong.status_code == 401
        assert wrong["Content-Type"] == "application/problem+json"
        assert wrong.json()["status"] == 401
        assert wrong["WWW-Authenticate"].startswith("Bearer")
        assert right.status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(("debug", "public", "status"), [(False, False, 401), (True, False, 200)])
def test_without_a_token_they_are_private_unless_debug_or_declared_public(
    client, settings, debug, public, status
):
    settings.METRICS_TOKEN = ""
    settings.METRICS_PUBLIC = public
    settings.DEBUG = debug
    for path in ("/metrics", "/traces"):
        response = client.get(path)
        assert response.status_code == status, path
        if status == 401:
            assert response["Content-Type"] == "application/problem+json"
            assert response["WWW-Authenticate"] == 'Bearer realm="operations"'


@pytest.mark.django_db
def test_metrics_are_open_without_a_token_when_declared_public(client, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_PUBLIC = True
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert "ecommerce_dependency_up" in text
    # The database backend counts queries (the health check above made some).
    assert sample(text, "django_db_execute_total", vendor="postgresql") >= 1


@pytest.mark.django_db
def test_an_order_counts_its_value_and_payment_outcome(
    client_for, django_capture_on_commit_callbacks
):
    make_product(sku="m1", price="12.50", stock=5)
    created = REGISTRY.get_sample_value("ecommerce_orders_created_total", {"currency": "EUR"}) or 0
    value = REGISTRY.get_sample_value("ecommerce_order_value_total", {"currency": "EUR"}) or 0
    paid = REGISTRY.get_sample_value("ecommerce_payments_total", {"outcome": "succeeded"}) or 0

    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(UserFactory(roles=[Role.CUSTOMER])).post(
            "/api/orders", {"items": [{"id": "m1", "quantity": 2}], "payment_token": "tok_success"}
        )

    assert response.status_code == 201
    get = REGISTRY.get_sample_value
    assert get("ecommerce_orders_created_total", {"currency": "EUR"}) == created + 1
    assert get("ecommerce_order_value_total", {"currency": "EUR"}) == value + 25.0
    assert get("ecommerce_payments_total", {"outcome": "succeeded"}) == paid + 1
    assert get("ecommerce_payment_provider_latency_seconds_count", {"operation": "charge"}) >= 1
    runs = get(
        "ecommerce_celery_task_runs_total",
        {"task": "payments.charge_payment", "outcome": "success"},
    )
    assert runs is not None
    assert runs >= 1


@pytest.mark.django_db
def test_the_database_backend_counts_statements_their_time_and_errors() -> None:
    from django.db import connection, transaction
    from django.db.utils import ProgrammingError

    labels = {"alias": "default", "vendor": "postgresql"}

    def counts() -> tuple[float, ...]:
        names = (
            ("django_db_execute_total", {}),
            ("django_db_execute_many_total", {}),
            ("django_db_query_duration_seconds_count", {}),
            ("django_db_errors_total", {"type": "UndefinedTable"}),
        )
        return tuple(
            REGISTRY.get_sample_value(name, {**labels, **extra}) or 0.0 for name, extra in names
        )

    before = counts()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.executemany("SELECT %s", [(1,), (2,)])
    with pytest.raises(ProgrammingError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT * FROM no_such_table")

    executed, many, timed, failed = (a - b for a, b in zip(counts(), before, strict=True))
    # SELECT 1; the two of executemany (one timing); SAVEPOINT, the failing SELECT,
    # ROLLBACK TO SAVEPOINT and RELEASE SAVEPOINT of the atomic block.
    assert (executed, many, timed, failed) == (7, 2, 6, 1)
