"""Runtime tuning of the server processes (ecommerce/runtime.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from ecommerce.runtime import freeze_loaded_objects


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_what_was_loaded_is_left_out_of_full_collections(unfrozen: None) -> None:
    loaded = [object() for _ in range(1000)]  # noqa: F841  (kept alive: part of "the app")
    tracked = len(gc.get_objects())

    freeze_loaded_objects()

    assert gc.get_freeze_count() >= tracked * 0.9  # all of it, but the garbage collected
    assert len(gc.get_objects()) < tracked // 10  # what a full pass still walks
