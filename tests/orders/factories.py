"""Order test data: drafts priced by hand, and the breakdown of a line bought as entered."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from apps.catalog.models import Product, ProductVariant
from apps.orders.services import DraftLine, OrderDraft


def untaxed_line(line_total: str) -> dict[str, str]:
    """The breakdown keys of an order line with no discount and no tax (`place_order`)."""
    return {
        "discount": "0.00",
        "promotion_name": "",
        "tax_rate": "0",
        "tax": "0.00",
        "total_net": line_total,
    }


def draft_line(
    variant: ProductVariant,
    quantity: int,
    *,
    discount: str = "0",
    promotion_name: str = "",
    tax_rate: str = "0",
    tax: str = "0",
    net: str,
) -> DraftLine:
    """A line whose amounts the test states; line_total = net + tax."""
    return DraftLine(
        variant=variant,
        quantity=quantity,
        unit_price=variant.price,
        discount=Decimal(discount),
        promotion_name=promotion_name,
        tax_rate=Decimal(tax_rate),
        tax=Decimal(tax),
        total_net=Decimal(net),
        line_total=Decimal(net) + Decimal(tax),
    )


def order_draft(lines: list[DraftLine], **fields: Any) -> OrderDraft:
    """A draft of `lines` with nothing else (no shipping, discount or tax) unless `fields`
    say otherwise; totals follow the lines unless given."""
    net = sum((line.total_net for line in lines), Decimal("0"))
    tax = sum((line.tax for line in lines), Decimal("0"))
    values: dict[str, Any] = {
        "currency": lines[0].variant.currency,
        "lines": lines,
        "subtotal": sum((line.unit_price * line.quantity for line in lines), Decimal("0")),
        "discount_total": sum((line.discount for line in lines), Decimal("0")),
        "shipping_method_name": "",
        "shipping_price": Decimal("0"),
        "shipping_tax": Decimal("0"),
        "tax_total": tax,
        "total_net": net,
        "total": net + tax,
        "prices_include_tax": True,
        "voucher_code": "",
        "tax_breakdown": [],
        "shipping_country": "",
        "shipping_address": {},
        "billing_address": {},
        "payment_token": "tok_success",
    }
    values.update(fields)
    return OrderDraft(**values)


ADDRESS = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "company": "",
    "street_address_1": "Unter den Linden 1",
    "street_address_2": "",
    "city": "Berlin",
    "postal_code": "10117",
    "country": "DE",
    "country_area": "",
    "phone": "",
}
BILLING = {**ADDRESS, "company": "Analytical Engines GmbH"}


def full_draft(tee: Product, mug: Product, **fields: Any) -> OrderDraft:
    """A draft as checkout prices it, gross prices and 19% VAT: 3 tees less a 10% voucher,
    2 mugs less a 2.00 promotion, 4.90 shipping to Berlin. Every amount as the pricing rules
    give it (docs/pricing.md)."""
    lines = [
        # 59.70 - 5.97 = 53.73 gross; tax round(53.73 * 19 / 119) = 8.58
        draft_line(tee.variant, 3, discount="5.97", tax_rate="19", tax="8.58", net="45.15"),
        # 20.00 - 2.00 = 18.00 gross; tax 2.87
        draft_line(
            mug.variant,
            2,
            discount="2.00",
            promotion_name="Mug week",
            tax_rate="19",
            tax="2.87",
            net="15.13",
        ),
    ]
    values: dict[str, Any] = {
        "subtotal": Decimal("79.70"),
        "discount_total": Decimal("7.97"),
        "shipping_method_name": "DHL Paket",
        "shipping_price": Decimal("4.90"),
        "shipping_tax": Decimal("0.78"),
        "tax_total": Decimal("12.23"),
        "total_net": Decimal("64.40"),  # 45.15 + 15.13 + 4.12
        "total": Decimal("76.63"),  # 53.73 + 18.00 + 4.90
        "prices_include_tax": True,
        "voucher_code": "WELCOME10",
        "tax_breakdown": [
            {"rate": Decimal("19.00"), "net": Decimal("64.40"), "tax": Decimal("12.23")}
        ],
        "shipping_country": "DE",
        "shipping_address": ADDRESS,
        "billing_address": BILLING,
        **fields,
    }
    return order_draft(lines, **values)
