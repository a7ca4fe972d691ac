"""Shipping zones (the sets of countries that warehouses serve), the methods that ship to
them, and the rate bands of methods priced by weight or order value."""

from __future__ import annotations

import re
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Upper

from apps.catalog.models import store_currency
from ecommerce.models import TimeStampedModel
from ecommerce.money import THREE_DECIMAL_CURRENCIES, amount_error

COUNTRY_PATTERN = r"^[A-Z]{2}$"
CURRENCY_PATTERN = r"^[A-Z]{3}$"
# ISO 3166-1 assigns 249 alpha-2 codes: a zone lists at most every one of them.
MAX_COUNTRIES = 250


def validate_countries(value: object) -> None:
    """A list of at most MAX_COUNTRIES ISO 3166-1 alpha-2 codes in capitals, each once."""
    if not isinstance(value, list) or not all(
        isinstance(code, str)
        and len(code) == 2
        and code.isascii()
        and code.isalpha()
        and code.isupper()
        for code in value
    ):
        raise ValidationError("Give countries as two-letter ISO codes in capitals: DE, FR.")
    if len(set(value)) != len(value):
        raise ValidationError("A country is listed twice.")
    if len(value) > MAX_COUNTRIES:
        raise ValidationError(f"A zone lists at most {MAX_COUNTRIES} countries.")


class ShippingZone(TimeStampedModel):
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=120, unique=True)
    countries = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_countries],
        help_text='Two-letter ISO country codes, for example ["DE", "AT"].',
    )

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name

    def serves(self, country: str) -> bool:
        return country.upper() in self.countries


class ShippingMethodKind(models.TextChoices):
    FLAT = "flat", "Flat rate"
    WEIGHT = "weight", "By weight (bands in grams)"
    PRICE = "price", "By order value (bands in money)"


BANDED_KINDS = frozenset({ShippingMethodKind.WEIGHT, ShippingMethodKind.PRICE})
# Amounts and band bounds are columns with 12 digits, 2 of them places.
AMOUNT_MAX = Decimal("9999999999.99")


def amount_problem(amount: Decimal | None, currency: str) -> str | None:
    """Why `amount` cannot be a shipping price or threshold in `currency`, or None."""
    if amount is None:
        return None
    if not amount.is_finite() or amount < 0:
        return "Give an amount of zero or more."
    if amount > AMOUNT_MAX:
        return f"Give an amount of at most {AMOUNT_MAX}."
    return amount_error(amount, currency)


def method_errors(
    *, kind: str, price: Decimal, currency: str, free_over: Decimal | None
) -> dict[str, str]:
    """The one-row rules of a shipping method, by field (empty when it is valid).

    A banded method quotes its bands' prices, so its own price must be zero: a stored
    flat price it never charges would mislead whoever reads the admin.
    """
    errors: dict[str, str] = {}
    if not (isinstance(currency, str) and re.fullmatch(CURRENCY_PATTERN, currency)):
        return {"currency": "Give a three-letter ISO 4217 code in capitals: EUR."}
    if currency in THREE_DECIMAL_CURRENCIES:
        return {"currency": f"{currency} has three decimal places, which prices cannot hold."}
    if problem := amount_problem(price, currency):
        errors["price"] = problem
    elif kind in BANDED_KINDS and price != 0:
        errors["price"] = "A method priced by bands has no price of its own: give 0."
    if problem := amount_problem(free_over, currency):
        errors["free_over"] = problem
    return errors


def band_errors(
    *, kind: str, currency: str, lower: Decimal, upper: Decimal | None, price: Decimal
) -> dict[str, str]:
    """The rules of one rate band of a method of `kind` in `currency`, by field.

    Weight bounds are whole grams; price bounds are amounts exact to the currency.
    """
    errors: dict[str, str] = {}
    if problem := amount_problem(price, currency):
        errors["price"] = problem
    for field, bound in (("lower", lower), ("upper", upper)):
        if bound is None:
            continue
        if kind == ShippingMethodKind.WEIGHT:
            if not bound.is_finite() or bound < 0 or bound != bound.to_integral_value():
                errors[field] = "Give a whole number of grams, zero or more."
            elif bound > AMOUNT_MAX:
                errors[field] = f"Give at most {AMOUNT_MAX} grams."
        elif problem := amount_problem(bound, currency):
            errors[field] = problem
    if upper is not None and "lower" not in errors and "upper" not in errors and upper <= lower:
        errors["upper"] = "The upper bound (exclusive) must be above the lower bound."
    return errors


class ShippingMethod(TimeStampedModel):
    """A way to ship to the countries of a zone, with its rule for the price.

    `flat` charges `price`; `weight` and `price` charge the price of the first band (by
    lower bound) covering the cart's weight or subtotal, and are not offered when none
    does. Whatever the kind, a subtotal at or above `free_over` ships free.
    """

    zone = models.ForeignKey(ShippingZone, on_delete=models.CASCADE, related_name="methods")
    name = models.CharField(max_length=120)
    kind = models.CharField(
        max_length=16, choices=ShippingMethodKind.choices, default=ShippingMethodKind.FLAT
    )
    price = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        default=Decimal("0"),
        help_text="The flat rate, entered like catalog prices (gross or net); 0 for banded kinds.",
    )
    currency = models.CharField(max_length=3, default=store_currency)
    free_over = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Ships free when the cart's subtotal is at least this; empty: never free.",
    )
    is_active = models.BooleanField(default=True)
    sort_order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ("zone_id", "sort_order", "name", "pk")
        constraints = [
            models.UniqueConstraint(
                "zone",
                Upper("name"),
                "currency",
                name="shipping_method_name_unique_in_zone",
                violation_error_message="The zone has a method of this name in this currency.",
            ),
            models.CheckConstraint(
                condition=models.Q(kind__in=ShippingMethodKind.values),
                name="shipping_method_kind_known",
            ),
            models.CheckConstraint(
                condition=models.Q(price__gte=0), name="shipping_method_price_gte_0"
            ),
            models.CheckConstraint(
                condition=models.Q(free_over__isnull=True) | models.Q(free_over__gte=0),
                name="shipping_method_free_over_gte_0",
            ),
            models.CheckConstraint(
                condition=models.Q(currency__regex=CURRENCY_PATTERN),
                name="shipping_method_currency_iso4217",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.zone})" if self.zone_id else self.name

    def clean(self) -> None:
        errors = method_errors(
            kind=self.kind, price=self.price, currency=self.currency, free_over=self.free_over
        )
        if errors:
            raise ValidationError(errors)


class ShippingRateBand(models.Model):
    """A price for carts whose weight (grams) or subtotal lies in [lower, upper)."""

    method = models.ForeignKey(ShippingMethod, on_delete=models.CASCADE, related_name="bands")
    lower = models.DecimalField(
        max_digits=12, decimal_places=2, help_text="Grams or money, inclusive."
    )
    upper = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Grams or money, exclusive; empty: no upper bound.",
    )
    price = models.DecimalField(max_digits=12, decimal_places=2)

    class Meta:
        ordering = ("method_id", "lower", "pk")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(lower__gte=0), name="shipping_band_lower_gte_0"
            ),
            models.CheckConstraint(
                condition=models.Q(upper__isnull=True) | models.Q(upper__gt=models.F("lower")),
                name="shipping_band_upper_gt_lower",
            ),
            models.CheckConstraint(
                condition=models.Q(price__gte=0), name="shipping_band_price_gte_0"
            ),
        ]
        indexes = [models.Index(fields=["method", "lower"], name="shipping_band_method_idx")]

    def __str__(self) -> str:
        upper = "" if self.upper is None else f"{self.upper}"
        return f"[{self.lower}, {upper}): {self.price}"

    def covers(self, value: Decimal) -> bool:
        return self.lower <= value and (self.upper is None or value < self.upper)

    def clean(self) -> None:
        try:
            method = self.method
        except ShippingMethod.DoesNotExist:
            return  # no method yet: its form reports that
        if self.lower is None or self.price is None:
            return  # the fields' own validation reports them
        errors = band_errors(
            kind=method.kind,
            currency=method.currency,
            lower=self.lower,
            upper=self.upper,
            price=self.price,
        )
        if errors:
            raise ValidationError(errors)
