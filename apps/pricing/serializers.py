"""Output shapes of the staff pricing API: vouchers with their uses, tax rates, promotions.

Money is a decimal string with the places of its currency (`5.00`, `500`); percentages and
tax rates are decimal strings without trailing zeros (`10`, `5.5`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from drf_spectacular.utils import OpenApiExample, extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from apps.pricing.calculator import format_rate
from apps.pricing.models import Promotion, TaxRate, Voucher, VoucherUse
from ecommerce.api import fields
from ecommerce.money import format_amount

VOUCHER_EXAMPLE: dict[str, Any] = {
    "code": "WELCOME10",
    "name": "Welcome: 10% off your first order",
    "kind": "percentage",
    "value": "10",
    "currency": "EUR",
    "min_spend": None,
    "starts_at": None,
    "ends_at": None,
    "usage_limit": None,
    "used_count": 42,
    "per_customer_limit": 1,
    "is_active": True,
    "product_ids": [],
    "category_ids": [],
    "created_at": "2026-05-04T09:30:00Z",
    "updated_at": "2026-05-04T09:30:00Z",
}
VOUCHER_USE_EXAMPLE: dict[str, Any] = {
    "reference": "order:6f1c0a52-8d3e-4c1b-9f3a-2b7e5d4c3a21",
    "user_id": 17,
    "created_at": "2026-05-04T10:02:11Z",
    "released_at": "2026-05-04T10:17:11Z",
    "release_reason": "expired",
}
TAX_RATE_EXAMPLE: dict[str, Any] = {"country": "DE", "tax_class": "reduced", "rate": "7"}
PROMOTION_EXAMPLE: dict[str, Any] = {
    "id": 3,
    "name": "Buy 3, pay 2 on socks",
    "kind": "buy_x_pay_y",
    "value": "0",
    "currency": "EUR",
    "buy_quantity": 3,
    "pay_quantity": 2,
    "starts_at": "2026-06-01T00:00:00Z",
    "ends_at": "2026-07-01T00:00:00Z",
    "is_active": True,
    "product_ids": [],
    "category_ids": [4],
}


@extend_schema_field({"type": "string", "format": "decimal", "example": "10"})
class TermsValueField(serializers.Field):
    """A percentage (`10`, `5.5`) or, for a fixed kind, an amount with the currency's places."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(source="*", read_only=True, **kwargs)

    def to_representation(self, obj: Any) -> str:
        if obj.kind == "fixed":
            return format_amount(obj.value, obj.currency)
        return format_rate(obj.value)


@extend_schema_field({"type": "string", "format": "decimal", "nullable": True, "example": "50.00"})
class MinSpendField(serializers.Field):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(source="*", read_only=True, **kwargs)

    def to_representation(self, obj: Voucher) -> str | None:
        return None if obj.min_spend is None else format_amount(obj.min_spend, obj.currency)


def _ids(related: Any) -> list[int]:
    return sorted(item.pk for item in related.all())


@extend_schema_serializer(
    examples=[OpenApiExample("A voucher", value=VOUCHER_EXAMPLE, response_only=True)]
)
class VoucherOutputSerializer(serializers.ModelSerializer):
    value = TermsValueField(help_text="Percent, or the amount off (fixed); 0 for free shipping.")
    min_spend = MinSpendField(help_text="Of the eligible lines after promotions; null: none.")
    product_ids = serializers.SerializerMethodField()
    category_ids = serializers.SerializerMethodField(help_text="Also covers their subcategories.")

    class Meta:
        model = Voucher
        fields = (
            "code",
            "name",
            "kind",
            "value",
            "currency",
            "min_spend",
            "starts_at",
            "ends_at",
            "usage_limit",
            "used_count",
            "per_customer_limit",
            "is_active",
            "product_ids",
            "category_ids",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields

    def get_product_ids(self, voucher: Voucher) -> list[int]:
        return _ids(voucher.products)

    def get_category_ids(self, voucher: Voucher) -> list[int]:
        return _ids(voucher.categories)


@extend_schema_serializer(
    examples=[OpenApiExample("A released use", value=VOUCHER_USE_EXAMPLE, response_only=True)]
)
class VoucherUseOutputSerializer(serializers.ModelSerializer):
    user_id = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="Null when the account is gone."
    )

    class Meta:
        model = VoucherUse
        fields = ("reference", "user_id", "created_at", "released_at", "release_reason")
        read_only_fields = fields


@extend_schema_serializer(
    examples=[OpenApiExample("A rate", value=TAX_RATE_EXAMPLE, response_only=True)]
)
class TaxRateOutputSerializer(serializers.ModelSerializer):
    tax_class = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    rate = serializers.SerializerMethodField(help_text="Percent: `19`, `5.5`.")

    class Meta:
        model = TaxRate
        fields = ("country", "tax_class", "rate")
        read_only_fields = fields

    @extend_schema_field({"type": "string", "format": "decimal", "example": "19"})
    def get_rate(self, rate: TaxRate) -> str:
        return format_rate(Decimal(rate.rate))


@extend_schema_serializer(
    examples=[OpenApiExample("Buy 3, pay 2", value=PROMOTION_EXAMPLE, response_only=True)]
)
class PromotionOutputSerializer(serializers.ModelSerializer):
    value = TermsValueField(help_text="Percent, or the amount off each unit; 0 for buy X pay Y.")
    product_ids = serializers.SerializerMethodField()
    category_ids = serializers.SerializerMethodField(help_text="Also covers their subcategories.")

    class Meta:
        model = Promotion
        fields = (
            "id",
            "name",
            "kind",
            "value",
            "currency",
            "buy_quantity",
            "pay_quantity",
            "starts_at",
            "ends_at",
            "is_active",
            "product_ids",
            "category_ids",
        )
        read_only_fields = fields

    def get_product_ids(self, promotion: Promotion) -> list[int]:
        return _ids(promotion.products)

    def get_category_ids(self, promotion: Promotion) -> list[int]:
        return _ids(promotion.categories)


class VoucherQuerySerializer(serializers.Serializer):
    # Exactly `true` or `false`, as the other lists' boolean filters: DRF's BooleanField
    # would read an empty value as "either".
    is_active = fields.ChoiceField(
        choices=["true", "false"], required=False, help_text="Only active (or inactive) ones."
    )

    def validate_is_active(self, value: str) -> bool:
        return value == "true"

    search = fields.CharField(
        required=False, max_length=32, help_text="Part of the code, any letter case."
    )


class TaxRateQuerySerializer(serializers.Serializer):
    country = fields.RegexField(
        r"^[A-Za-z]{2}$",
        required=False,
        max_length=2,
        help_text="Two-letter ISO code, any letter case: only that country's rates.",
    )
