"""The Celery application; tasks are discovered in each app's `tasks.py`, all of them
built on the project's base task (ecommerce.tasks.Task)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlparse

import redis
from celery import Celery, bootsteps
from celery.signals import celeryd_after_setup, celeryd_init, setup_logging
from kombu import Exchange, Queue
from kombu.transport import redis as kombu_redis
from kombu.transport.native_delayed_delivery import (
    bind_queue_to_native_delayed_delivery_exchange,
)

from ecommerce.brokers import is_rabbitmq_url
from ecommerce.observability.logging import get_logger

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ecommerce.settings")

# Every task, `@shared_task` ones included, is an ecommerce.tasks.Task: transient
# infrastructure errors retried, outbox deliveries marked completed on success.
app = Celery("ecommerce", task_cls="ecommerce.tasks:Task")
logger = get_logger(__name__)


class _RedisBrokerChannel(kombu_redis.Channel):  # type: ignore[misc]
    _client: redis.Redis | None = None

    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        if self.connection.client is None:
            raise redis.exceptions.ConnectionError("the broker connection was released")
        return dict(super()._connparams(asynchronous=asynchronous))

    @contextmanager
    def conn_or_acquire(self, client: redis.Redis | None = None) -> Iterator[redis.Redis]:
        """One client per channel and pool, where kombu builds a `redis.Redis` (and its
        table of response callbacks: 0.4 ms of CPU) for every message it publishes. A
        client only borrows connections from the pool, so sharing it changes nothing else;
        a new pool (after the channel's was closed) gets a new client."""
        if client:
            yield client
            return
        pool = self.pool
        if self._client is None or self._client.connection_pool is not pool:
            self._client = self._create_client()
        yield self._client


class RedisBrokerTransport(kombu_redis.Transport):  # type: ignore[misc]
    """kombu's Redis transport, whose channels fail with a connection error, not an
    AttributeError, once their connection has been released, and reuse one Redis client
    to publish (`_RedisBrokerChannel.conn_or_acquire`).

    After the broker connection breaks, the worker's consumer releases it twice
    (`Connection.collect()`, then `close()`). When closing a channel failed the first time
    (it was waiting on a BRPOP, or the channel before it in the teardown could not delete
    its remote-control fanout queue), the second close finds the transport detached from
    its connection; restoring the channel's delivered, unacknowledged messages then builds
    a new Redis pool from the detached transport, and kombu 5.7 raised AttributeError.
    Celery treats that as unrecoverable: the worker shut down for good when Redis was
    killed while a task was in flight, and nothing consumed its queues again (charges, the
    outbox relay, the sweeps; tests/integration/test_faults.py, about one run in six). As
    a connection error it is ignored like the others on that path and the consumer
    reconnects. The messages it could not restore stay in the broker's unacked set (back
    after the visibility timeout) or, when the broker lost them, come back through the
    outbox lease and the sweeps; a late ack on such a channel is logged, not raised.
    """

    Channel = _RedisBrokerChannel


@app.on_after_configure.connect
def _use_the_redis_broker_transport(sender: Celery, **_kwargs: Any) -> None:
    """A `redis://` broker goes through RedisBrokerTransport; other brokers are untouched."""
    conf = sender.conf
    url = conf.broker_url
    if not conf.broker_transport and isinstance(url, str) and urlparse(url).scheme == "redis":
        conf.broker_transport = f"{__name__}:RedisBrokerTransport"


class DeclareQueues(bootsteps.StartStopStep):  # type: ignore[misc]
    """RabbitMQ: declares every task queue of the project and binds it to Celery's delay
    exchanges, and declares `dead_letter`, where the task queues put a message redelivered
    more than CELERY_BROKER_DELIVERY_LIMIT times (a poison message).

    Celery's own delayed delivery step binds only the queues that exist when it runs (it
    logs "Failed to bind queue" for the others, e.g. `webhooks` before its worker started
    once): a countdown for such a queue would find no route and be dropped. This step runs
    after it, on every (re)connection, so a broker that came back empty has everything
    again. A failure is logged; the consumer runs regardless.
    """

    requires = ("celery.worker.consumer.delayed_delivery:DelayedDelivery",)

    def include_if(self, c: Any) -> bool:
        url = c.app.conf.broker_url
        return isinstance(url, str) and is_rabbitmq_url(url)

    def start(self, c: Any) -> None:
        declare_queues(c.app, c.connection, bind_delayed=True)


def declare_queues(celery_app: Celery, connection: Any, *, bind_delayed: bool) -> None:
    """Declare `dead_letter` and every task queue on `connection`; bind the task queues to
    the delay exchanges too when `bind_delayed` (those exist once a worker has started)."""
    from django.conf import settings

    name = settings.CELERY_DEAD_LETTER_QUEUE
    dead_letter = Queue(
        name,
        Exchange(name, type="fanout"),
        routing_key=name,
        queue_arguments={"x-queue-type": "quorum"},
    )
    try:
        channel = connection.channel()
        try:
            dead_letter(channel).declare()
            for queue in celery_app.amqp.queues.values():
                queue(channel).declare()
                if bind_delayed:
                    bind_queue_to_native_delayed_delivery_exchange(connection, queue)
        finally:
            channel.close()
    except Exception as exc:  # the worker starts regardless
        logger.warning("broker_queues_not_declared", error=f"{type(exc).__name__}: {exc}")


@celeryd_after_setup.connect
def _declare_queues_first(sender: Any = None, instance: Any = None, **_kwargs: Any) -> None:
    """RabbitMQ: every task queue exists before the worker's delayed delivery step binds
    them all (that step logs an error per missing queue, and a critical line for all)."""
    worker_app = getattr(instance, "app", None)
    url = getattr(getattr(worker_app, "conf", None), "broker_url", None)
    if worker_app is None or not (isinstance(url, str) and is_rabbitmq_url(url)):
        return
    try:
        with worker_app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1)
            declare_queues(worker_app, connection, bind_delayed=False)
    except Exception as exc:  # the consumer's own steps declare them once it connects
        logger.warning("broker_queues_not_declared", error=f"{type(exc).__name__}: {exc}")


app.config_from_object("django.conf:settings", namespace="CELERY")
app.steps["consumer"].add(DeclareQueues)
app.autodiscover_tasks()

# Task metrics, heartbeats and tracing hooks connect to Celery's signals on import.
from ecommerce.observability import celery as _observability  # noqa: E402, F401


@setup_logging.connect
def _use_django_logging(**_kwargs: Any) -> None:
    """Keep Celery from installing its own handlers: Django's LOGGING (structlog) applies."""
    from logging.config import dictConfig

    from django.conf import settings

    dictConfig(settings.LOGGING)


@celeryd_init.connect
def _consume_without_a_socket_timeout(conf: Any = None, **_kwargs: Any) -> None:
    """Workers consume with no broker socket timeout (web and beat keep theirs; on
    RabbitMQ these are the read and write timeouts).

    The timeout bounds a publish made while serving a request; on a worker's consuming
    connection it does harm: after Redis was frozen (SIGSTOP) for longer than the timeout,
    the consumer stopped fetching messages for good once Redis was back (kombu 5.7, seen
    in tests/integration/test_outbox_delivery.py). Without it the consumer waits and
    resumes; a task's own publishes then wait for a frozen broker too, holding a worker,
    never a request.
    """
    if conf is None:
        return
    options = dict(conf.broker_transport_options or {})
    for name in ("socket_timeout", "read_timeout", "write_timeout"):
        options.pop(name, None)
    conf.broker_transport_options = options
