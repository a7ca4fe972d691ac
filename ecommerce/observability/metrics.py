"""Prometheus metrics, declared once; labels stay low-cardinality (names, outcomes)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

CACHE_REQUESTS = Counter(
    "ecommerce_cache_requests_total",
    "Read-through cache lookups by cache and result (hit, miss, error, bypass).",
    ["cache", "result"],
)
CACHE_COMPUTES = Counter(
    "ecommerce_cache_computes_total",
    "Values computed from the source of truth (database reads) behind a read-through cache.",
    ["cache"],
)
CACHE_INVALIDATION_ERRORS = Counter(
    "ecommerce_cache_invalidation_errors_total",
    "Invalidations that could not reach the cache.",
    ["cache"],
)
# The state lives in Redis and is shared; each process sets the gauge when it sees a
# transition or reads the state, so across processes the most recent write is the truth.
CIRCUIT_BREAKER_STATE = Gauge(
    "ecommerce_circuit_breaker_state",
    "Circuit breaker state by breaker name: 0 closed, 1 half_open, 2 open.",
    ["name"],
    multiprocess_mode="mostrecent",
)
CIRCUIT_BREAKER_TRANSITIONS = Counter(
    "ecommerce_circuit_breaker_transitions_total",
    "Circuit breaker state changes by breaker name, from state and to state.",
    ["name", "from_state", "to_state"],
)
