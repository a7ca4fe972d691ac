"""What `/metrics` exposes: every process's counters, plus gauges read at scrape time.

Multiprocess mode: each process (gunicorn worker, Celery pool process) writes its samples
to files under PROMETHEUS_MULTIPROC_DIR; the web merges every file under METRICS_DIR,
so the counters of all gunicorn workers and of Celery workers on the same host add up.
Where workers run elsewhere (Kubernetes pods), each worker serves its own files on
CELERY_METRICS_PORT instead (see ecommerce/observability/celery.py).

Gauges that describe shared state (outbox backlog, queue lengths, dependencies) are
computed at scrape time by the web, once, not per process. Circuit breaker states are read
from their shared store at scrape time by the web and by each worker's own endpoint alike
(`worker_registry`), so a reset made by any process shows everywhere at the next scrape.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from ecommerce.observability.logging import get_logger
from ecommerce.resilience.breaker import BreakerStateCollector

logger = get_logger(__name__)

CELERY_QUEUES = ("default", "payments", "notifications")


def multiprocess_enabled() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class DirectoryCollector:
    """Merge the multiprocess files of every process group under one root directory."""

    def __init__(self, root: str) -> None:
        self.root = Path(root)

    def collect(self) -> Iterator[Metric]:
        files = [str(path) for path in self.root.rglob("*.db")]
        return iter(MultiProcessCollector.merge(files, accumulate=True))


class ScrapeTimeCollector:
    """Gauges of shared state, read when Prometheus scrapes."""

    def collect(self) -> Iterator[Metric]:
        yield from self._dependencies()
        yield from self._outbox()
        yield from self._queues()

    def _dependencies(self) -> Iterator[Metric]:
        from ecommerce.health import run_checks

        gauge = GaugeMetricFamily(
            "ecommerce_dependency_up",
            "Whether a dependency answered its health check (1) or not (0).",
            labels=["dependency"],
        )
        for name, result in run_checks().items():
            gauge.add_metric([name], 1.0 if result["status"] == "up" else 0.0)
        yield gauge

    def _outbox(self) -> Iterator[Metric]:
        from ecommerce.outbox.registry import backlog

        try:
            pending, oldest = backlog()
        except Exception as exc:  # the database is down: ecommerce_dependency_up says so
            logger.warning("metrics_outbox_unavailable", error=type(exc).__name__)
            return
        yield GaugeMetricFamily(
            "ecommerce_outbox_pending_messages",
            "Outbox messages (one per handler) whose task has not completed yet.",
            value=pending,
        )
        yield GaugeMetricFamily(
            "ecommerce_outbox_oldest_pending_age_seconds",
            "Age of the oldest outbox message whose task has not completed yet (0 when none).",
            value=(time.time() - oldest.timestamp()) if oldest else 0.0,
        )

    def _queues(self) -> Iterator[Metric]:
        if settings.CELERY_TASK_ALWAYS_EAGER:
            return
        from ecommerce.celery import app

        gauge = GaugeMetricFamily(
            "ecommerce_celery_queue_length",
            "Messages waiting in each Celery queue.",
            labels=["queue"],
        )
        try:
            with app.connection_for_read() as conn:
                conn.ensure_connection(max_retries=1, timeout=settings.HEALTH_CHECK_TIMEOUT_SECONDS)
                channel = conn.default_channel
                for queue in CELERY_QUEUES:
                    try:
                        size = channel.queue_declare(queue=queue, passive=True).message_count
                    except Exception:  # an AMQP queue that was never declared
                        size = 0
                    gauge.add_metric([queue], float(size))
        except Exception as exc:
            logger.warning("metrics_broker_unavailable", error=type(exc).__name__)
            return
        yield gauge


def registry_for_scrape() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_enabled():
        registry.register(DirectoryCollector(settings.METRICS_DIR))
    else:
        registry.register(_DefaultRegistryCollector())
    registry.register(ScrapeTimeCollector())
    registry.register(BreakerStateCollector())
    return registry


def worker_registry() -> CollectorRegistry:
    """What a worker serves on CELERY_METRICS_PORT: its processes' files, or this process's
    own metrics, plus the breaker states read at scrape time."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_enabled():
        registry.register(MultiProcessCollector(None))
    else:
        registry.register(_DefaultRegistryCollector())
    registry.register(BreakerStateCollector())
    return registry


class _DefaultRegistryCollector:
    """This process's own metrics (single-process mode: embedded, tests, runserver)."""

    def collect(self) -> Iterator[Metric]:
        return iter(REGISTRY.collect())
