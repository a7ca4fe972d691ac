"""Voucher limits under real concurrency: threads, each on its own database connection,
claiming and releasing through the services inside their own transactions."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connection, transaction

from apps.pricing import services
from apps.pricing.exceptions import VoucherExhausted, VoucherPerCustomerLimitReached
from apps.pricing.models import Voucher, VoucherUse
from tests.pricing.factories import make_voucher
from tests.users.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

# The server is shared: at most this many connections at once, far more callers than that.
MAX_CONNECTIONS = 24


def race(count: int, work: Callable[[int], Any], *, workers: int = MAX_CONNECTIONS) -> list[Any]:
    """Run `work(i)` for i < count on `workers` threads that start together, each thread
    on its own connection (closed after every call); returns results or exceptions."""
    start = threading.Barrier(min(workers, count))
    started = threading.local()

    def one(i: int) -> Any:
        try:
            if not getattr(started, "done", False):
                started.done = True
                start.wait()
            return work(i)
        except Exception as exc:  # collected for the assertions
            return exc
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, range(count)))


def claim_in_order_transaction(code: str, reference: str, user: Any) -> VoucherUse:
    """Claim as checkout does: inside a transaction that goes on doing work (the order's
    rows) while the voucher row stays locked."""
    with transaction.atomic():
        use = services.claim_voucher(code=code, reference=reference, user=user)
        time.sleep(0.002)
    return use


def test_two_hundred_buyers_racing_for_the_last_ten_uses_get_exactly_ten():
    voucher = make_voucher("LAST10", usage_limit=50, used_count=40)
    buyers = [UserFactory() for _ in range(200)]

    results = race(
        200, lambda i: claim_in_order_transaction("last10", f"order:race-{i}", buyers[i])
    )

    claimed = [r for r in results if isinstance(r, VoucherUse)]
    refused = [r for r in results if not isinstance(r, VoucherUse)]
    assert len(claimed) == 10
    assert len(refused) == 190
    assert all(isinstance(r, VoucherExhausted) for r in refused), {type(r) for r in refused}
    voucher.refresh_from_db()
    assert voucher.used_count == voucher.usage_limit == 50
    assert VoucherUse.objects.filter(voucher=voucher).count() == 10
    assert set(VoucherUse.objects.values_list("reference", flat=True)) == {
        use.reference for use in claimed
    }


def test_one_customer_claiming_twenty_times_at_once_gets_one_use():
    voucher = make_voucher("ONCE", per_customer_limit=1)
    customer = UserFactory()

    results = race(20, lambda i: claim_in_order_transaction("ONCE", f"order:c-{i}", customer))

    claimed = [r for r in results if isinstance(r, VoucherUse)]
    assert len(claimed) == 1
    assert all(isinstance(r, VoucherPerCustomerLimitReached) for r in results if r not in claimed)
    voucher.refresh_from_db()
    assert voucher.used_count == 1
    assert VoucherUse.objects.filter(voucher=voucher, user=customer).count() == 1


def test_per_customer_limit_leaves_other_customers_alone_under_concurrency():
    voucher = make_voucher("TWICE", per_customer_limit=2, usage_limit=100)
    customers = [UserFactory() for _ in range(5)]

    # Each customer tries four times: two uses each get through.
    results = race(
        20, lambda i: claim_in_order_transaction("TWICE", f"order:t-{i}", customers[i % 5])
    )

    assert sum(isinstance(r, VoucherUse) for r in results) == 10
    voucher.refresh_from_db()
    assert voucher.used_count == 10
    for customer in customers:
        assert VoucherUse.objects.filter(voucher=voucher, user=customer).count() == 2


def test_twenty_concurrent_releases_of_one_use_give_it_back_once():
    voucher = make_voucher("BACK", usage_limit=5)
    others = [UserFactory() for _ in range(3)]
    for i, user in enumerate(others):
        services.claim_voucher(code="BACK", reference=f"order:kept-{i}", user=user)
    services.claim_voucher(code="BACK", reference="order:released", user=UserFactory())

    results = race(
        20,
        lambda i: services.release_voucher_use(reference="order:released", reason="expired"),
    )

    assert results.count(True) == 1
    assert results.count(False) == 19
    voucher.refresh_from_db()
    assert voucher.used_count == 3
    use = VoucherUse.objects.get(reference="order:released")
    assert use.released_at is not None
    assert use.release_reason == "expired"
    assert VoucherUse.objects.filter(voucher=voucher, released_at__isnull=True).count() == 3


def test_claims_and_releases_interleaved_never_break_the_limit():
    voucher = make_voucher("CHURN", usage_limit=5)
    for i in range(5):
        services.claim_voucher(code="CHURN", reference=f"order:first-{i}", user=None)

    def work(i: int) -> Any:
        if i < 5:
            return services.release_voucher_use(reference=f"order:first-{i}", reason="cancelled")
        return claim_in_order_transaction("CHURN", f"order:second-{i}", None)

    results = race(40, work)

    assert results[:5] == [True] * 5
    voucher.refresh_from_db()
    open_uses = VoucherUse.objects.filter(voucher=voucher, released_at__isnull=True).count()
    assert voucher.used_count == open_uses <= 5
    assert Voucher.objects.get(pk=voucher.pk).used_count >= 0
