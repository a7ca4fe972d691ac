"""The span stores behind /traces stay bounded and return traces newest first."""

from __future__ import annotations

import uuid

import pytest

from ecommerce.observability.tracing import RedisSpanStore, SqliteSpanStore
from tests.servers import redis_server


def span(trace: int, n: int, start: float) -> dict[str, object]:
    return {
        "trace_id": f"{trace:032x}",
        "span_id": f"{n:016x}",
        "parent_id": None,
        "name": f"span {n}",
        "service": "test",
        "kind": "internal",
        "start": start,
        "duration_ms": 1.0,
        "status": "ok",
        "attributes": {},
    }


@pytest.fixture(params=["redis", "sqlite"])
def store(request, tmp_path):
    if request.param == "sqlite":
        yield SqliteSpanStore(path=str(tmp_path / "t.sqlite3"), max_traces=3, max_spans=4)
        return
    with redis_server() as server:
        yield RedisSpanStore(
            url=server.url, prefix=uuid.uuid4().hex, max_traces=3, max_spans=4, ttl_seconds=60
        )


def test_only_the_newest_traces_and_spans_are_kept(store):
    for trace in range(5):
        store.add([span(trace, n, start=100 + trace + n / 100) for n in range(6)])

    recent = store.recent(limit=10)

    assert [trace_id for trace_id, _ in recent] == [f"{t:032x}" for t in (4, 3, 2)]
    assert all(len(spans) == 4 for _, spans in recent)
    assert store.trace(f"{0:032x}") == []
    assert {s["span_id"] for s in store.trace(f"{4:032x}")} <= {f"{n:016x}" for n in range(6)}


def test_a_trace_keeps_its_earliest_start_when_children_arrive_first(store):
    store.add([span(1, 2, start=50.0)])
    store.add([span(2, 1, start=40.0)])
    store.add([span(1, 1, start=10.0)])  # the root of trace 1 ends (and arrives) last

    assert [trace_id for trace_id, _ in store.recent(limit=2)] == [f"{2:032x}", f"{1:032x}"]


def test_one_redis_batch_of_interleaved_traces_keeps_each_traces_newest_spans_in_order():
    """The Redis store writes a batch per trace (two commands each, not per span)."""
    batch = [span(trace, n, start=200 + n + (trace - 7) / 2) for n in range(6) for trace in (7, 8)]
    with redis_server() as server:
        store = RedisSpanStore(
            url=server.url, prefix=uuid.uuid4().hex, max_traces=3, max_spans=4, ttl_seconds=60
        )

        store.add(batch)

        for trace in (7, 8):
            kept = [s["span_id"] for s in store.trace(f"{trace:032x}")]
            assert kept == [f"{n:016x}" for n in range(2, 6)]  # the last four, in order
        assert [t for t, _ in store.recent(limit=5)] == [f"{8:032x}", f"{7:032x}"]


def test_a_redis_batch_costs_two_commands_per_trace_and_trims_only_what_outgrew():
    with redis_server() as server:
        store = RedisSpanStore(
            url=server.url, prefix=uuid.uuid4().hex, max_traces=3, max_spans=4, ttl_seconds=60
        )
        store.client.config_resetstat()

        store.add(
            [span(trace, n, start=300 + trace + n / 10) for trace in (1, 2) for n in range(3)]
        )
        calls = {
            name.removeprefix("cmdstat_"): stats["calls"]
            for name, stats in store.client.info("commandstats").items()
        }

        # One RPUSH and one EXPIRE per trace; one ZADD, EXPIRE and ZCARD for the batch; no
        # trace outgrew max_spans and the index holds fewer than max_traces: nothing else.
        assert {k: v for k, v in calls.items() if k not in {"config|resetstat", "info"}} == {
            "rpush": 2,
            "expire": 3,
            "zadd": 1,
            "zcard": 1,
        }
        assert [len(spans) for _, spans in store.recent(limit=5)] == [3, 3]
