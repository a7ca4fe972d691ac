"""Assertions about stock and its ledger, per warehouse."""

from __future__ import annotations

from django.db.models import Sum

from apps.catalog.models import ProductVariant
from apps.inventory.models import Stock, StockMovement


def stock_of(variant_id: int, warehouse_id: int | None = None) -> int:
    """Units of a variant on hand, in one warehouse or in all."""
    rows = Stock.objects.filter(variant_id=variant_id)
    if warehouse_id is not None:
        rows = rows.filter(warehouse_id=warehouse_id)
    return rows.aggregate(s=Sum("quantity"))["s"] or 0


def ledger_sum(variant_id: int, warehouse_id: int | None = None) -> int:
    rows = StockMovement.objects.filter(variant_id=variant_id)
    if warehouse_id is not None:
        rows = rows.filter(warehouse_id=warehouse_id)
    return rows.aggregate(s=Sum("delta"))["s"] or 0


def assert_ledger_matches(*variant_ids: int) -> None:
    """For each variant, in every warehouse: stock >= 0 and equal to its ledger sum."""
    ids = variant_ids or tuple(ProductVariant.objects.values_list("pk", flat=True))
    for stock in Stock.objects.filter(variant_id__in=ids):
        assert stock.quantity >= 0
        assert ledger_sum(stock.variant_id, stock.warehouse_id) == stock.quantity, (
            f"ledger of variant {stock.variant_id} in warehouse {stock.warehouse_id} "
            "disagrees with its stock"
        )
