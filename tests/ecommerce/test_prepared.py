"""ecommerce.db.prepared: statements prepared once per connection, on a real PostgreSQL.

Each test's statements carry a comment of their own, so they are new to the connection
whatever ran on it before.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext

from ecommerce.db import prepared

pytestmark = pytest.mark.django_db


def _fresh(sql: str) -> str:
    return f"{sql} /* {uuid.uuid4().hex} */"


def _sent(captured: CaptureQueriesContext) -> list[str]:
    return [
        query["sql"]
        for query in captured.captured_queries
        if not query["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO"))
    ]


def _run(*statements: tuple[str, Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        prepared.execute(cursor, *statements)
        return cursor.fetchall()


def _held() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM pg_prepared_statements")
        return {name for (name,) in cursor.fetchall()}


def test_a_statement_is_prepared_on_first_use_and_only_executed_after():
    sql = _fresh("SELECT %s::int + 1")

    with CaptureQueriesContext(connection) as captured:
        results = [_run((sql, [n])) for n in range(3)]

    assert results == [[(1,)], [(2,)], [(3,)]]
    first, *later = _sent(captured)
    name = first.split()[1]
    assert first.startswith(f"PREPARE {name} AS SELECT $1::int + 1 /*")
    assert first.endswith(f"; EXECUTE {name}(0)")
    assert later == [f"EXECUTE {name}(1)", f"EXECUTE {name}(2)"]
    assert name in _held()


def test_named_parameters_repeat_and_statements_go_together_in_one_round_trip():
    named = _fresh("SELECT %(a)s::int * %(b)s::int + %(a)s::int")
    first = _fresh("SELECT %s::int")
    last = _fresh("SELECT %s::text || %s::text")

    assert _run((named, {"a": 2, "b": 5})) == [(12,)]
    with CaptureQueriesContext(connection) as captured:
        rows = _run((first, [1]), (last, ["a", "b"]))

    assert rows == [("ab",)]  # the last statement's result
    assert len(_sent(captured)) == 1
    with pytest.raises(ValueError, match="sent together take %s"):
        _run((first, [1]), (named, {"a": 1, "b": 1}))
    with pytest.raises(ValueError, match="takes named parameters"):
        _run((named, [1, 2]))
    with pytest.raises(ValueError, match="takes 1 parameters, got 2"):
        _run((first, [1, 2]))


def test_a_percent_sign_stays_a_percent_sign():
    sql = _fresh("SELECT '%%s' || %s::text, '100%%' LIKE %s")

    assert _run((sql, ["x", "1%%"])) == [("%sx", True)]
    assert _run((sql, ["y", "2%%"])) == [("%sy", False)]


def test_one_statement_twice_in_a_round_trip_is_prepared_once():
    sql = _fresh("SELECT %s::int")

    with CaptureQueriesContext(connection) as captured:
        rows = _run((sql, [1]), (sql, [2]))

    assert rows == [(2,)]
    (sent,) = _sent(captured)
    assert sent.count("PREPARE") == 1
    assert sent.count("EXECUTE") == 2


def test_after_a_failed_round_trip_the_connection_starts_over():
    failing = _fresh("SELECT 1 / %s::int")
    other = _fresh("SELECT %s::int * 10")
    assert _run((other, [1])) == [(10,)]

    with pytest.raises(DatabaseError, match="division by zero"), transaction.atomic():
        _run((failing, [0]))
    with CaptureQueriesContext(connection) as captured:
        rows = [_run((failing, [1])), _run((other, [2]))]

    assert rows == [[(1,)], [(20,)]]
    first, second = _sent(captured)
    # Whether the failed round trip's PREPARE took is not known: everything is dropped and
    # prepared again, each statement once.
    assert first.startswith("DEALLOCATE ALL; PREPARE ")
    assert second.startswith("PREPARE ")


def test_a_statement_the_server_lost_fails_once_and_is_prepared_again():
    sql = _fresh("SELECT %s::int")
    assert _run((sql, [1])) == [(1,)]
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")  # what a pooler's reset would do

    with pytest.raises(DatabaseError, match="does not exist"), transaction.atomic():
        _run((sql, [2]))

    assert _run((sql, [3])) == [(3,)]


def test_a_table_changed_under_a_statement_fails_it_once():
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE prepared_probe (a int)")
        cursor.execute("INSERT INTO prepared_probe VALUES (1)")
    sql = _fresh("SELECT * FROM prepared_probe WHERE a = %s")
    assert _run((sql, [1])) == [(1,)]
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE prepared_probe ADD COLUMN b int")

    changed = "cached plan must not change result type"
    with pytest.raises(DatabaseError, match=changed), transaction.atomic():
        _run((sql, [1]))

    assert _run((sql, [1])) == [(1, None)]


def test_a_connection_holds_a_bounded_number_and_then_starts_over(monkeypatch):
    monkeypatch.setattr(prepared, "_PER_CONNECTION", 2)
    statements = [_fresh("SELECT %s::int") for _ in range(3)]
    _run((statements[0], [0]))  # whatever the connection held before, it now holds 1 or 2

    with CaptureQueriesContext(connection) as captured:
        for n, sql in enumerate(statements):
            assert _run((sql, [n])) == [(n,)]

    assert any(sent.startswith("DEALLOCATE ALL; ") for sent in _sent(captured))
    assert len({name for name in _held() if name.startswith("ec_")}) <= 2


def test_switched_off_the_statements_are_sent_as_written(settings):
    settings.DATABASE_PREPARED_STATEMENTS = False
    sql = _fresh("SELECT %s::int + %s::int")

    with CaptureQueriesContext(connection) as captured:
        rows = _run((sql, [1, 2]), (sql, [3, 4]))

    assert rows == [(7,)]
    (sent,) = _sent(captured)
    assert sent.startswith("SELECT 1::int + 2::int /*")
    assert "; SELECT 3::int + 4::int /*" in sent
    assert "PREPARE" not in sent


def test_as_written_gives_the_statements_back():
    first = _fresh("SELECT %s::int")
    last = _fresh("SELECT %s::text")
    _run((first, [1]))

    with CaptureQueriesContext(connection) as captured:
        _run((first, [2]), (last, ["x"]))

    (sent,) = _sent(captured)
    assert prepared.as_written(sent) == (f"{first.replace('%s', '$1')}; {last.replace('%s', '$1')}")


@pytest.mark.django_db(transaction=True)
def test_a_new_connection_prepares_again():
    sql = _fresh("SELECT %s::int")
    assert _run((sql, [1])) == [(1,)]
    connection.close()

    with CaptureQueriesContext(connection) as captured:
        assert _run((sql, [2])) == [(2,)]

    (sent,) = _sent(captured)
    assert sent.startswith("PREPARE ")
