"""Catalog invariants: stock on hand equals its ledger, and never goes below zero."""

from __future__ import annotations

from django.db.models import Sum

from apps.catalog.models import Product, StockMovement
from ecommerce.invariants import CheckContext, Outcome, invariant


@invariant("catalog.stock_matches_ledger")
def stock_matches_ledger(context: CheckContext) -> Outcome:
    """Every product's stock equals the sum of its ledger rows and is >= 0.

    Stock is a running total, so it is checked for every product whatever `--since` says.
    """
    ledger = dict(
        StockMovement.objects.values("product_id")
        .annotate(total=Sum("delta"))
        .values_list("product_id", "total")
    )
    outcome = Outcome()
    for pk, sku, stock in Product.objects.order_by("pk").values_list("pk", "sku", "stock"):
        outcome.checked += 1
        total = ledger.get(pk) or 0
        if stock != total:
            outcome.fail(f"product {pk} {sku}: stock {stock}, ledger sums to {total}")
        if stock < 0:
            outcome.fail(f"product {pk} {sku}: stock {stock} is negative")
    return outcome
