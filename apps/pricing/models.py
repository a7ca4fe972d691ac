"""Tax classes and rates, the store's tax setting, vouchers and their uses, promotions.

The database holds every rule a row can break on its own (CHECK and UNIQUE constraints),
so a voucher can never be used more often than its limit, whatever races; the rules that
need the currency's minor unit (exact amounts) are checked in `clean` and the serializers,
with `ecommerce.money.amount_error`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from apps.pricing.cache import invalidate_tax_settings_on_commit
from ecommerce.models import TimeStampedModel
from ecommerce.money import amount_error

COUNTRY_PATTERN = r"^[A-Z]{2}$"
CURRENCY_PATTERN = r"^[A-Z]{3}$"
# Upper-case letters, digits, '-' and '_': what a customer can type and read back.
VOUCHER_CODE_PATTERN = r"^[A-Z0-9][A-Z0-9_-]{0,31}$"
STANDARD_TAX_CLASS = "standard"


def store_currency() -> str:
    return settings.STORE_CURRENCY


class TaxClass(models.Model):
    """A kind of goods taxed alike (standard, reduced, zero); product types name it by slug."""

    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=120)

    class Meta:
        verbose_name_plural = "tax classes"
        ordering = ("slug",)

    def __str__(self) -> str:
        return self.name

    # The cached tax setting names the shipping class by slug.
    def save(self, *args: Any, **kwargs: Any) -> None:
        super().save(*args, **kwargs)
        invalidate_tax_settings_on_commit()

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        deleted = super().delete(*args, **kwargs)
        invalidate_tax_settings_on_commit()
        return deleted


class TaxRate(models.Model):
    """The percent charged on a tax class in one destination country."""

    country = models.CharField(max_length=2, help_text="Two-letter ISO code in capitals: DE.")
    tax_class = models.ForeignKey(TaxClass, on_delete=models.PROTECT, related_name="rates")
    rate = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))],
        help_text="Percent: 19 for 19 %.",
    )

    class Meta:
        ordering = ("country", "tax_class__slug")
        constraints = [
            models.UniqueConstraint(
                fields=["country", "tax_class"],
                name="pricing_taxrate_country_class_unique",
                violation_error_message="This country already has a rate for this tax class.",
            ),
            models.CheckConstraint(
                condition=models.Q(rate__gte=0, rate__lte=100), name="pricing_taxrate_0_100"
            ),
            models.CheckConstraint(
                condition=models.Q(country__regex=COUNTRY_PATTERN),
                name="pricing_taxrate_country_iso",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.country} {self.tax_class}: {self.rate} %"

    def clean(self) -> None:
        self.country = (self.country or "").strip().upper()
        super().clean()


class TaxSettings(models.Model):
    """The store's one tax setting row (pk 1): whether entered prices include tax."""

    SINGLETON_PK = 1

    id = models.PositiveSmallIntegerField(primary_key=True, default=SINGLETON_PK, editable=False)
    prices_include_tax = models.BooleanField(
        default=True,
        help_text="Catalog and shipping prices are entered gross (tax included); "
        "off: entered net and tax is added on top.",
    )
    shipping_tax_class = models.ForeignKey(
        TaxClass,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The tax class of shipping; empty: standard.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "tax settings"
        verbose_name_plural = "tax settings"
        constraints = [
            models.CheckConstraint(condition=models.Q(id=1), name="pricing_taxsettings_singleton"),
        ]

    def __str__(self) -> str:
        return "Tax settings"

    # Every priced cart reads this row through the cache (apps.pricing.selectors).
    def save(self, *args: Any, **kwargs: Any) -> None:
        super().save(*args, **kwargs)
        invalidate_tax_settings_on_commit()

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        deleted = super().delete(*args, **kwargs)
        invalidate_tax_settings_on_commit()
        return deleted


def _window_constraint(prefix: str) -> models.CheckConstraint:
    return models.CheckConstraint(
        condition=models.Q(starts_at__isnull=True)
        | models.Q(ends_at__isnull=True)
        | models.Q(ends_at__gt=models.F("starts_at")),
        name=f"{prefix}_ends_after_start",
        violation_error_message="The end must come after the start.",
    )


class Voucher(TimeStampedModel):
    """A code a customer enters for a discount, limited in time, in total and per customer.

    `used_count` counts the unreleased uses; only `apps.pricing.services` changes it, with
    one conditional UPDATE, and the CHECK keeps it within the limit whatever races.
    """

    class Kind(models.TextChoices):
        PERCENTAGE = "percentage", "Percentage off"
        FIXED = "fixed", "Fixed amount off"
        FREE_SHIPPING = "free_shipping", "Free shipping"

    code = models.CharField(
        max_length=32,
        unique=True,
        help_text="What the customer types; stored in capitals, matched in any letter case.",
    )
    name = models.CharField(max_length=120, blank=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.PERCENTAGE)
    value = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        default=Decimal("0"),
        help_text="Percent for a percentage voucher, an amount for a fixed one, 0 for free "
        "shipping.",
    )
    currency = models.CharField(max_length=3, default=store_currency)
    min_spend = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="The eligible lines must add up to at least this (after promotions).",
    )
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    usage_limit = models.PositiveIntegerField(
        null=True, blank=True, help_text="Uses in total; empty: unlimited."
    )
    used_count = models.PositiveIntegerField(default=0, editable=False)
    per_customer_limit = models.PositiveIntegerField(
        null=True, blank=True, help_text="Uses per customer account; empty: unlimited."
    )
    is_active = models.BooleanField(default=True)
    products = models.ManyToManyField(
        "catalog.Product", blank=True, related_name="+", help_text="Empty with no categories: all."
    )
    categories = models.ManyToManyField(
        "catalog.Category",
        blank=True,
        related_name="+",
        help_text="Also applies to their subcategories.",
    )

    class Meta:
        ordering = ("code",)
        constraints = [
            models.CheckConstraint(
                condition=models.Q(code__regex=VOUCHER_CODE_PATTERN),
                name="pricing_voucher_code_upper",
                violation_error_message="A code is 1-32 capital letters, digits, '-' or '_'.",
            ),
            models.CheckConstraint(
                condition=models.Q(currency__regex=CURRENCY_PATTERN),
                name="pricing_voucher_currency_iso4217",
            ),
            models.CheckConstraint(
                condition=models.Q(kind="percentage", value__gt=0, value__lte=100)
                | models.Q(kind="fixed", value__gt=0)
                | models.Q(kind="free_shipping", value=0),
                name="pricing_voucher_value_for_kind",
                violation_error_message="A percentage is over 0 and at most 100, a fixed "
                "amount over 0, free shipping has no value.",
            ),
            models.CheckConstraint(
                condition=models.Q(min_spend__isnull=True) | models.Q(min_spend__gt=0),
                name="pricing_voucher_min_spend_gt_0",
            ),
            models.CheckConstraint(
                condition=models.Q(usage_limit__isnull=True) | models.Q(usage_limit__gte=1),
                name="pricing_voucher_usage_limit_gte_1",
            ),
            models.CheckConstraint(
                condition=models.Q(per_customer_limit__isnull=True)
                | models.Q(per_customer_limit__gte=1),
                name="pricing_voucher_per_customer_gte_1",
            ),
            models.CheckConstraint(
                condition=models.Q(used_count__gte=0), name="pricing_voucher_used_count_gte_0"
            ),
            models.CheckConstraint(
                condition=models.Q(usage_limit__isnull=True)
                | models.Q(used_count__lte=models.F("usage_limit")),
                name="pricing_voucher_used_within_limit",
                violation_error_message="The usage limit cannot be below the uses so far.",
            ),
            _window_constraint("pricing_voucher"),
        ]

    def __str__(self) -> str:
        return self.code

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Save with the code and currency in capitals, never writing `used_count` back
        over an existing row (it was read when the form opened; claims may have moved it
        since): the services change it with F() updates only."""
        self.code = (self.code or "").strip().upper()
        self.currency = (self.currency or "").strip().upper()
        if not self._state.adding and kwargs.get("update_fields") is None:
            kwargs["update_fields"] = [
                field.name
                for field in self._meta.concrete_fields
                if not field.primary_key and field.name != "used_count"
            ]
        super().save(*args, **kwargs)

    def clean(self) -> None:
        self.code = (self.code or "").strip().upper()
        self.currency = (self.currency or "").strip().upper()
        errors: dict[str, str] = {}
        if (
            self.kind == self.Kind.FIXED
            and self.value is not None
            and (problem := amount_error(self.value, self.currency))
        ):
            errors["value"] = problem
        if self.kind == self.Kind.FREE_SHIPPING:
            self.value = Decimal("0")
        if self.min_spend is not None and (problem := amount_error(self.min_spend, self.currency)):
            errors["min_spend"] = problem
        if (
            self.usage_limit is not None
            and self.pk is not None
            and self.usage_limit < self.used_count
        ):
            errors["usage_limit"] = f"It has been used {self.used_count} times already."
        if errors:
            raise ValidationError(errors)
        super().clean()


class VoucherUse(models.Model):
    """One use of a voucher by one order (`reference`), returned at most once.

    A released use keeps its row (when and why it came back); `used_count` counts the
    unreleased ones.
    """

    voucher = models.ForeignKey(Voucher, on_delete=models.PROTECT, related_name="uses")
    reference = models.CharField(max_length=80, unique=True, help_text="order:<public id>")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="voucher_uses",
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    released_at = models.DateTimeField(null=True, blank=True)
    release_reason = models.CharField(max_length=40, blank=True)

    class Meta:
        ordering = ("-created_at", "-pk")
        indexes = [
            # The per-customer count reads the unreleased uses of one voucher by one user.
            models.Index(
                fields=["voucher", "user"],
                condition=models.Q(released_at__isnull=True),
                name="pricing_voucheruse_open_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.reference


class Promotion(TimeStampedModel):
    """A discount applied without a code to the lines it covers while it runs.

    One promotion per line: the largest discount wins (docs/pricing.md).
    """

    class Kind(models.TextChoices):
        PERCENTAGE = "percentage", "Percentage off"
        FIXED = "fixed", "Fixed amount off each unit"
        BUY_X_PAY_Y = "buy_x_pay_y", "Buy X, pay Y"

    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.PERCENTAGE)
    value = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        default=Decimal("0"),
        help_text="Percent, or the amount off each unit; 0 for buy X pay Y.",
    )
    currency = models.CharField(
        max_length=3, default=store_currency, help_text="For a fixed amount off."
    )
    buy_quantity = models.PositiveSmallIntegerField(default=0, help_text="X in buy X pay Y.")
    pay_quantity = models.PositiveSmallIntegerField(default=0, help_text="Y in buy X pay Y.")
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    products = models.ManyToManyField(
        "catalog.Product", blank=True, related_name="+", help_text="Empty with no categories: all."
    )
    categories = models.ManyToManyField(
        "catalog.Category",
        blank=True,
        related_name="+",
        help_text="Also applies to their subcategories.",
    )

    class Meta:
        ordering = ("name", "pk")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(currency__regex=CURRENCY_PATTERN),
                name="pricing_promotion_currency_iso4217",
            ),
            models.CheckConstraint(
                condition=models.Q(
                    kind="percentage", value__gt=0, value__lte=100, buy_quantity=0, pay_quantity=0
                )
                | models.Q(kind="fixed", value__gt=0, buy_quantity=0, pay_quantity=0)
                | models.Q(
                    kind="buy_x_pay_y",
                    value=0,
                    pay_quantity__gte=1,
                    buy_quantity__gt=models.F("pay_quantity"),
                ),
                name="pricing_promotion_terms_for_kind",
                violation_error_message="A percentage is over 0 and at most 100, a fixed "
                "amount over 0; buy X pay Y needs X over Y and Y at least 1.",
            ),
            _window_constraint("pricing_promotion"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        self.currency = (self.currency or "").strip().upper()
        errors: dict[str, str] = {}
        if self.kind == self.Kind.BUY_X_PAY_Y:
            self.value = Decimal("0")
            if not self.pay_quantity or self.pay_quantity < 1:
                errors["pay_quantity"] = "Pay at least 1."
            elif not self.buy_quantity or self.buy_quantity <= self.pay_quantity:
                errors["buy_quantity"] = "Buy more than you pay."
        else:
            self.buy_quantity = 0
            self.pay_quantity = 0
            if (
                self.kind == self.Kind.FIXED
                and self.value is not None
                and (problem := amount_error(self.value, self.currency))
            ):
                errors["value"] = problem
        if errors:
            raise ValidationError(errors)
        super().clean()
