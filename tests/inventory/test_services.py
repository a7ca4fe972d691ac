"""Stock changes through the services: all-or-nothing allocations and a ledger that sums,
in one warehouse (the default one a fresh install has)."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.inventory import selectors, services
from apps.inventory.exceptions import OutOfStock
from apps.inventory.models import Stock, StockMovement, StockReason
from apps.inventory.services import StockLine
from ecommerce.errors import InvalidInput
from tests.catalog.factories import make_product
from tests.catalog.helpers import assert_ledger_matches, ledger_sum, stock_of

pytestmark = pytest.mark.django_db


def test_allocate_takes_every_line_and_writes_one_ledger_row_each():
    a, b = make_product(stock=5).variant, make_product(stock=3).variant
    main = selectors.default_warehouse()

    services.allocate(
        lines=[StockLine(a.pk, 2), StockLine(b.pk, 3), StockLine(a.pk, 1)], reference="order-1"
    )

    assert (stock_of(a.pk), stock_of(b.pk)) == (2, 0)
    rows = StockMovement.objects.filter(reference="order-1").order_by("variant_id")
    assert [(r.variant_id, r.warehouse_id, r.delta, r.balance, r.reason) for r in rows] == [
        (a.pk, main.pk, -3, 2, StockReason.ORDER),
        (b.pk, main.pk, -3, 0, StockReason.ORDER),
    ]
    assert_ledger_matches(a.pk, b.pk)


def test_allocate_is_all_or_nothing_and_names_every_short_sku():
    a = make_product(sku="apple", stock=5).variant
    b = make_product(sku="banana", stock=1).variant
    c = make_product(sku="cherry", stock=0).variant

    with pytest.raises(OutOfStock) as caught:
        services.allocate(
            lines=[StockLine(a.pk, 2), StockLine(b.pk, 4), StockLine(c.pk, 1)], reference="o"
        )

    assert caught.value.shortfalls == {
        "banana": {"requested": 4, "available": 1},
        "cherry": {"requested": 1, "available": 0},
    }
    assert caught.value.extra["shortfalls"][0] == {"sku": "banana", "requested": 4, "available": 1}
    assert [stock_of(v.pk) for v in (a, b, c)] == [5, 1, 0]
    assert not StockMovement.objects.filter(reference="o").exists()


def test_a_failed_allocation_inside_an_outer_transaction_rolls_back_only_itself():
    a = make_product(stock=1).variant
    with transaction.atomic():
        with pytest.raises(OutOfStock):
            services.allocate(lines=[StockLine(a.pk, 1), StockLine(a.pk, 1)], reference="x")
        services.allocate(lines=[StockLine(a.pk, 1)], reference="y")
    assert stock_of(a.pk) == 0
    assert list(
        StockMovement.objects.filter(variant=a, reason="order").values_list("reference", flat=True)
    ) == ["y"]


def test_release_puts_units_back_with_its_reason():
    a = make_product(stock=4).variant
    services.allocate(lines=[StockLine(a.pk, 3)], reference="o1")

    services.release(reference="o1", reason=StockReason.CANCEL)

    assert stock_of(a.pk) == 4
    assert list(
        StockMovement.objects.filter(reference="o1").order_by("pk").values_list("delta", "reason")
    ) == [(-3, "order"), (3, "cancel")]


def test_releasing_an_unknown_reference_writes_nothing():
    a = make_product(stock=4).variant

    assert services.release(reference="never-allocated", reason=StockReason.EXPIRY) == []

    assert stock_of(a.pk) == 4
    assert StockMovement.objects.filter(variant=a).count() == 1


@pytest.mark.parametrize("reason", [StockReason.ORDER, StockReason.RESTOCK, StockReason.ADJUSTMENT])
def test_release_refuses_reasons_other_than_cancel_and_expiry(reason):
    a = make_product(stock=1).variant
    services.allocate(lines=[StockLine(a.pk, 1)], reference="r")
    with pytest.raises(InvalidInput):
        services.release(reference="r", reason=reason)
    assert stock_of(a.pk) == 0
    assert StockMovement.objects.filter(reference="r").count() == 1


@pytest.mark.parametrize("quantity", [0, -1])
def test_non_positive_quantities_are_refused(quantity):
    a = make_product(stock=3).variant
    with pytest.raises(InvalidInput):
        services.allocate(lines=[StockLine(a.pk, quantity)], reference="q")
    with pytest.raises(InvalidInput):
        services.restock(variant_id=a.pk, quantity=quantity)
    assert stock_of(a.pk) == 3
    assert ledger_sum(a.pk) == 3


def test_adjust_below_zero_is_out_of_stock_and_changes_nothing():
    a = make_product(sku="widget", stock=2).variant
    with pytest.raises(OutOfStock) as caught:
        services.adjust_stock(variant_id=a.pk, delta=-3, note="count")
    assert caught.value.shortfalls == {"widget": {"requested": 3, "available": 2}}
    assert stock_of(a.pk) == 2
    assert_ledger_matches(a.pk)


def test_a_stock_count_moves_stock_by_the_difference_once():
    a = make_product(sku="count", stock=7).variant

    movement = services.set_stock_level(variant_id=a.pk, target=4, note="count")
    again = services.set_stock_level(variant_id=a.pk, target=4, note="count")

    assert (movement.delta, movement.balance, movement.reason) == (-3, 4, StockReason.ADJUSTMENT)
    assert again is None
    assert stock_of(a.pk) == 4
    assert_ledger_matches(a.pk)


def test_a_restock_of_a_variant_that_does_not_exist_is_refused():
    with pytest.raises(InvalidInput, match="Variant 987654 does not exist"):
        services.restock(variant_id=987654, quantity=1)
    assert not Stock.objects.filter(variant_id=987654).exists()


def test_the_database_refuses_negative_stock_even_without_the_service():
    a = make_product(stock=1).variant
    with pytest.raises(IntegrityError), transaction.atomic():
        Stock.objects.filter(variant=a).update(quantity=-1)


def test_ledger_rows_cannot_be_rewritten_or_deleted():
    a = make_product(stock=2).variant
    movement = StockMovement.objects.get(variant=a)
    for sql in (
        "UPDATE inventory_stockmovement SET delta = 99 WHERE id = %s",
        "DELETE FROM inventory_stockmovement WHERE id = %s",
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
            st.just("allocate"),
            st.lists(st.tuples(st.integers(0, 2), st.integers(1, 6)), min_size=1, max_size=3),
        ),
        st.tuples(st.just("release"), st.integers(0, 30)),
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
    """Random allocate/release/restock/adjust sequences, including refused ones and
    releases of references that hold nothing or were released already."""
    ids = [make_product(stock=n).variant.pk for n in initial]
    expected = dict(zip(ids, initial, strict=True))
    held: dict[str, dict[int, int]] = {}  # what each allocation still holds
    for step, (kind, payload) in enumerate(operations):
        before = dict(expected)
        try:
            if kind == "allocate":
                lines = [StockLine(ids[i], q) for i, q in payload]
                services.allocate(lines=lines, reference=f"prop-{step}")
                held[f"prop-{step}"] = {}
                for line in lines:
                    expected[line.variant_id] -= line.quantity
                    taken = held[f"prop-{step}"]
                    taken[line.variant_id] = taken.get(line.variant_id, 0) + line.quantity
            elif kind == "release":
                reference = f"prop-{payload}"
                services.release(reference=reference, reason=StockReason.CANCEL)
                for variant_id, quantity in held.pop(reference, {}).items():
                    expected[variant_id] += quantity
            elif kind == "restock":
                index, quantity = payload
                services.restock(variant_id=ids[index], quantity=quantity)
                expected[ids[index]] += quantity
            else:
                index, delta = payload
                services.adjust_stock(variant_id=ids[index], delta=delta)
                expected[ids[index]] += delta
        except OutOfStock:
            expected = before
            # The refusal must be justified: some line really asked for more than there was.
            wanted: dict[int, int] = {}
            if kind == "allocate":
                for i, q in payload:
                    wanted[ids[i]] = wanted.get(ids[i], 0) + q
            else:
                wanted[ids[payload[0]]] = -payload[1]
            assert any(q > before[pk] for pk, q in wanted.items())
        assert {pk: stock_of(pk) for pk in ids} == expected
        assert_ledger_matches(*ids)


def test_stock_past_the_column_range_is_refused_as_input_and_changes_nothing():
    # given: a variant one restock short of the 32-bit column's maximum
    a = make_product(sku="widget", stock=5).variant
    services.adjust_stock(variant_id=a.pk, delta=services.MAX_STOCK - 10, note="count")

    # when
    with pytest.raises(InvalidInput) as caught:
        services.restock(variant_id=a.pk, quantity=11)

    # then: a business refusal naming the bound, not a database overflow
    assert str(caught.value) == (
        f"Stock of widget in main cannot exceed {services.MAX_STOCK} units: "
        f"it holds {services.MAX_STOCK - 5}, 11 more would pass that."
    )
    assert stock_of(a.pk) == services.MAX_STOCK - 5
    assert_ledger_matches(a.pk)
    services.restock(variant_id=a.pk, quantity=5)
    assert stock_of(a.pk) == services.MAX_STOCK
