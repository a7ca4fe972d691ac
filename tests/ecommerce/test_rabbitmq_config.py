"""The broker configuration per URL scheme: RabbitMQ gets quorum queues with a delivery
limit, publisher confirms and whole-second countdowns; Redis keeps what it had."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from ecommerce.brokers import is_rabbitmq_url
from ecommerce.tasks import _whole_broker_seconds

ROOT = Path(__file__).resolve().parents[2]
READ_SETTINGS = """
import json
import ecommerce.settings as s
queues = [
    {"name": q.name, "exchange": q.exchange.name, "type": q.exchange.type,
     "arguments": q.queue_arguments}
    for q in getattr(s, "CELERY_TASK_QUEUES", ())
]
print(json.dumps({
    "queues": queues,
    "options": s.CELERY_BROKER_TRANSPORT_OPTIONS,
    "default_queue_type": getattr(s, "CELERY_TASK_DEFAULT_QUEUE_TYPE", None),
    "acks_late": s.CELERY_TASK_ACKS_LATE,
    "prefetch": s.CELERY_WORKER_PREFETCH_MULTIPLIER,
}))
"""


def settings_for(broker_url: str, **env: str) -> dict:
    """The Celery settings a process started with this broker URL reads."""
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CELERY_")},
        "DJANGO_READ_DOT_ENV_FILE": "0",
        "DEBUG": "1",
        "CELERY_BROKER_URL": broker_url,
        **env,
    }
    result = subprocess.run(
        [sys.executable, "-c", READ_SETTINGS],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    ("url", "rabbitmq"),
    [
        ("amqp://guest:guest@127.0.0.1:5672//", True),
        ("amqps://u:p@broker.example.com:5671/shop", True),
        ("pyamqp://127.0.0.1//", True),
        ("redis://127.0.0.1:6379/1", False),
        ("rediss://127.0.0.1:6379/1", False),
        ("", False),
    ],
)
def test_the_url_scheme_names_the_broker(url: str, rabbitmq: bool) -> None:
    assert is_rabbitmq_url(url) is rabbitmq


def test_rabbitmq_gets_quorum_queues_with_a_delivery_limit_and_publisher_confirms() -> None:
    config = settings_for("amqp://guest:guest@127.0.0.1:5672//", CELERY_BROKER_DELIVERY_LIMIT="3")

    names = {queue["name"] for queue in config["queues"]}
    assert names == {"default", "payments", "notifications", "webhooks"}
    for queue in config["queues"]:
        assert queue["arguments"] == {
            "x-queue-type": "quorum",
            "x-delivery-limit": 3,
            "x-dead-letter-exchange": "dead_letter",
        }
        # A topic exchange: countdowns wait in the broker (native delayed delivery).
        assert (queue["exchange"], queue["type"]) == ("tasks", "topic")
    assert config["default_queue_type"] == "quorum"
    assert config["options"]["confirm_publish"] is True
    assert "visibility_timeout" not in config["options"]
    assert (config["acks_late"], config["prefetch"]) == (True, 1)


def test_redis_keeps_its_transport_options_and_classic_routing() -> None:
    config = settings_for("redis://127.0.0.1:6379/1")

    assert config["queues"] == []
    assert config["default_queue_type"] is None
    assert config["options"] == {
        "visibility_timeout": 600,
        "socket_timeout": 0.5,
        "socket_connect_timeout": 0.5,
    }
    assert (config["acks_late"], config["prefetch"]) == (True, 1)


AMQP = "amqp://guest@127.0.0.1:5672//"


@pytest.mark.parametrize(
    ("countdown", "expected"), [(0.3, 1.0), (1.0, 1.0), (1.2, 2.0), (59.01, 60.0), (0, 0)]
)
def test_a_rabbitmq_countdown_is_rounded_up_to_whole_seconds(
    countdown: float, expected: float
) -> None:
    """Celery truncates a delayed-delivery countdown to an int and refuses one under 1 s."""
    assert _whole_broker_seconds(AMQP, eta=None, countdown=countdown) == (None, expected)


def test_a_rabbitmq_eta_becomes_a_whole_second_countdown() -> None:
    eta, countdown = _whole_broker_seconds(
        AMQP, eta=timezone.now() + timedelta(seconds=2.4), countdown=None
    )
    assert eta is None
    assert countdown == 3.0


def test_a_redis_countdown_and_eta_are_left_as_they_are() -> None:
    eta = timezone.now() + timedelta(seconds=2.4)
    assert _whole_broker_seconds("redis://127.0.0.1:6379/1", eta=eta, countdown=0.3) == (
        eta,
        0.3,
    )
