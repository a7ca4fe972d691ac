"""Input and output shapes of the shipping-zone API."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, extend_schema_serializer
from rest_framework import serializers

from apps.shipping.models import COUNTRY_PATTERN, MAX_COUNTRIES, ShippingZone
from ecommerce.api import fields

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
