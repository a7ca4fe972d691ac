"""Categories, products and the stock ledger.

Invariant: for every product, the sum of its StockMovement deltas equals `stock`. Only
`apps.catalog.services` changes stock, and always writes the ledger row in the same
transaction.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models.functions import Upper

from ecommerce.models import TimeStampedModel

# A SKU is human-readable and holds at least one letter, so it never reads as a numeric id.
SKU_PATTERN = r"^(?=.*[A-Za-z])[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
sku_validator = RegexValidator(
    SKU_PATTERN,
    "A SKU is 1-64 letters, digits, '.', '_' or '-', starts with a letter or digit, "
    "and holds at least one letter.",
)


def store_currency() -> str:
    return settings.STORE_CURRENCY


class Category(TimeStampedModel):
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=120, unique=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        verbose_name_plural = "categories"
        ordering = ("name",)
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(parent=models.F("pk")), name="catalog_category_not_own_parent"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Product(TimeStampedModel):
    # Unique whatever the letter case (see Meta); stored as entered.
    sku = models.CharField(max_length=64, validators=[sku_validator])
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    price = models.DecimalField(
        max_digits=12, decimal_places=2, validators=[MinValueValidator(Decimal("0.01"))]
    )
    currency = models.CharField(max_length=3, default=store_currency)
    category = models.ForeignKey(
        Category, null=True, blank=True, on_delete=models.PROTECT, related_name="products"
    )
    is_active = models.BooleanField(default=True)
    stock = models.IntegerField(default=0, editable=False)

    class Meta:
        ordering = ("sku",)
        constraints = [
            models.UniqueConstraint(
                Upper("sku"),
                name="catalog_product_sku_ci_unique",
                violation_error_message="A product with this SKU exists (in some letter case).",
            ),
            models.CheckConstraint(condition=models.Q(stock__gte=0), name="catalog_stock_gte_0"),
            models.CheckConstraint(condition=models.Q(price__gt=0), name="catalog_price_gt_0"),
            models.CheckConstraint(
                condition=models.Q(currency__regex=r"^[A-Z]{3}$"),
                name="catalog_currency_iso4217",
            ),
        ]
        indexes = [
            # Public lists filter on active products and sort by price, name or newest.
            models.Index(fields=["is_active", "price"], name="catalog_active_price_idx"),
            models.Index(fields=["is_active", "name"], name="catalog_active_name_idx"),
            models.Index(fields=["is_active", "-created_at"], name="catalog_active_new_idx"),
            models.Index(fields=["category", "is_active"], name="catalog_category_active_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.sku} ({self.name})"

    @property
    def in_stock(self) -> bool:
        return self.stock > 0


class StockReason(models.TextChoices):
    RESTOCK = "restock", "Restock"
    ADJUSTMENT = "adjustment", "Adjustment"
    ORDER = "order", "Order"
    CANCEL = "cancel", "Cancel"
    EXPIRY = "expiry", "Expiry"


class StockMovement(models.Model):
    """One append-only ledger row: a signed change of a product's stock and why."""

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="movements")
    delta = models.IntegerField()
    balance = models.IntegerField(help_text="Stock on hand right after this movement.")
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
            models.CheckConstraint(condition=~models.Q(delta=0), name="catalog_movement_nonzero"),
            models.CheckConstraint(
                condition=models.Q(reason__in=StockReason.values), name="catalog_movement_reason"
            ),
        ]
        indexes = [
            models.Index(fields=["product", "-created_at"], name="catalog_movement_product_idx"),
            models.Index(fields=["reference"], name="catalog_movement_ref_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.product_id} {self.delta:+d} {self.reason}"
