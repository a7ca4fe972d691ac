"""Stock changes through the services: all-or-nothing reservations and a ledger that sums."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.catalog import services
from apps.catalog.exceptions import OutOfStock
from apps.catalog.models import Product, StockMovement, StockReason
from apps.catalog.services import StockLine
from ecommerce.errors import InvalidInput
from tests.catalog.factories import make_product
from tests.catalog.helpers import assert_ledger_matches, ledger_sum

pytestmark = pytest.mark.django_db


def test_reserve_takes_every_line_and_writes_one_ledger_row_each():
    a, b = make_product(stock=5), make_product(stock=3)

    services.reserve_stock(
        lines=[StockLine(a.pk, 2), StockLine(b.pk, 3), StockLine(a.pk, 1)], reference="order-1"
    )

    assert Product.objects.get(pk=a.pk).stock == 2
    assert Product.objects.get(pk=b.pk).stock == 0
    rows = StockMovement.objects.filter(reference="order-1").order_by("product_id")
    assert [(r.product_id, r.delta, r.balance, r.reason) for r in rows] == [
        (a.pk, -3, 2, StockReason.ORDER),
        (b.pk, -3, 0, StockReason.ORDER),
    ]
    assert_ledger_matches(a.pk, b.pk)


def test_reserve_is_all_or_nothing_and_names_every_short_sku():
    a = make_product(sku="apple", stock=5)
    b = make_product(sku="banana", stock=1)
    c = make_product(sku="cherry", stock=0)

    with pytest.raises(OutOfStock) as caught:
        services.reserve_stock(
            lines=[StockLine(a.pk, 2), StockLine(b.pk, 4), StockLine(c.pk, 1)], reference="o"
        )

    assert caught.value.shortfalls == {
        "banana": {"requested": 4, "available": 1},
        "cherry": {"requested": 1, "available": 0},
    }
    assert caught.value.extra["shortfalls"][0] == {"sku": "banana", "requested": 4, "available": 1}
    assert [p.stock for p in Product.objects.filter(pk__in=[a.pk, b.pk, c.pk]).order_by("sku")] == [
        5,
        1,
        0,
    ]
    assert not StockMovement.objects.filter(reference="o").exists()


def test_a_failed_reservation_inside_an_outer_transaction_rolls_back_only_itself():
    a = make_product(stock=1)
    with transaction.atomic():
        with pytest.raises(OutOfStock):
            services.reserve_stock(lines=[StockLine(a.pk, 1), StockLine(a.pk, 1)], reference="x")
        services.reserve_stock(lines=[StockLine(a.pk, 1)], reference="y")
    assert Product.objects.get(pk=a.pk).stock == 0
    assert list(
        StockMovement.objects.filter(product=a, reason="order").values_list("reference", flat=True)
    ) == ["y"]


def test_release_puts_units_back_with_its_reason():
    a = make_product(stock=4)
    services.reserve_stock(lines=[StockLine(a.pk, 3)], reference="o1")

    services.release_stock(lines=[StockLine(a.pk, 3)], reason=StockReason.CANCEL, reference="o1")

    assert Product.objects.get(pk=a.pk).stock == 4
    assert list(
        StockMovement.objects.filter(reference="o1").order_by("pk").values_list("delta", "reason")
    ) == [(-3, "order"), (3, "cancel")]


@pytest.mark.parametrize("reason", [StockReason.ORDER, StockReason.RESTOCK, StockReason.ADJUSTMENT])
def test_release_refuses_reasons_other_than_cancel_and_expiry(reason):
    a = make_product(stock=1)
    with pytest.raises(InvalidInput):
        services.release_stock(lines=[StockLine(a.pk, 1)], reason=reason, reference="r")
    assert Product.objects.get(pk=a.pk).stock == 1


@pytest.mark.parametrize("quantity", [0, -1])
def test_non_positive_quantities_are_refused(quantity):
    a = make_product(stock=3)
    with pytest.raises(InvalidInput):
        services.reserve_stock(lines=[StockLine(a.pk, quantity)], reference="q")
    with pytest.raises(InvalidInput):
        services.restock(product_id=a.pk, quantity=quantity)
    assert Product.objects.get(pk=a.pk).stock == 3
    assert ledger_sum(a.pk) == 3


def test_adjust_below_zero_is_out_of_stock_and_changes_nothing():
    a = make_product(sku="widget", stock=2)
    with pytest.raises(OutOfStock) as caught:
        services.adjust_stock(product_id=a.pk, delta=-3, note="count")
    assert caught.value.shortfalls == {"widget": {"requested": 3, "available": 2}}
    assert Product.objects.get(pk=a.pk).stock == 2
    assert_ledger_matches(a.pk)


def test_the_database_refuses_negative_stock_even_without_the_service():
    a = make_product(stock=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        Product.objects.filter(pk=a.pk).update(stock=-1)


def test_ledger_rows_cannot_be_rewritten_or_deleted():
    a = make_product(stock=2)
    movement = StockMovement.objects.get(product=a)
    for sql in (
        "UPDATE catalog_stockmovement SET delta = 99 WHERE id = %s",
        "DELETE FROM catalog_stockmovement WHERE id = %s",
    ):
        with (
            pytest.raises(Exception, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, [movement.pk])
    assert ledger_sum(a.pk) == 2


OPERATIONS = st.lists(
    st.one_of(
        st.tuples(
            st.just("reserve"),
            st.lists(st.tuples(st.integers(0, 2), st.integers(1, 6)), min_size=1, max_size=3),
        ),
        st.tuples(
            st.just("release"),
            st.lists(st.tuples(st.integers(0, 2), st.integers(1, 6)), min_size=1, max_size=3),
        ),
        st.tuples(st.just("restock"), st.tuples(st.integers(0, 2), st.integers(1, 10))),
        st.tuples(st.just("adjust"), st.tuples(st.integers(0, 2), st.integers(-8, 8).filter(bool))),
    ),
    max_size=25,
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(operations=OPERATIONS, initial=st.lists(st.integers(0, 5), min_size=3, max_size=3))
def test_ledger_always_sums_to_stock(operations, initial):
    """Random reserve/release/restock/adjust sequences, including refused ones."""
    products = [make_product(stock=n) for n in initial]
    ids = [p.pk for p in products]
    expected = dict(zip(ids, initial, strict=True))
    for kind, payload in operations:
        before = dict(expected)
        try:
            if kind == "reserve":
                lines = [StockLine(ids[i], q) for i, q in payload]
                services.reserve_stock(lines=lines, reference="prop")
                for line in lines:
                    expected[line.product_id] -= line.quantity
            elif kind == "release":
                lines = [StockLine(ids[i], q) for i, q in payload]
                services.release_stock(lines=lines, reason=StockReason.CANCEL, reference="prop")
                for line in lines:
                    expected[line.product_id] += line.quantity
            elif kind == "restock":
                index, quantity = payload
                services.restock(product_id=ids[index], quantity=quantity)
                expected[ids[index]] += quantity
            else:
                index, delta = payload
                services.adjust_stock(product_id=ids[index], delta=delta)
                expected[ids[index]] += delta
        except OutOfStock:
            expected = before
            # The refusal must be justified: some line really asked for more than there was.
            wanted: dict[int, int] = {}
            if kind == "reserve":
                for i, q in payload:
                    wanted[ids[i]] = wanted.get(ids[i], 0) + q
            else:
                wanted[ids[payload[0]]] = -payload[1]
            assert any(q > before[pk] for pk, q in wanted.items())
        assert {p.pk: p.stock for p in Product.objects.filter(pk__in=ids)} == expected
        assert_ledger_matches(*ids)


def test_stock_past_the_column_range_is_refused_as_input_and_changes_nothing():
    # given: a product one restock short of the 32-bit column's maximum
    a = make_product(sku="widget", stock=5)
    services.adjust_stock(product_id=a.pk, delta=services.MAX_STOCK - 10, note="count")

    # when
    with pytest.raises(InvalidInput) as caught:
        services.restock(product_id=a.pk, quantity=11)

    # then: a business refusal naming the bound, not a database overflow
    assert str(caught.value) == (
        f"Stock of widget cannot exceed {services.MAX_STOCK} units: "
        f"it holds {services.MAX_STOCK - 5}, 11 more would pass that."
    )
    assert Product.objects.get(pk=a.pk).stock == services.MAX_STOCK - 5
    assert_ledger_matches(a.pk)
    services.restock(product_id=a.pk, quantity=5)
    assert Product.objects.get(pk=a.pk).stock == services.MAX_STOCK
