"""What the backlog gauges and `relay_outbox` count: rows whose task has not completed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from amqp.exceptions import ConnectionForced, NotAllowed
from django.core.management import call_command
from django.db import IntegrityError, InterfaceError, OperationalError
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ecommerce.outbox.models import OutboxMessage
from ecommerce.outbox.registry import backlog, pending_count
from ecommerce.resilience.retry import TRANSIENT_INFRASTRUCTURE_ERRORS
from tests.ecommerce.outbox.conftest import TOPIC


def message(*, age_seconds: float, completed: bool, leased: bool = True) -> OutboxMessage:
    now = timezone.now()
    row: OutboxMessage = OutboxMessage.objects.create(
        topic=TOPIC,
        task_name="tests.outbox.record",
        payload={"value": 1},
        lease_until=now + timedelta(seconds=300 if leased else -1),
        completed_at=now if completed else None,
    )
    OutboxMessage.objects.filter(pk=row.pk).update(created_at=now - timedelta(seconds=age_seconds))
    return row


@pytest.mark.django_db
def test_the_backlog_counts_rows_not_completed_and_dates_the_oldest_of_them():
    message(age_seconds=900, completed=True)
    oldest = message(age_seconds=120, completed=False)
    message(age_seconds=10, completed=False)

    count, since = backlog()

    assert count == pending_count() == 2
    assert since == OutboxMessage.objects.get(pk=oldest.pk).created_at


@pytest.mark.django_db
def test_an_empty_backlog_has_no_oldest():
    message(age_seconds=60, completed=True)
    assert backlog() == (0, None)


@pytest.mark.django_db
def test_relay_outbox_sends_every_row_not_completed_at_once_lease_or_not(
    handlers, on_commit, runs, capsys
):
    handlers("tests.outbox.record")
    leased = message(age_seconds=5, completed=False)
    due = message(age_seconds=5, completed=False, leased=False)
    message(age_seconds=5, completed=True)

    with on_commit():
        call_command("relay_outbox")

    assert sorted(m[2] for m in runs) == [leased.pk, due.pk]
    assert capsys.readouterr().out.strip() == "relayed 2 message(s); 0 not completed yet"


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (OperationalError("server closed the connection"), True),
        (InterfaceError("connection already closed"), True),
        (RedisConnectionError("Connection refused"), True),
        (RedisTimeoutError("Timeout reading from socket"), True),
        (BrokerError("Error 111 connecting"), True),
        (ConnectionForced("broker restarting"), True),
        (IntegrityError("duplicate key"), False),
        (ResponseError("WRONGTYPE"), False),
        (NotAllowed("vhost refused"), False),
        (ValueError("a bug"), False),
    ],
)
def test_only_infrastructure_errors_count_as_transient(error, transient):
    assert isinstance(error, TRANSIENT_INFRASTRUCTURE_ERRORS) is transient
