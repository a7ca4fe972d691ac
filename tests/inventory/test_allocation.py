"""Allocation across warehouses: priority order, splitting, all or nothing, zone routing,
release back to where each unit came from, and the statements one allocation costs."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.inventory import selectors, services
from apps.inventory.exceptions import OutOfStock
from apps.inventory.models import Stock, StockMovement, StockReason
from apps.inventory.services import StockLine
from ecommerce.db import prepared
from tests.catalog.factories import make_product
from tests.catalog.helpers import assert_ledger_matches, stock_of
from tests.inventory.factories import make_warehouse, put_stock
from tests.inventory.threads import run_at_once

pytestmark = pytest.mark.django_db


def taken(reference: str) -> list[tuple[str, str, int]]:
    """(warehouse slug, sku, delta) of a reference's ledger rows, in a stable order."""
    return sorted(
        StockMovement.objects.filter(reference=reference).values_list(
            "warehouse__slug", "variant__sku", "delta"
        )
    )


def test_a_line_is_taken_from_the_first_warehouse_by_priority():
    # given: the higher-priority warehouse has a higher id, so id order would pick the other
    late = make_warehouse("late", priority=50)
    early = make_warehouse("early", priority=5)
    tee = make_product(sku="tee").variant
    put_stock(tee.pk, late, 10)
    put_stock(tee.pk, early, 10)

    services.allocate(lines=[StockLine(tee.pk, 4)], reference="o1")

    assert taken("o1") == [("early", "tee", -4)]
    assert (stock_of(tee.pk, early.pk), stock_of(tee.pk, late.pk)) == (6, 10)
    assert_ledger_matches(tee.pk)


def test_equal_priorities_are_broken_by_warehouse_id():
    first, second = make_warehouse("first", priority=7), make_warehouse("second", priority=7)
    tee = make_product(sku="tee").variant
    put_stock(tee.pk, second, 5)
    put_stock(tee.pk, first, 5)

    services.allocate(lines=[StockLine(tee.pk, 6)], reference="o1")

    assert taken("o1") == [("first", "tee", -5), ("second", "tee", -1)]


def test_a_line_the_first_warehouse_cannot_cover_is_split_across_two():
    a, b = make_warehouse("a", priority=1), make_warehouse("b", priority=2)
    tee, mug = make_product(sku="tee").variant, make_product(sku="mug").variant
    put_stock(tee.pk, a, 3)
    put_stock(tee.pk, b, 10)
    put_stock(mug.pk, b, 2)

    movements = services.allocate(
        lines=[StockLine(tee.pk, 5), StockLine(mug.pk, 2)], reference="o1"
    )

    assert taken("o1") == [("a", "tee", -3), ("b", "mug", -2), ("b", "tee", -2)]
    assert {(m.warehouse.slug, m.variant.sku): m.balance for m in movements} == {
        ("a", "tee"): 0,
        ("b", "tee"): 8,
        ("b", "mug"): 0,
    }
    assert [stock_of(tee.pk, a.pk), stock_of(tee.pk, b.pk), stock_of(mug.pk, b.pk)] == [0, 8, 0]
    assert_ledger_matches(tee.pk, mug.pk)


def test_one_short_line_refuses_the_whole_order_and_changes_no_row():
    # given: the tee could be split over two warehouses, the mug is one short in total
    a, b = make_warehouse("a", priority=1), make_warehouse("b", priority=2)
    tee, mug = make_product(sku="tee").variant, make_product(sku="mug").variant
    put_stock(tee.pk, a, 3)
    put_stock(tee.pk, b, 3)
    put_stock(mug.pk, a, 1)
    put_stock(mug.pk, b, 1)
    stock_before = list(Stock.objects.order_by("pk").values_list("pk", "quantity", "updated_at"))
    ledger_before = StockMovement.objects.count()

    with pytest.raises(OutOfStock) as caught:
        services.allocate(lines=[StockLine(tee.pk, 5), StockLine(mug.pk, 3)], reference="o1")

    assert caught.value.shortfalls == {"mug": {"requested": 3, "available": 2}}
    assert (
        list(Stock.objects.order_by("pk").values_list("pk", "quantity", "updated_at"))
        == stock_before
    )
    assert StockMovement.objects.count() == ledger_before
    assert not StockMovement.objects.filter(reference="o1").exists()


# --- zones ------------------------------------------------------------------------------------


@pytest.fixture
def zoned() -> dict[str, object]:
    """`de` serves DE and AT (priority 1), `fr` serves FR (2), `world` has no zone (3),
    `closed` has no zone and is inactive (0); each holds 5 tees. The default warehouse
    holds none."""
    selectors.default_warehouse()  # `main` again if a transactional test flushed it
    warehouses = {
        "de": make_warehouse("de", priority=1, countries=["DE", "AT"]),
        "fr": make_warehouse("fr", priority=2, countries=["FR"]),
        "world": make_warehouse("world", priority=3),
        "closed": make_warehouse("closed", priority=0),
    }
    tee = make_product(sku="tee").variant
    for warehouse in warehouses.values():
        put_stock(tee.pk, warehouse, 5)
    warehouses["closed"].is_active = False
    warehouses["closed"].save(update_fields=["is_active"])
    return {"tee": tee, **warehouses}


@pytest.mark.parametrize(
    ("country", "expected"),
    [
        ("DE", [("de", "tee", -5), ("world", "tee", -3)]),
        ("at", [("de", "tee", -5), ("world", "tee", -3)]),  # codes are matched in capitals
        ("FR", [("fr", "tee", -5), ("world", "tee", -3)]),
        ("JP", None),  # only `world` serves Japan: 5 < 8
        (None, [("de", "tee", -5), ("fr", "tee", -3)]),
        ("", [("de", "tee", -5), ("fr", "tee", -3)]),
    ],
)
def test_a_destination_is_served_by_its_zones_and_by_warehouses_without_one(
    zoned, country, expected
):
    tee = zoned["tee"]

    if expected is None:
        with pytest.raises(OutOfStock) as caught:
            services.allocate(lines=[StockLine(tee.pk, 8)], reference="o1", country=country)
        assert caught.value.shortfalls == {"tee": {"requested": 8, "available": 5}}
        assert taken("o1") == []
    else:
        services.allocate(lines=[StockLine(tee.pk, 8)], reference="o1", country=country)
        assert taken("o1") == expected
    assert stock_of(tee.pk, zoned["closed"].pk) == 5
    assert_ledger_matches(tee.pk)


def test_an_inactive_warehouse_is_never_used_even_when_nothing_else_has_stock(zoned):
    tee = zoned["tee"]
    services.allocate(lines=[StockLine(tee.pk, 15)], reference="o1")  # de, fr, world: 15

    with pytest.raises(OutOfStock) as caught:
        services.allocate(lines=[StockLine(tee.pk, 1)], reference="o2")

    assert caught.value.shortfalls == {"tee": {"requested": 1, "available": 0}}
    assert stock_of(tee.pk, zoned["closed"].pk) == 5
    assert taken("o2") == []


def test_a_warehouse_deactivated_or_rezoned_applies_to_the_very_next_order(zoned):
    tee = zoned["tee"]
    de = zoned["de"]
    de.is_active = False
    de.save(update_fields=["is_active"])

    services.allocate(lines=[StockLine(tee.pk, 1)], reference="o1", country="DE")
    zone = zoned["fr"].shipping_zones.get()
    zone.countries = ["FR", "DE"]
    zone.save(update_fields=["countries"])
    services.allocate(lines=[StockLine(tee.pk, 1)], reference="o2", country="DE")

    assert taken("o1") == [("world", "tee", -1)]
    assert taken("o2") == [("fr", "tee", -1)]


def test_warehouses_for_lists_the_serving_ones_in_allocation_order(zoned):
    assert [w.slug for w in selectors.warehouses_for("AT")] == ["de", "world", "main"]
    assert [w.slug for w in selectors.warehouses_for("FR")] == ["fr", "world", "main"]
    assert [w.slug for w in selectors.warehouses_for(None)] == ["de", "fr", "world", "main"]


# --- release ----------------------------------------------------------------------------------


@pytest.fixture
def split_order() -> dict[str, object]:
    """Order `o1` took 3 tees from `a` and 2 from `b`; both warehouses were then restocked."""
    a, b = make_warehouse("a", priority=1), make_warehouse("b", priority=2)
    tee = make_product(sku="tee").variant
    put_stock(tee.pk, a, 3)
    put_stock(tee.pk, b, 4)
    services.allocate(lines=[StockLine(tee.pk, 5)], reference="o1")
    put_stock(tee.pk, a, 10)
    return {"a": a, "b": b, "tee": tee}


def test_release_returns_each_unit_to_the_warehouse_it_came_from(split_order):
    a, b, tee = split_order["a"], split_order["b"], split_order["tee"]

    movements = services.release(reference="o1", reason=StockReason.EXPIRY)

    assert sorted((m.warehouse.slug, m.delta, m.balance, m.reason) for m in movements) == [
        ("a", 3, 13, "expiry"),
        ("b", 2, 4, "expiry"),
    ]
    assert (stock_of(tee.pk, a.pk), stock_of(tee.pk, b.pk)) == (13, 4)
    assert_ledger_matches(tee.pk)


def test_a_second_release_writes_nothing(split_order):
    a, b, tee = split_order["a"], split_order["b"], split_order["tee"]
    services.release(reference="o1", reason=StockReason.CANCEL)

    assert services.release(reference="o1", reason=StockReason.CANCEL) == []
    assert services.release(reference="o1", reason=StockReason.EXPIRY) == []

    assert StockMovement.objects.filter(reference="o1", delta__gt=0).count() == 2
    assert (stock_of(tee.pk, a.pk), stock_of(tee.pk, b.pk)) == (13, 4)
    assert_ledger_matches(tee.pk)


def test_units_go_back_to_their_warehouse_even_once_it_is_closed(split_order):
    # The units are physically there: closing a warehouse stops new allocations only.
    a, tee = split_order["a"], split_order["tee"]
    a.is_active = False
    a.save(update_fields=["is_active"])

    services.release(reference="o1", reason=StockReason.CANCEL)

    assert (stock_of(tee.pk, a.pk), stock_of(tee.pk, split_order["b"].pk)) == (13, 4)
    assert_ledger_matches(tee.pk)


@pytest.mark.django_db(transaction=True)
def test_four_concurrent_releases_return_the_units_once():
    a, b = make_warehouse("a", priority=1), make_warehouse("b", priority=2)
    tee = make_product(sku="tee").variant
    put_stock(tee.pk, a, 3)
    put_stock(tee.pk, b, 4)
    for round_ in range(5):  # a few rounds: the race is lost in a different place each time
        reference = f"o{round_}"
        services.allocate(lines=[StockLine(tee.pk, 5)], reference=reference)
        results = run_at_once(
            4,
            lambda _i, ref=reference: services.release(reference=ref, reason=StockReason.CANCEL),
        )

        assert all(isinstance(r, list) for r in results), results
        assert sorted(len(r) for r in results) == [0, 0, 0, 2], results
        assert StockMovement.objects.filter(reference=reference, delta__gt=0).count() == 2
        assert (stock_of(tee.pk, a.pk), stock_of(tee.pk, b.pk)) == (3, 4)
        assert_ledger_matches(tee.pk)


# --- cost -------------------------------------------------------------------------------------


def statements(context: CaptureQueriesContext) -> list[str]:
    return [
        prepared.as_written(q["sql"])
        for q in context.captured_queries
        if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))
    ]


def test_an_allocation_costs_one_statement_however_many_lines_and_warehouses(zoned):
    tee = zoned["tee"]
    others = [make_product(sku=f"o{i}").variant for i in range(3)]
    for variant in others:
        put_stock(variant.pk, zoned["fr"], 2)
        put_stock(variant.pk, zoned["world"], 2)
    lines = [StockLine(tee.pk, 8)] + [StockLine(v.pk, 3) for v in others]

    with CaptureQueriesContext(connection) as context:
        movements = services.allocate(lines=lines, reference="o1", country="FR")

    sql = statements(context)
    assert len(sql) == 1, sql
    # One statement locks the serving rows in stock id order, splits and takes every line,
    # and writes the ledger.
    assert sql[0].lstrip().startswith("WITH")
    assert 'ORDER BY 1 ASC FOR UPDATE OF "inventory_stock"' in sql[0]  # 1: the stock id
    assert "UPDATE inventory_stock" in sql[0]
    assert "INSERT INTO inventory_stockmovement" in sql[0]
    assert len(taken("o1")) == 8
    assert sum(m.delta for m in StockMovement.objects.filter(reference="o1")) == -17
    # What it returns is what it stored, in stock id order, with the balances left.
    stored = StockMovement.objects.filter(reference="o1").order_by("pk")
    fields = ("pk", "warehouse_id", "variant_id", "delta", "balance", "reason", "reference")
    assert [tuple(getattr(m, f) for f in fields) for m in movements] == [
        tuple(getattr(m, f) for f in fields) for m in stored
    ]
    for movement in movements:
        assert (
            movement.balance
            == Stock.objects.get(
                warehouse_id=movement.warehouse_id, variant_id=movement.variant_id
            ).quantity
        )


def test_a_short_allocation_costs_one_statement_more_and_changes_nothing(zoned):
    tee = zoned["tee"]
    before = list(Stock.objects.order_by("pk").values_list("pk", "quantity"))

    with CaptureQueriesContext(connection) as context, pytest.raises(OutOfStock):
        services.allocate(lines=[StockLine(tee.pk, 1000)], reference="o1", country="FR")

    sql = statements(context)
    assert sql[0].lstrip().startswith("WITH")
    assert sql[1].startswith("SELECT")  # under the locks, to say what is short
    assert list(Stock.objects.order_by("pk").values_list("pk", "quantity")) == before
    assert not StockMovement.objects.filter(reference="o1").exists()


def test_a_release_costs_four_statements(split_order):
    with CaptureQueriesContext(connection) as context:
        services.release(reference="o1", reason=StockReason.CANCEL)

    sql = statements(context)
    assert len(sql) == 4, sql
    assert sql[0].endswith('FOR UPDATE OF "inventory_stock"')
