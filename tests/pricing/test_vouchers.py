"""Vouchers one call at a time: which ones a customer may use, claiming a use and giving it
back, and the limits (the races are in test_voucher_races.py)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.pricing import selectors, services
from apps.pricing.exceptions import (
    VoucherAlreadyClaimed,
    VoucherExhausted,
    VoucherNotActive,
    VoucherNotFound,
    VoucherPerCustomerLimitReached,
)
from apps.pricing.models import Voucher, VoucherUse
from ecommerce.db import prepared
from tests.catalog.factories import CategoryFactory, make_product
from tests.pricing.factories import make_voucher
from tests.users.factories import UserFactory

pytestmark = pytest.mark.django_db


def used_count(code: str) -> int:
    return Voucher.objects.get(code=code).used_count


# --- Terms and refusals ---------------------------------------------------------------------


def test_voucher_terms_are_found_in_any_letter_case():
    category = CategoryFactory()
    product = make_product(sku="V1")
    make_voucher(
        "SUMMER",
        kind=Voucher.Kind.FIXED,
        value="5.00",
        min_spend=Decimal("30.00"),
        products=[product],
        categories=[category],
    )

    terms = selectors.voucher_terms("  summer ")

    assert terms.code == "SUMMER"
    assert terms.kind == "fixed"
    assert terms.value == Decimal("5.00")
    assert terms.currency == "EUR"
    assert terms.min_spend == Decimal("30.00")
    assert terms.product_ids == frozenset({product.pk})
    assert terms.category_ids == frozenset({category.pk})


@pytest.mark.parametrize("code", ["NOPE", "", "   ", "x" * 200])
def test_an_unknown_code_is_not_found(code):
    with pytest.raises(VoucherNotFound):
        selectors.voucher_terms(code)
    with pytest.raises(VoucherNotFound):
        services.claim_voucher(code=code, reference="order:a", user=None)
    assert not VoucherUse.objects.exists()


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"is_active": False}, "inactive"),
        ({"starts_at": timedelta(minutes=5)}, "not_started"),
        ({"ends_at": timedelta(seconds=-1)}, "ended"),
    ],
)
def test_a_voucher_outside_its_window_or_switched_off_is_refused(fields, reason):
    now = timezone.now()
    values = {k: now + v if isinstance(v, timedelta) else v for k, v in fields.items()}
    make_voucher("WINDOW", **values)
    customer = UserFactory()

    with pytest.raises(VoucherNotActive) as terms_error:
        selectors.voucher_terms("WINDOW")
    with pytest.raises(VoucherNotActive) as claim_error:
        services.claim_voucher(code="WINDOW", reference="order:w", user=customer)

    assert terms_error.value.reason == claim_error.value.reason == reason
    assert claim_error.value.extra == {"voucher_code": "WINDOW", "reason": reason}
    assert used_count("WINDOW") == 0
    assert not VoucherUse.objects.exists()


def test_a_voucher_inside_its_window_is_usable():
    now = timezone.now()
    make_voucher("NOW", starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=1))

    assert selectors.voucher_terms("NOW").code == "NOW"
    services.claim_voucher(code="NOW", reference="order:n", user=None)
    assert used_count("NOW") == 1


def test_the_window_is_judged_at_the_time_given():
    now = timezone.now()
    make_voucher("XMAS", starts_at=now + timedelta(days=10), ends_at=now + timedelta(days=11))

    assert selectors.voucher_terms("XMAS", now=now + timedelta(days=10, hours=1)).code == "XMAS"
    with pytest.raises(VoucherNotActive):
        selectors.voucher_terms("XMAS", now=now + timedelta(days=11))


def test_an_exhausted_voucher_is_refused_and_nothing_changes():
    make_voucher("GONE", usage_limit=3, used_count=3)

    with pytest.raises(VoucherExhausted):
        selectors.voucher_terms("GONE")
    with pytest.raises(VoucherExhausted):
        services.claim_voucher(code="GONE", reference="order:g", user=None)
    assert used_count("GONE") == 3
    assert not VoucherUse.objects.exists()


# --- Claim and release ----------------------------------------------------------------------


def test_claiming_records_the_use_and_counts_it():
    customer = UserFactory()
    make_voucher("TEN", usage_limit=10)

    use = services.claim_voucher(code="ten", reference="order:abc", user=customer)

    assert (use.voucher.code, use.reference, use.user, use.released_at) == (
        "TEN",
        "order:abc",
        customer,
        None,
    )
    assert used_count("TEN") == 1


def test_the_last_use_is_claimed_then_the_next_is_refused():
    make_voucher("LAST", usage_limit=2, used_count=1)

    services.claim_voucher(code="LAST", reference="order:1", user=None)
    with pytest.raises(VoucherExhausted):
        services.claim_voucher(code="LAST", reference="order:2", user=None)

    assert used_count("LAST") == 2
    assert list(VoucherUse.objects.values_list("reference", flat=True)) == ["order:1"]


def test_a_reference_claims_at_most_one_use():
    make_voucher("ONE")
    services.claim_voucher(code="ONE", reference="order:dup", user=None)

    with pytest.raises(VoucherAlreadyClaimed):
        services.claim_voucher(code="ONE", reference="order:dup", user=None)

    assert used_count("ONE") == 1
    assert VoucherUse.objects.count() == 1


def test_the_per_customer_limit_counts_only_that_customers_open_uses():
    make_voucher("TWICE", per_customer_limit=2)
    customer, other = UserFactory(), UserFactory()
    services.claim_voucher(code="TWICE", reference="order:1", user=customer)
    services.claim_voucher(code="TWICE", reference="order:2", user=customer)

    with pytest.raises(VoucherPerCustomerLimitReached) as refused:
        services.claim_voucher(code="TWICE", reference="order:3", user=customer)
    services.claim_voucher(code="TWICE", reference="order:4", user=other)

    assert refused.value.extra == {"voucher_code": "TWICE", "limit": 2}
    assert used_count("TWICE") == 3
    # A released use is the customer's to use again.
    assert services.release_voucher_use(reference="order:1", reason="cancelled") is True
    services.claim_voucher(code="TWICE", reference="order:5", user=customer)
    assert used_count("TWICE") == 3


def test_price_items_refuses_a_voucher_the_customer_has_used_up():
    make_voucher("ONCE", per_customer_limit=1)
    customer = UserFactory()
    variant = make_product(sku="ITEM").variant
    services.claim_voucher(code="ONCE", reference="order:1", user=customer)

    with pytest.raises(VoucherPerCustomerLimitReached):
        selectors.price_items(
            [(variant, 1)], currency="EUR", country="DE", voucher_code="ONCE", user=customer
        )
    breakdown = selectors.price_items(
        [(variant, 1)], currency="EUR", country="DE", voucher_code="ONCE", user=UserFactory()
    )
    assert breakdown.voucher_code == "ONCE"


def test_release_gives_the_use_back_exactly_once():
    make_voucher("BACK", usage_limit=1)
    services.claim_voucher(code="BACK", reference="order:r", user=None)

    first = services.release_voucher_use(reference="order:r", reason="expired")
    second = services.release_voucher_use(reference="order:r", reason="cancelled")

    assert (first, second) == (True, False)
    assert used_count("BACK") == 0
    use = VoucherUse.objects.get(reference="order:r")
    assert use.released_at is not None
    assert use.release_reason == "expired"
    # The use it gave back can be claimed by another order.
    services.claim_voucher(code="BACK", reference="order:s", user=None)
    assert used_count("BACK") == 1


def test_releasing_a_reference_without_a_use_changes_nothing():
    make_voucher("NONE", used_count=2)

    assert services.release_voucher_use(reference="order:unknown", reason="cancelled") is False
    assert used_count("NONE") == 2


def test_a_claim_is_one_update_and_one_insert_without_a_savepoint():
    make_voucher("QUICK", per_customer_limit=3)
    customer = UserFactory()

    with CaptureQueriesContext(connection) as queries:
        use = services.claim_voucher(code="QUICK", reference="order:q", user=customer)

    statements = [
        prepared.as_written(q["sql"]).split()[0].upper() for q in queries.captured_queries
    ]
    # The conditional UPDATE, the customer's open uses, the use's INSERT; the one savepoint
    # is the claim's own transaction, nested in the test's.
    assert [s for s in statements if s not in ("SAVEPOINT", "RELEASE")] == [
        "UPDATE",
        "SELECT",
        "INSERT",
    ], statements
    assert statements.count("SAVEPOINT") == 1, statements
    assert VoucherUse.objects.get(pk=use.pk).reference == "order:q"
    assert (used_count("QUICK"), use.voucher.used_count) == (1, 1)
