"""Resilience helpers shared by every process: circuit breaker, distributed lock, retry policy."""
