from __future__ import annotations

from collections.abc import Iterator

import pytest

from ecommerce import caching


@pytest.fixture(autouse=True)
def _cache_not_bypassed() -> Iterator[None]:
    """A failure simulated by one test must not make the next one skip the cache."""
    caching.reset_bypass()
    yield
    caching.reset_bypass()
