"""Which kind of Celery broker a URL names: Redis (the default) or RabbitMQ."""

from __future__ import annotations

from urllib.parse import urlparse

RABBITMQ_SCHEMES = frozenset({"amqp", "amqps", "pyamqp"})


def is_rabbitmq_url(url: str) -> bool:
    """True for an AMQP URL (`amqp://`, `amqps://`, `pyamqp://`): RabbitMQ."""
    return urlparse(url).scheme in RABBITMQ_SCHEMES
