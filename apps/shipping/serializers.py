"""Input and output shapes of the shipping API: zones, methods with their bands, quotes.
Money is a decimal string with the places of its currency (`4.90`, `800`)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiExample, extend_schema_field, extend_schema_serializer
from rest_framework import serializers
from rest_framework.fields import empty

from apps.shipping.models import (
    COUNTRY_PATTERN,
    MAX_COUNTRIES,
    ShippingMethod,
    ShippingMethodKind,
    ShippingZone,
)
from apps.shipping.selectors import ShippingQuote
from apps.shipping.services import MAX_BANDS, BandSpec
from ecommerce.api import fields, identifiers
from ecommerce.money import amount_error, format_amount

ZONE_EXAMPLE: dict[str, Any] = {
    "id": 3,
    "name": "Nordics",
    "slug": "nordics",
    "countries": ["DK", "FI", "NO", "SE"],
}


class CountriesField(serializers.ListField):
    """Two-letter ISO codes in any letter case, read in capitals, each once."""

    child = fields.RegexField(r"^[A-Za-z]{2}$", max_length=2)

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", MAX_COUNTRIES)
        kwargs.setdefault(
            "help_text",
            "Two-letter ISO 3166-1 codes, in any letter case (stored in capitals), each once.",
        )
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> list[str]:
        codes = [code.upper() for code in super().to_internal_value(data)]
        if len(set(codes)) != len(codes):
            raise serializers.ValidationError("A country is listed twice.")
        return codes


@extend_schema_serializer(
    examples=[OpenApiExample("A zone", value=ZONE_EXAMPLE, response_only=True)]
)
class ShippingZoneOutputSerializer(serializers.ModelSerializer):
    countries = serializers.ListField(
        child=serializers.RegexField(COUNTRY_PATTERN),
        read_only=True,
        help_text="Two-letter ISO codes, sorted.",
    )

    class Meta:
        model = ShippingZone
        fields = ("id", "name", "slug", "countries")
        read_only_fields = fields


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Germany, Austria and Switzerland",
            value={"name": "DACH", "slug": "dach", "countries": ["de", "AT", "ch"]},
            request_only=True,
        )
    ]
)
class ShippingZoneInputSerializer(serializers.Serializer):
    name = fields.CharField(max_length=120)
    slug = fields.SlugField(max_length=120)
    countries = CountriesField()


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Add Iceland", value={"countries": ["DK", "FI", "IS", "NO", "SE"]}, request_only=True
        ),
        OpenApiExample("Rename", value={"name": "Nordic countries"}, request_only=True),
    ]
)
class ShippingZoneUpdateInputSerializer(serializers.Serializer):
    """The slug names the zone in URLs and warehouse payloads: it never changes."""

    name = fields.CharField(max_length=120)
    countries = CountriesField(help_text="Replaces the zone's countries (any letter case).")


# --- shipping methods ---------------------------------------------------------------------

# What an amount or a band bound accepts, as the schema states it: 0 up to 10 digits
# before the point, at most two after (a zero-decimal currency allows none: checked by
# the service, which knows the currency).
AMOUNT_PATTERN = r"^(0|[1-9][0-9]{0,9})(\.[0-9]{1,2})?$"
AMOUNT = {"max_digits": 12, "decimal_places": 2, "min_value": Decimal("0")}
CURRENCY_INPUT_PATTERN = r"^[A-Za-z]{3}$"

BAND_EXAMPLES: list[dict[str, Any]] = [
    {"lower": "0", "upper": "1000", "price": "7.90"},
    {"lower": "1000", "upper": "5000", "price": "12.90"},
    {"lower": "5000", "upper": None, "price": "24.90"},
]
METHOD_EXAMPLE: dict[str, Any] = {
    "id": 12,
    "zone": "germany",
    "name": "Express",
    "kind": "weight",
    "price": "0.00",
    "currency": "EUR",
    "free_over": None,
    "is_active": True,
    "sort_order": 2,
    "bands": BAND_EXAMPLES,
}
FLAT_METHOD_EXAMPLE: dict[str, Any] = {
    "id": 11,
    "zone": "germany",
    "name": "Standard",
    "kind": "flat",
    "price": "4.90",
    "currency": "EUR",
    "free_over": "50.00",
    "is_active": True,
    "sort_order": 1,
    "bands": [],
}
QUOTE_EXAMPLE: dict[str, Any] = {
    "id": 11,
    "name": "Standard",
    "zone": "germany",
    "price": "4.90",
    "currency": "EUR",
    "free": False,
}


@extend_schema_field(
    {"type": "string", "format": "decimal", "pattern": AMOUNT_PATTERN, "example": "4.90"}
)
class AmountField(serializers.DecimalField):
    """An amount of zero or more with at most two decimal places, as a string: `4.90`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**{**AMOUNT, **kwargs})

    def validate_empty_values(self, data: Any) -> tuple[bool, Any]:
        # An amount is a decimal string, as the schema says: a JSON number may be a binary
        # float (4.9 is not 4.90). DRF would also read a blank string as null where null
        # is allowed: "no threshold" is null, never "".
        if data is not None and data is not empty and not isinstance(data, str):
            self.fail("invalid")
        if isinstance(data, str) and not data.strip():
            self.fail("invalid")
        return super().validate_empty_values(data)


@extend_schema_field({"type": "string", "format": "decimal", "example": "4.90"})
class CurrencyAmountField(serializers.Field):
    """An amount of the object's currency, with that currency's places: `4.90`, `800`."""

    def __init__(self, attribute: str, **kwargs: Any) -> None:
        self.attribute = attribute
        super().__init__(source="*", read_only=True, **kwargs)

    def to_representation(self, obj: Any) -> str | None:
        value = getattr(obj, self.attribute)
        return None if value is None else format_amount(value, obj.currency)


class BandInputSerializer(serializers.Serializer):
    lower = AmountField(help_text="Inclusive: grams (weight), or money (price).")
    upper = AmountField(
        allow_null=True,
        required=False,
        default=None,
        help_text="Exclusive, above `lower`; null: no upper bound.",
    )
    price = AmountField(help_text="What a cart in this band pays.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        upper = attrs.get("upper")
        if upper is not None and upper <= attrs["lower"]:
            raise serializers.ValidationError(
                {"upper": "The upper bound (exclusive) must be above the lower bound."}
            )
        return attrs


class BandsField(serializers.ListField):
    child = BandInputSerializer()

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", MAX_BANDS)
        super().__init__(**kwargs)

    def run_child_validation(self, data: list[Any]) -> list[BandSpec]:
        """Each band whole, even in a PATCH: a partial root would let a band's required
        fields and defaults go (DRF reads `partial` from the root)."""
        bands: list[BandSpec] = []
        errors: dict[int, Any] = {}
        for index, item in enumerate(data):
            band = BandInputSerializer(data=item)
            if band.is_valid():
                bands.append(BandSpec(**band.validated_data))
            else:
                errors[index] = band.errors
        if errors:
            raise serializers.ValidationError(errors)
        return bands


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Flat rate, free over 50",
            value={
                "name": "Standard",
                "price": "4.90",
                "currency": "EUR",
                "free_over": "50.00",
                "sort_order": 1,
            },
            request_only=True,
        ),
        OpenApiExample(
            "By weight",
            value={"name": "Express", "kind": "weight", "bands": BAND_EXAMPLES, "sort_order": 2},
            request_only=True,
        ),
    ]
)
class ShippingMethodInputSerializer(serializers.Serializer):
    name = fields.CharField(max_length=120)
    kind = fields.ChoiceField(
        choices=ShippingMethodKind.choices,
        default=ShippingMethodKind.FLAT,
        help_text="`flat`: `price`; `weight`/`price`: the first band (by lower bound) "
        "covering the cart's grams or subtotal; no covering band: not offered.",
    )
    price = AmountField(
        default=Decimal("0"),
        help_text="The flat rate, entered like catalog prices (gross or net); 0 for banded kinds.",
    )
    currency = fields.RegexField(
        CURRENCY_INPUT_PATTERN,
        max_length=3,
        required=False,
        help_text="ISO 4217, any letter case; the store's currency when left out.",
    )
    free_over = AmountField(
        allow_null=True,
        default=None,
        help_text="Ships free when the cart's subtotal is at least this; null: never free.",
    )
    is_active = fields.BooleanField(default=True)
    sort_order = identifiers.IntegerField(min_value=0, max_value=identifiers.INTEGER_MAX, default=0)
    bands = BandsField(
        default=list,
        help_text="For `weight` and `price` methods (at least one); none for `flat`.",
    )


@extend_schema_serializer(
    examples=[
        OpenApiExample("Deactivate", value={"is_active": False}, request_only=True),
        OpenApiExample("New free-over threshold", value={"free_over": "75.00"}, request_only=True),
        OpenApiExample("Replace the bands", value={"bands": BAND_EXAMPLES}, request_only=True),
    ]
)
class ShippingMethodUpdateInputSerializer(ShippingMethodInputSerializer):
    """Send only what changes; `bands` replaces every band. The zone stays."""

    currency = fields.RegexField(
        CURRENCY_INPUT_PATTERN, max_length=3, help_text="ISO 4217, any letter case."
    )


class BandOutputSerializer(serializers.Serializer):
    lower = serializers.CharField(help_text="Grams (weight) or money (price), inclusive.")
    upper = serializers.CharField(allow_null=True, help_text="Exclusive; null: no upper bound.")
    price = serializers.CharField()


@extend_schema_serializer(
    component_name="ShippingMethod",
    examples=[
        OpenApiExample("By weight", value=METHOD_EXAMPLE, response_only=True),
        OpenApiExample("Flat rate", value=FLAT_METHOD_EXAMPLE, response_only=True),
    ],
)
class ShippingMethodOutputSerializer(serializers.ModelSerializer):
    zone = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    price = CurrencyAmountField("price")
    free_over = CurrencyAmountField("free_over", allow_null=True)
    bands = serializers.SerializerMethodField()

    class Meta:
        model = ShippingMethod
        fields = (
            "id",
            "zone",
            "name",
            "kind",
            "price",
            "currency",
            "free_over",
            "is_active",
            "sort_order",
            "bands",
        )
        read_only_fields = fields

    @extend_schema_field(BandOutputSerializer(many=True))
    def get_bands(self, method: ShippingMethod) -> list[dict[str, str | None]]:
        """Weight bounds in whole grams, money bounds and prices with the currency's places."""

        def bound(value: Decimal | None) -> str | None:
            if value is None:
                return None
            if method.kind == ShippingMethodKind.WEIGHT:
                return format(value.quantize(Decimal(1)), "f")
            return format_amount(value, method.currency)

        return [
            {
                "lower": bound(band.lower),
                "upper": bound(band.upper),
                "price": format_amount(band.price, method.currency),
            }
            for band in method.bands.all()
        ]


class QuoteQuerySerializer(serializers.Serializer):
    """The cart a quote is for: where it goes, its currency, weight and subtotal."""

    country = fields.RegexField(
        r"^[A-Za-z]{2}$", max_length=2, help_text="ISO 3166-1 alpha-2, any letter case: DE."
    )
    currency = fields.RegexField(
        CURRENCY_INPUT_PATTERN,
        max_length=3,
        required=False,
        help_text="ISO 4217, any letter case; the store's currency when left out.",
    )
    weight_grams = identifiers.IntegerField(
        min_value=0, default=0, help_text="The cart's weight; a variant without one counts 0."
    )
    subtotal = AmountField(
        default=Decimal("0"),
        help_text="The cart's subtotal, entered like catalog prices (gross or net).",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs["country"] = attrs["country"].upper()
        attrs["currency"] = attrs.get("currency", settings.STORE_CURRENCY).upper()
        problem = amount_error(attrs["subtotal"], attrs["currency"])
        if problem:
            raise serializers.ValidationError({"subtotal": problem})
        return attrs


@extend_schema_serializer(
    examples=[OpenApiExample("A quote", value=QUOTE_EXAMPLE, response_only=True)]
)
class ShippingQuoteOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="method_id", help_text="The method's id.")
    name = serializers.CharField()
    zone = serializers.CharField(help_text="The slug of the method's zone.")
    price = serializers.SerializerMethodField(
        help_text="Entered like catalog prices (gross or net), with the currency's places; "
        "0 when free."
    )
    currency = serializers.CharField()
    free = serializers.BooleanField(
        help_text="True when the subtotal reached the method's free-over threshold, or its "
        "rate is nothing."
    )

    @extend_schema_field({"type": "string", "format": "decimal", "example": "4.90"})
    def get_price(self, quote: ShippingQuote) -> str:
        return format_amount(quote.price, quote.currency)
