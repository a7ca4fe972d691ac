"""Warehouses, stock per variant and warehouse, and the stock ledger.

Invariant, per warehouse: for every (warehouse, variant), `Stock.quantity` equals the sum of
its StockMovement deltas and is >= 0. Only `apps.inventory.services` changes stock, and it
always writes the ledger rows in the same transaction. The ledger is append-only, enforced
by a database trigger (migration inventory.0001) on PostgreSQL.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from ecommerce.models import TimeStampedModel


class Warehouse(TimeStampedModel):
    """A stock location. It serves the countries of its shipping zones; one with no zone
    serves every destination. Orders take stock from the lowest `priority` first."""

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=120, unique=True)
    priority = models.PositiveIntegerField(
        default=100, help_text="Allocation order: lower numbers are used first."
    )
    is_active = models.BooleanField(default=True)
    shipping_zones = models.ManyToManyField(
        "shipping.ShippingZone", blank=True, related_name="warehouses"
    )

    class Meta:
        ordering = ("priority", "pk")

    def __str__(self) -> str:
        return self.name


class Stock(models.Model):
    """Units of one variant on hand in one warehouse."""

    warehouse = models.ForeignKey(Warehouse, on_delete=models.PROTECT, related_name="stocks")
    variant = models.ForeignKey(
        "catalog.ProductVariant", on_delete=models.PROTECT, related_name="stocks"
    )
    quantity = models.IntegerField(default=0, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["variant", "warehouse"], name="inventory_stock_variant_warehouse"
            ),
            models.CheckConstraint(
                condition=models.Q(quantity__gte=0), name="inventory_stock_gte_0"
            ),
        ]
        indexes = [models.Index(fields=["warehouse", "variant"], name="inventory_stock_wh_idx")]

    def __str__(self) -> str:
        # What staff read (admin titles, history): the SKU and the warehouse, not ids.
        return f"{self.variant.sku} in {self.warehouse.name}: {self.quantity}"


class StockReason(models.TextChoices):
    RESTOCK = "restock", "Restock"
    ADJUSTMENT = "adjustment", "Adjustment"
    ORDER = "order", "Order"
    CANCEL = "cancel", "Cancel"
    EXPIRY = "expiry", "Expiry"
    # Units a customer sent back, received into a warehouse staff chose (apps.orders returns).
    RETURN = "return", "Return"


class StockMovement(models.Model):
    """One append-only ledger row: a signed change of a variant's stock in a warehouse."""

    warehouse = models.ForeignKey(Warehouse, on_delete=models.PROTECT, related_name="movements")
    variant = models.ForeignKey(
        "catalog.ProductVariant", on_delete=models.PROTECT, related_name="movements"
    )
    delta = models.IntegerField()
    balance = models.IntegerField(
        help_text="Units of this variant in this warehouse right after this movement."
    )
    reason = models.CharField(max_length=16, choices=StockReason.choices)
    reference = models.CharField(max_length=64, blank=True)
    note = models.CharField(max_length=255, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-created_at", "-pk")
        constraints = [
            models.CheckConstraint(condition=~models.Q(delta=0), name="inventory_movement_nonzero"),
            models.CheckConstraint(
                condition=models.Q(reason__in=StockReason.values),
                name="inventory_movement_reason",
            ),
        ]
        indexes = [
            models.Index(fields=["variant", "-created_at"], name="inventory_mov_variant_idx"),
            models.Index(
                fields=["warehouse", "variant", "-created_at"], name="inventory_mov_wh_idx"
            ),
            models.Index(fields=["reference"], name="inventory_mov_ref_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.variant.sku} in {self.warehouse.name} {self.delta:+d} ({self.reason})"
