"""Inventory invariants: per warehouse, stock on hand equals its ledger and is never
below zero."""

from __future__ import annotations

from django.db.models import Sum

from apps.inventory.models import Stock, StockMovement
from ecommerce.invariants import CheckContext, Outcome, invariant


@invariant("inventory.stock_matches_ledger")
def stock_matches_ledger(context: CheckContext) -> Outcome:
    """Every (warehouse, variant) stock equals the sum of its ledger rows and is >= 0, and
    no ledger row names a pair without a stock row.

    Stock is a running total, so it is checked whole whatever `--since` says.
    """
    ledger = {
        (warehouse, variant): total
        for warehouse, variant, total in StockMovement.objects.values("warehouse_id", "variant_id")
        .annotate(total=Sum("delta"))
        .values_list("warehouse_id", "variant_id", "total")
    }
    outcome = Outcome()
    seen = set()
    rows = Stock.objects.order_by("pk").values_list(
        "warehouse__slug", "warehouse_id", "variant__sku", "variant_id", "quantity"
    )
    for warehouse_slug, warehouse, sku, variant, quantity in rows.iterator(chunk_size=5000):
        outcome.checked += 1
        seen.add((warehouse, variant))
        total = ledger.get((warehouse, variant)) or 0
        if quantity != total:
            outcome.fail(f"{sku} in {warehouse_slug}: stock {quantity}, ledger sums to {total}")
        if quantity < 0:
            outcome.fail(f"{sku} in {warehouse_slug}: stock {quantity} is negative")
    for (warehouse, variant), total in sorted(ledger.items()):
        if (warehouse, variant) not in seen and total:
            outcome.fail(
                f"variant {variant} in warehouse {warehouse}: ledger sums to {total} "
                "but there is no stock row"
            )
    return outcome
