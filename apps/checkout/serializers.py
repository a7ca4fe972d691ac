"""Cart input validation, and the shape of the priced cart (built by selectors.price_cart)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiExample, extend_schema_serializer
from rest_framework import serializers

from apps.catalog.models import SKU_PATTERN
from apps.checkout.models import CartStatus
from apps.users.serializers import AddressSerializer
from ecommerce.api import fields, identifiers

MONEY = {"help_text": "Decimal amount with the currency's places, as a string: `19.90`."}
ADDRESS_EXAMPLE = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "street_address_1": "Unter den Linden 1",
    "city": "Berlin",
    "postal_code": "10117",
    "country": "DE",
    "phone": "+49 30 123456",
}
# As the cart answers it: every field, empty when not given.
ADDRESS_OUTPUT_EXAMPLE = {
    **ADDRESS_EXAMPLE,
    "company": "",
    "street_address_2": "",
    "country_area": "",
}


class QuantityField(identifiers.IntegerField):
    """Units of one item: 1 .. ORDER_MAX_ITEM_QUANTITY (read when validating)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", settings.ORDER_MAX_ITEM_QUANTITY)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> int:
        value = super().to_internal_value(data)
        if value > settings.ORDER_MAX_ITEM_QUANTITY:
            raise serializers.ValidationError(
                f"Ensure this value is less than or equal to {settings.ORDER_MAX_ITEM_QUANTITY}."
            )
        return value


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Two of a variant", value={"sku": "TEE-BLK-M", "quantity": 2}, request_only=True
        )
    ]
)
class CartLineInputSerializer(serializers.Serializer):
    sku = fields.RegexField(SKU_PATTERN, max_length=64, help_text="The variant's SKU.")
    quantity = QuantityField(help_text="Units to add to what the cart holds already.")


@extend_schema_serializer(
    examples=[OpenApiExample("Three", value={"quantity": 3}, request_only=True)]
)
class CartLineUpdateInputSerializer(serializers.Serializer):
    # Optional as PATCH fields are: a body without it changes nothing.
    quantity = QuantityField(
        required=False,
        help_text="The line's new quantity; it also accepts the variant's current price.",
    )


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Address, method and voucher",
            value={
                "shipping_address": ADDRESS_EXAMPLE,
                "shipping_method": 3,
                "voucher_code": "WELCOME10",
                "save_addresses": True,
            },
            request_only=True,
        ),
        OpenApiExample("Remove the voucher", value={"voucher_code": None}, request_only=True),
    ]
)
class CartUpdateInputSerializer(serializers.Serializer):
    """Every field is optional: what is sent changes, `null` clears."""

    shipping_address = AddressSerializer(
        required=False, allow_null=True, help_text="Where the order goes; its country sets tax."
    )
    billing_address = AddressSerializer(
        required=False, allow_null=True, help_text="Left empty, the shipping address bills."
    )
    shipping_method = identifiers.IdField(
        required=False,
        allow_null=True,
        help_text="One of the cart's `shipping_methods` (their `id`).",
    )
    voucher_code = fields.CharField(
        required=False, allow_null=True, allow_blank=True, max_length=64
    )
    save_addresses = fields.BooleanField(
        required=False, help_text="Copy the addresses to your address book at checkout."
    )


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Pay with a token", value={"payment_token": "tok_success"}, request_only=True
        )
    ]
)
class CheckoutInputSerializer(serializers.Serializer):
    # Optional only in DEBUG, where the sandbox's success token stands in (see get_fields).
    payment_token = fields.CharField(required=False, max_length=255)

    def get_fields(self) -> dict[str, serializers.Field]:
        fields_ = super().get_fields()
        fields_["payment_token"].required = not settings.DEBUG  # read now: tests change it
        return fields_


# --- Output (the schema of the dict selectors.price_cart builds) -------------------------------


class ProblemOutputSerializer(serializers.Serializer):
    code = serializers.CharField(
        help_text="variant_unavailable, insufficient_stock, price_changed, cart_empty, "
        "shipping_address_required, shipping_method_required, shipping_method_unavailable, "
        "voucher_not_found, voucher_not_active, voucher_exhausted, "
        "voucher_per_customer_limit, voucher_not_applicable."
    )
    sku = serializers.CharField(required=False, help_text="The line's SKU (line problems).")
    requested = serializers.IntegerField(required=False)
    available = serializers.IntegerField(required=False, help_text="insufficient_stock.")
    old = serializers.CharField(required=False, help_text="price_changed: the price then.")
    new = serializers.CharField(required=False, help_text="price_changed: the price now.")
    method_id = serializers.IntegerField(required=False)
    voucher_code = serializers.CharField(required=False)
    reason = serializers.CharField(
        required=False, help_text="voucher_not_applicable: min_spend, no_eligible_lines, currency."
    )
    detail = serializers.CharField(required=False)


class CartLineOutputSerializer(serializers.Serializer):
    sku = serializers.CharField()
    name = serializers.CharField(help_text="The product's name.")
    variant_name = serializers.CharField()
    quantity = serializers.IntegerField()
    unit_price = serializers.CharField(**MONEY)
    price_when_added = serializers.CharField(**MONEY)
    undiscounted = serializers.CharField(allow_null=True, **MONEY)
    discount = serializers.CharField(allow_null=True, **MONEY)
    promotion = serializers.CharField(help_text="The promotion applied, or empty.")
    tax_rate = serializers.CharField(allow_null=True, help_text="Percent: `19`.")
    tax = serializers.CharField(allow_null=True, **MONEY)
    total = serializers.CharField(
        allow_null=True, help_text="After discounts, tax included; null when unavailable."
    )
    problems = ProblemOutputSerializer(many=True)


class CartShippingOutputSerializer(serializers.Serializer):
    method_id = serializers.IntegerField()
    name = serializers.CharField()
    price = serializers.CharField(help_text="Tax included.")
    net = serializers.CharField(**MONEY)
    tax = serializers.CharField(**MONEY)


class AddressOutputSerializer(serializers.Serializer):
    """An address as stored on the cart: validated and normalized when it was set."""

    first_name = serializers.CharField()
    last_name = serializers.CharField()
    company = serializers.CharField(allow_blank=True)
    street_address_1 = serializers.CharField()
    street_address_2 = serializers.CharField(allow_blank=True)
    city = serializers.CharField()
    postal_code = serializers.CharField(allow_blank=True)
    country = serializers.CharField(help_text="ISO 3166-1 alpha-2.")
    country_area = serializers.CharField(allow_blank=True)
    phone = serializers.CharField(allow_blank=True)


SHIPPING_METHODS_EXAMPLE = [
    {"id": 3, "name": "DHL Paket", "zone": "germany", "price": "4.90", "free": False},
    {"id": 4, "name": "DHL Express", "zone": "germany", "price": "12.90", "free": False},
]


@extend_schema_serializer(
    examples=[OpenApiExample("A method", value=SHIPPING_METHODS_EXAMPLE[0], response_only=True)]
)
class ShippingMethodOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    zone = serializers.CharField()
    price = serializers.CharField(help_text="As entered (gross or net, like catalog prices).")
    free = serializers.BooleanField()


class TaxLineOutputSerializer(serializers.Serializer):
    rate = serializers.CharField()
    net = serializers.CharField(**MONEY)
    tax = serializers.CharField(**MONEY)


CART_EXAMPLE: dict[str, Any] = {
    "token": "Qm9vZGxlcy1hbmQtbm9vZGxlcy0xMjM0",
    "status": "open",
    "order_id": None,
    "currency": "EUR",
    "lines": [
        {
            "sku": "TEE-BLK-M",
            "name": "Organic tee",
            "variant_name": "M / Black",
            "quantity": 2,
            "unit_price": "19.90",
            "price_when_added": "19.90",
            "undiscounted": "39.80",
            "discount": "3.98",
            "promotion": "",
            "tax_rate": "19",
            "tax": "5.72",
            "total": "35.82",
            "problems": [],
        }
    ],
    "subtotal": "39.80",
    "discount": "3.98",
    "shipping": {
        "method_id": 3,
        "name": "DHL Paket",
        "price": "4.90",
        "net": "4.12",
        "tax": "0.78",
    },
    "tax": "6.50",
    "tax_breakdown": [{"rate": "19", "net": "34.22", "tax": "6.50"}],
    "total_net": "34.22",
    "total": "40.72",
    "prices_include_tax": True,
    "voucher_code": "WELCOME10",
    "voucher_applied": True,
    "shipping_address": ADDRESS_OUTPUT_EXAMPLE,
    "billing_address": None,
    "save_addresses": False,
    "shipping_methods": SHIPPING_METHODS_EXAMPLE[:1],
    "problems": [],
    "updated_at": "2026-11-27T10:15:00.123456Z",
    "expires_at": "2026-12-27T10:15:00.123456Z",
}


@extend_schema_serializer(
    examples=[
        OpenApiExample("A cart ready for checkout", value=CART_EXAMPLE, response_only=True),
        OpenApiExample(
            "A cart with problems",
            value={
                **CART_EXAMPLE,
                "lines": [
                    {
                        **CART_EXAMPLE["lines"][0],
                        "unit_price": "21.90",
                        "problems": [
                            {
                                "code": "insufficient_stock",
                                "sku": "TEE-BLK-M",
                                "requested": 2,
                                "available": 1,
                            },
                            {
                                "code": "price_changed",
                                "sku": "TEE-BLK-M",
                                "old": "19.90",
                                "new": "21.90",
                            },
                        ],
                    }
                ],
                "shipping": None,
                "problems": [
                    {"code": "shipping_method_required"},
                    {
                        "code": "insufficient_stock",
                        "sku": "TEE-BLK-M",
                        "requested": 2,
                        "available": 1,
                    },
                    {"code": "price_changed", "sku": "TEE-BLK-M", "old": "19.90", "new": "21.90"},
                ],
            },
            response_only=True,
        ),
    ]
)
class CartOutputSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="The cart's address: keep it secret.")
    status = serializers.ChoiceField(choices=CartStatus.choices)
    order_id = serializers.UUIDField(allow_null=True, help_text="Set once checked out.")
    currency = serializers.CharField()
    lines = CartLineOutputSerializer(many=True)
    subtotal = serializers.CharField(help_text="Undiscounted lines, as entered.")
    discount = serializers.CharField(help_text="Promotions and voucher, lines and shipping.")
    shipping = CartShippingOutputSerializer(allow_null=True)
    tax = serializers.CharField(**MONEY)
    tax_breakdown = TaxLineOutputSerializer(many=True)
    total_net = serializers.CharField(**MONEY)
    total = serializers.CharField(help_text="What checkout charges, tax included.")
    prices_include_tax = serializers.BooleanField()
    voucher_code = serializers.CharField(help_text="The code applied, or empty.")
    voucher_applied = serializers.BooleanField(help_text="Whether it discounts this cart now.")
    shipping_address = AddressOutputSerializer(allow_null=True)
    billing_address = AddressOutputSerializer(allow_null=True)
    save_addresses = serializers.BooleanField()
    shipping_methods = ShippingMethodOutputSerializer(
        many=True, help_text="The methods that ship this cart to its address, cheapest first."
    )
    problems = ProblemOutputSerializer(
        many=True, help_text="Everything that keeps the cart from checkout; empty when ready."
    )
    updated_at = serializers.DateTimeField(help_text="The last change.")
    expires_at = serializers.DateTimeField(help_text="Gone after this without a change.")
