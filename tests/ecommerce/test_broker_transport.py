"""The Redis broker transport survives a broker that died under a consuming worker.

Each test drives a kombu connection the way a worker's consumer does: a task message
delivered and not yet acknowledged (acks_late), a BRPOP waiting for the next one, the
remote-control mailbox's fanout queue on a second channel; then Redis is SIGKILLed and
the consumer releases the connection as Celery does after a connection error
(`collect()`, then `close()` with connection errors ignored). Whatever escapes that is
"unrecoverable" to Celery: the worker shuts down.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import kombu
import pytest
from celery import Celery
from kombu import Exchange, Queue
from kombu.common import ignore_errors

from ecommerce.celery import RedisBrokerTransport, _use_the_redis_broker_transport
from tests.servers import RedisServer, redis_server


@pytest.fixture
def broker() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


def consume_then_lose_the_broker(
    server: RedisServer, transport: Any
) -> tuple[kombu.Connection, kombu.Message]:
    """A consumer holding one unacknowledged message, waiting on BRPOP, when Redis dies."""
    connection = kombu.Connection(f"redis://127.0.0.1:{server.port}/1", transport=transport)
    queue = Queue("payments", Exchange("payments"), "payments")
    with kombu.Producer(connection) as producer:
        producer.publish(
            {"order_id": 1}, exchange=queue.exchange, routing_key="payments", declare=[queue]
        )
    delivered: list[kombu.Message] = []
    tasks = connection.default_channel
    kombu.Consumer(
        tasks, [queue], callbacks=[lambda _body, m: delivered.append(m)], accept=["json"]
    ).consume()
    connection.drain_events(timeout=5)
    assert len(delivered) == 1
    mailbox = Queue("worker.pidbox", Exchange("pidbox", type="fanout"), auto_delete=True)
    kombu.Consumer(connection.channel(), [mailbox], accept=["json"]).consume()
    tasks._brpop_start()  # the consumer waits for the next message
    server.kill()
    return connection, delivered[0]


def release_as_the_consumer_does(connection: kombu.Connection) -> None:
    """celery.worker.consumer.Consumer.on_connection_error_after_connected."""
    with contextlib.suppress(Exception):
        connection.collect(socket_timeout=2.0)
    ignore_errors(connection, connection.close)


def test_releasing_the_connection_after_the_broker_died_raises_no_other_error(
    broker: RedisServer,
) -> None:
    connection, message = consume_then_lose_the_broker(broker, RedisBrokerTransport)

    release_as_the_consumer_does(connection)

    # The late ack of the task that was running fails as a connection error, which Celery
    # logs ("Couldn't ack") rather than treating as fatal.
    with pytest.raises(connection.connection_errors):
        message.ack()


def test_kombus_own_redis_transport_still_fails_that_way(broker: RedisServer) -> None:
    """What RedisBrokerTransport is for; once kombu's transport passes, it can go."""
    connection, _message = consume_then_lose_the_broker(broker, "redis")

    with pytest.raises(AttributeError):
        release_as_the_consumer_does(connection)


@pytest.mark.parametrize(
    ("url", "transport"),
    [
        ("redis://127.0.0.1:6379/1", RedisBrokerTransport),
        ("amqp://guest@127.0.0.1:5672//", None),
        ("", None),
    ],
)
def test_only_a_redis_broker_gets_the_transport(url: str, transport: type | None) -> None:
    other = Celery("other", broker=url or None, set_as_current=False)
    other.on_after_configure.connect(_use_the_redis_broker_transport, weak=False)

    connection = other.connection_for_write()

    if transport is None:
        assert other.conf.broker_transport is None
        assert not isinstance(connection.transport, RedisBrokerTransport)
    else:
        assert isinstance(connection.transport, transport)


def test_a_channel_publishes_every_message_with_one_client(
    broker: RedisServer,
) -> None:
    """kombu would build a redis.Redis per message; the channel keeps one per pool."""
    connection = kombu.Connection(
        f"redis://127.0.0.1:{broker.port}/1", transport=RedisBrokerTransport
    )
    queue = Queue("payments", Exchange("payments"), "payments")
    channel = connection.default_channel
    clients = []
    with kombu.Producer(channel) as producer:
        for order_id in range(3):
            producer.publish(
                {"order_id": order_id},
                exchange=queue.exchange,
                routing_key="payments",
                declare=[queue],
            )
            clients.append(channel._client)

    assert clients[0] is not None
    assert all(client is clients[0] for client in clients)
    assert channel._size("payments") == 3
    connection.release()

    again = kombu.Connection(f"redis://127.0.0.1:{broker.port}/1", transport=RedisBrokerTransport)
    assert again.default_channel._size("payments") == 3
    assert again.default_channel._client is not clients[0]
    again.release()
