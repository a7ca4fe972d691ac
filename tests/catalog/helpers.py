"""Assertions about stock and its ledger."""

from __future__ import annotations

from django.db.models import Sum

from apps.catalog.models import Product, StockMovement


def ledger_sum(product_id: int) -> int:
    return StockMovement.objects.filter(product_id=product_id).aggregate(s=Sum("delta"))["s"] or 0


def assert_ledger_matches(*product_ids: int) -> None:
    for product_id in product_ids:
        stock = Product.objects.values_list("stock", flat=True).get(pk=product_id)
        assert stock >= 0
        assert ledger_sum(product_id) == stock, f"ledger of {product_id} disagrees with stock"
