"""Prometheus metrics, declared once; labels stay low-cardinality (names, outcomes)."""

from __future__ import annotations

from prometheus_client import Counter

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
