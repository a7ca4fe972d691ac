"""Reads of the checkout: carts by token for a caller, and the priced cart.

The priced cart is computed on every read from the catalog, stock, shipping and pricing as
they are now, in a bounded number of queries whatever the number of lines (the cart with
its lines and variants, stock for every line at once, the shipping methods, and pricing's
own few reads).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from django.conf import settings
from django.db import connection
from django.utils import timezone

from apps.catalog.models import Category, Product, ProductType, ProductVariant
from apps.checkout import locks
from apps.checkout.exceptions import CartNotFound
from apps.checkout.models import Cart, CartLine, CartStatus
from apps.inventory import selectors as inventory_selectors
from apps.pricing import exceptions as pricing_exceptions
from apps.pricing import selectors as pricing_selectors
from apps.pricing.calculator import Breakdown
from apps.shipping import selectors as shipping_selectors
from apps.shipping.selectors import ShippingQuote
from ecommerce.db import prepared
from ecommerce.db.joined import Joined, link
from ecommerce.money import format_amount, is_exact

# What new_cart_token makes (URL-safe base64); anything else names no cart.
TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")
ZERO = Decimal("0")
VOUCHER_ERRORS = (
    pricing_exceptions.VoucherNotFound,
    pricing_exceptions.VoucherNotActive,
    pricing_exceptions.VoucherExhausted,
    pricing_exceptions.VoucherPerCustomerLimitReached,
)


def idle_cutoff(now: datetime | None = None) -> datetime:
    """Carts last changed before this are gone."""
    return (now or timezone.now()) - timedelta(seconds=settings.CART_IDLE_SECONDS)


def _live(carts: Any) -> Any:
    return carts.filter(updated_at__gte=idle_cutoff())


def cart_for(*, token: str, user: Any) -> Cart:
    """The cart at `token` as `user` may see it.

    A cart with an owner is that owner's alone; an anonymous cart is reachable by its
    token. Raises CartNotFound for a malformed or unknown token, someone else's cart, and a
    cart idle past CART_IDLE_SECONDS (gone, even before the beat task deletes it).
    """
    if not isinstance(token, str) or not TOKEN.fullmatch(token):
        raise CartNotFound()
    cart = _cart_by_token(token)
    if cart is None:
        raise CartNotFound()
    if cart.user_id is not None:
        signed_in = user is not None and getattr(user, "is_authenticated", False)
        if not signed_in or user.pk != cart.user_id:
            raise CartNotFound()
    return cart


_CART_BY_TOKEN_SQL = f"""
SELECT {locks.CART.columns()} FROM checkout_cart c
WHERE c.token = %s AND c.updated_at >= %s ORDER BY c.id LIMIT 1
"""  # noqa: S608 (the select list comes from the model's fields)


def _cart_by_token(token: str) -> Cart | None:
    """The cart at `token` unless it went idle (every cart request reads it: written out
    once on PostgreSQL)."""
    if connection.vendor != "postgresql":
        return _live(Cart.objects.filter(token=token)).order_by("pk").first()
    with connection.cursor() as cursor:
        prepared.execute(cursor, (_CART_BY_TOKEN_SQL, [token, idle_cutoff()]))
        row = cursor.fetchone()
    return None if row is None else cast(Cart, locks.CART.instance(row, 0))


def current_cart_of(*, user: Any) -> Cart | None:
    """The customer's open cart, unless it has gone idle."""
    return _live(Cart.objects.filter(user=user, status=CartStatus.OPEN)).first()


def anonymous_cart(*, token: str) -> Cart | None:
    """The open anonymous cart at `token`, or None (malformed, unknown, idle, owned)."""
    if not isinstance(token, str) or not TOKEN.fullmatch(token):
        return None
    return _live(
        Cart.objects.filter(token=token, status=CartStatus.OPEN, user__isnull=True)
    ).first()


def _lines(cart: Cart) -> list[CartLine]:
    """The lines with what pricing reads of each variant, in one query."""
    if connection.vendor == "postgresql":
        return _lines_joined(cart.pk)
    return list(
        CartLine.objects.filter(cart=cart)
        .select_related("variant__product__product_type", "variant__product__category")
        .order_by("created_at", "pk")
    )


# `_lines` on PostgreSQL: every priced cart and checkout reads it, and compiling its
# four-table select_related cost twice the CPU of running it (ecommerce/db/joined.py).
_LINE = Joined(CartLine, "l")
_VARIANT = Joined(ProductVariant, "v")
_PRODUCT = Joined(Product, "p")
_PRODUCT_TYPE = Joined(ProductType, "t")
_CATEGORY = Joined(Category, "c")
_LINES_SQL = f"""
SELECT {_LINE.columns()}, {_VARIANT.columns()}, {_PRODUCT.columns()},
       {_PRODUCT_TYPE.columns()}, {_CATEGORY.columns()}
FROM checkout_cartline l
JOIN catalog_productvariant v ON v.id = l.variant_id
JOIN catalog_product p ON p.id = v.product_id
LEFT JOIN catalog_producttype t ON t.id = p.product_type_id
LEFT JOIN catalog_category c ON c.id = p.category_id
WHERE l.cart_id = %s
ORDER BY l.created_at, l.id
"""  # noqa: S608 (the select lists come from the models' fields)


def _lines_joined(cart_id: int) -> list[CartLine]:
    with connection.cursor() as cursor:
        prepared.execute(cursor, (_LINES_SQL, [cart_id]))
        rows = cursor.fetchall()
    lines = []
    for row in rows:
        at = 0
        # Inner joins: the line, its variant and its product are never missing.
        line = cast(CartLine, _LINE.instance(row, at))
        at += _LINE.width
        variant = cast(ProductVariant, _VARIANT.instance(row, at))
        at += _VARIANT.width
        product = cast(Product, _PRODUCT.instance(row, at))
        at += _PRODUCT.width
        link(product, "product_type", _PRODUCT_TYPE.instance(row, at))
        link(product, "category", _CATEGORY.instance(row, at + _PRODUCT_TYPE.width))
        link(variant, "product", product)
        link(line, "variant", variant)
        lines.append(line)
    return lines


def _for_sale(variant: ProductVariant, currency: str) -> bool:
    """Active, in the cart's currency, and at a price that currency can carry (a legacy
    100.50 JPY cannot be priced)."""
    return (
        variant.is_active
        and variant.product.is_active
        and variant.currency == currency
        and is_exact(variant.price, currency)
    )


def _basis(lines: list[CartLine], currency: str) -> tuple[int, Decimal]:
    """Weight (grams) and undiscounted subtotal of the lines for sale: the shipping rules'
    inputs (the subtotal on the entered basis, as free_over is)."""
    weight, subtotal = 0, ZERO
    for line in lines:
        if _for_sale(line.variant, currency):
            weight += (line.variant.weight_grams or 0) * line.quantity
            subtotal += line.variant.price * line.quantity
    return weight, subtotal


def shipping_basis(cart: Cart) -> tuple[int, Decimal]:
    """The cart's weight in grams and its undiscounted subtotal."""
    return _basis(_lines(cart), cart.currency)


@dataclass
class CartPricing:
    """A cart priced now: the response body, and what checkout builds the order from."""

    body: dict[str, Any]
    breakdown: Breakdown | None
    problems: list[dict[str, Any]]  # cart-level and line problems together
    variants: dict[str, ProductVariant] = field(default_factory=dict)  # by SKU, priced lines


def _money(amount: Decimal | None, currency: str) -> str | None:
    return None if amount is None else format_amount(amount, currency)


def _line_problems(
    line: CartLine, *, currency: str, available: Mapping[int, int]
) -> list[dict[str, Any]]:
    variant = line.variant
    if not _for_sale(variant, currency):
        return [{"code": "variant_unavailable", "sku": variant.sku}]
    problems: list[dict[str, Any]] = []
    on_hand = max(available.get(variant.pk, 0), 0)
    if on_hand < line.quantity:
        problems.append(
            {
                "code": "insufficient_stock",
                "sku": variant.sku,
                "requested": line.quantity,
                "available": on_hand,
            }
        )
    if line.price_when_added != variant.price or line.currency_when_added != variant.currency:
        problems.append(
            {
                "code": "price_changed",
                "sku": variant.sku,
                "old": _money(line.price_when_added, line.currency_when_added),
                "new": _money(variant.price, variant.currency),
            }
        )
    return problems


def _quote_dict(quote: ShippingQuote) -> dict[str, Any]:
    return {
        "id": quote.method_id,
        "name": quote.name,
        "zone": quote.zone,
        "price": _money(quote.price, quote.currency),
        "free": quote.free,
    }


def shipping_methods_for(cart: Cart) -> list[ShippingQuote]:
    """The methods that ship this cart to its address now; none without an address."""
    if not cart.country:
        return []
    weight, subtotal = shipping_basis(cart)
    return shipping_selectors.quotes(
        country=cart.country, currency=cart.currency, weight_grams=weight, subtotal=subtotal
    )


def _price(
    items: list[tuple[ProductVariant, int]],
    *,
    cart: Cart,
    shipping: ShippingQuote | None,
    user: Any,
    problems: list[dict[str, Any]],
) -> Breakdown:
    """Price with the cart's voucher; a voucher that lapsed since it was applied is priced
    without, and named in `problems`."""
    signed_in = user if user is not None and getattr(user, "is_authenticated", False) else None
    try:
        return pricing_selectors.price_items(
            items,
            currency=cart.currency,
            country=cart.country,
            voucher_code=cart.voucher_code,
            shipping=shipping,
            user=signed_in,
        )
    except VOUCHER_ERRORS as exc:
        problems.append({"code": exc.code, "voucher_code": cart.voucher_code, "detail": exc.detail})
    return pricing_selectors.price_items(
        items, currency=cart.currency, country=cart.country, shipping=shipping, user=signed_in
    )


def price_cart(cart: Cart, *, user: Any = None) -> CartPricing:
    """The cart priced now, with its problems (see the API's CartOutputSerializer).

    Line problems: variant_unavailable (inactive, or priced in another currency now: left
    out of the totals), insufficient_stock (with what the warehouses serving the cart's
    country hold), price_changed (old and new unit price; changing the line's quantity
    accepts it). Cart problems: cart_empty, shipping_address_required,
    shipping_method_required (methods serve the address but none is chosen),
    shipping_method_unavailable (the chosen one no longer does), and the voucher's
    (voucher_not_found/_not_active/_exhausted/_per_customer_limit, or
    voucher_not_applicable with the reason). Checkout refuses a cart with any problem.
    """
    currency = cart.currency
    lines = _lines(cart)
    warehouses = inventory_selectors.warehouses_for(cart.country or None)
    available = inventory_selectors.stock_by_variant(
        [line.variant_id for line in lines], warehouse_ids=[w.pk for w in warehouses]
    )
    problems: list[dict[str, Any]] = []
    line_problems = {
        line.pk: _line_problems(line, currency=currency, available=available) for line in lines
    }
    priced_lines = [
        line
        for line in lines
        if not any(p["code"] == "variant_unavailable" for p in line_problems[line.pk])
    ]
    if not lines:
        problems.append({"code": "cart_empty"})

    quotes: list[ShippingQuote] = []
    chosen: ShippingQuote | None = None
    if not cart.shipping_address:
        problems.append({"code": "shipping_address_required"})
    elif priced_lines:
        weight, subtotal = _basis(priced_lines, currency)
        quotes = shipping_selectors.quotes(
            country=cart.country, currency=currency, weight_grams=weight, subtotal=subtotal
        )
        if cart.shipping_method_id is not None:
            chosen = next((q for q in quotes if q.method_id == cart.shipping_method_id), None)
            if chosen is None:
                problems.append(
                    {"code": "shipping_method_unavailable", "method_id": cart.shipping_method_id}
                )
        elif quotes:
            problems.append({"code": "shipping_method_required"})

    breakdown: Breakdown | None = None
    priced: dict[str, Any] = {}
    if priced_lines:
        items = [(line.variant, line.quantity) for line in priced_lines]
        breakdown = _price(items, cart=cart, shipping=chosen, user=user, problems=problems)
        if cart.voucher_code and breakdown.voucher_problem:
            problems.append(
                {
                    "code": "voucher_not_applicable",
                    "voucher_code": cart.voucher_code,
                    "reason": breakdown.voucher_problem,
                }
            )
        priced = {line.key: line for line in breakdown.lines}

    body_lines = []
    for line in lines:
        variant = line.variant
        result = priced.get(variant.sku)
        body_lines.append(
            {
                "sku": variant.sku,
                "name": variant.product.name,
                "variant_name": variant.name,
                "quantity": line.quantity,
                "unit_price": _money(variant.price, variant.currency),
                "price_when_added": _money(line.price_when_added, line.currency_when_added),
                "undiscounted": _money(result.undiscounted, currency) if result else None,
                "discount": _money(result.promotion_discount + result.voucher_discount, currency)
                if result
                else None,
                "promotion": result.promotion_name if result else "",
                "tax_rate": _rate(result.tax_rate) if result else None,
                "tax": _money(result.tax, currency) if result else None,
                "total": _money(result.gross, currency) if result else None,
                "problems": line_problems[line.pk],
            }
        )
    all_problems = problems + [p for line in lines for p in line_problems[line.pk]]
    zero = _money(ZERO, currency)
    body = {
        "token": cart.token,
        "status": cart.status,
        "order_id": str(cart.order_public_id) if cart.order_public_id else None,
        "currency": currency,
        "lines": body_lines,
        "subtotal": _money(breakdown.subtotal, currency) if breakdown else zero,
        "discount": _money(breakdown.discount, currency) if breakdown else zero,
        "shipping": {
            "method_id": chosen.method_id,
            "name": chosen.name,
            "price": _money(breakdown.shipping_gross, currency),
            "net": _money(breakdown.shipping_net, currency),
            "tax": _money(breakdown.shipping_tax, currency),
        }
        if chosen is not None and breakdown is not None
        else None,
        "tax": _money(breakdown.tax, currency) if breakdown else zero,
        "tax_breakdown": breakdown.tax_breakdown() if breakdown else [],
        "total_net": _money(breakdown.total_net, currency) if breakdown else zero,
        "total": _money(breakdown.total, currency) if breakdown else zero,
        "prices_include_tax": breakdown.prices_include_tax
        if breakdown
        else pricing_selectors.tax_settings().prices_include_tax,
        "voucher_code": cart.voucher_code,
        "voucher_applied": bool(breakdown and breakdown.voucher_code),
        "shipping_address": cart.shipping_address or None,
        "billing_address": cart.billing_address or None,
        "save_addresses": cart.save_addresses,
        "shipping_methods": [_quote_dict(q) for q in quotes],
        "problems": all_problems,
        "updated_at": cart.updated_at.isoformat().replace("+00:00", "Z"),
        "expires_at": (cart.updated_at + timedelta(seconds=settings.CART_IDLE_SECONDS))
        .isoformat()
        .replace("+00:00", "Z"),
    }
    return CartPricing(
        body=body,
        breakdown=breakdown,
        problems=all_problems,
        variants={line.variant.sku: line.variant for line in priced_lines},
    )


def _rate(rate: Decimal) -> str:
    text = format(rate, "f")
    return (text.rstrip("0").rstrip(".") if "." in text else text) or "0"


def priced_cart(cart: Cart, *, user: Any = None) -> dict[str, Any]:
    """The response body of every cart endpoint: the cart priced now, with its problems."""
    return price_cart(cart, user=user).body
