"""Carts and their lines: what a customer means to buy, priced afresh on every read."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models

from ecommerce.models import TimeStampedModel

TOKEN_BYTES = 24  # secrets.token_urlsafe(24): 32 URL-safe characters, 192 bits


def new_cart_token() -> str:
    """An unguessable cart address: an anonymous cart is reachable by it alone."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def store_currency() -> str:
    return str(settings.STORE_CURRENCY)


class CartStatus(models.TextChoices):
    OPEN = "open", "Open"
    CHECKED_OUT = "checked_out", "Checked out"
    # An anonymous cart whose lines went into its owner's cart at sign-in.
    MERGED = "merged", "Merged"


class Cart(TimeStampedModel):
    """One customer's (or one anonymous visitor's) cart.

    `updated_at` is the last activity: a cart idle for CART_IDLE_SECONDS is gone (404) and
    the beat task deletes it. A signed-in customer has at most one open cart (constraint).
    """

    token = models.CharField(max_length=64, unique=True, default=new_cart_token, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="carts",
    )
    status = models.CharField(max_length=16, choices=CartStatus.choices, default=CartStatus.OPEN)
    currency = models.CharField(max_length=3, default=store_currency)
    # The shipping address's country: taxes, shipping methods and serving warehouses.
    country = models.CharField(max_length=2, blank=True, default="")
    shipping_address = models.JSONField(default=dict, blank=True)
    billing_address = models.JSONField(default=dict, blank=True)
    save_addresses = models.BooleanField(
        default=False, help_text="Copy the addresses to the customer's address book at checkout."
    )
    shipping_method_id = models.PositiveIntegerField(null=True, blank=True)
    voucher_code = models.CharField(max_length=64, blank=True, default="")
    order_public_id = models.UUIDField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user"],
                condition=models.Q(status="open", user__isnull=False),
                name="checkout_one_open_cart_per_user",
            ),
            models.CheckConstraint(
                condition=models.Q(country="") | models.Q(country__regex=r"^[A-Z]{2}$"),
                name="checkout_cart_country_iso3166",
            ),
        ]
        indexes = [models.Index(fields=["updated_at"], name="checkout_cart_updated_idx")]

    def __str__(self) -> str:
        return f"cart {self.pk} ({self.status})"


class CartLine(models.Model):
    """A variant and how many; the price seen when it was added tells a later change."""

    cart = models.ForeignKey(Cart, on_delete=models.CASCADE, related_name="lines")
    variant = models.ForeignKey(
        "catalog.ProductVariant", on_delete=models.PROTECT, related_name="cart_lines"
    )
    quantity = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    price_when_added = models.DecimalField(max_digits=12, decimal_places=3)
    currency_when_added = models.CharField(max_length=3)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("created_at", "pk")
        constraints = [
            models.UniqueConstraint(
                fields=["cart", "variant"], name="checkout_cart_variant_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(quantity__gte=1), name="checkout_cartline_quantity_gte_1"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x variant {self.variant_id}"
