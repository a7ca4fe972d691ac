"""The one function that prices a cart or an order: lines and a context in, a breakdown out.

Pure on purpose: no database, no settings, no Django. Selectors gather the inputs (tax rates
of the destination, active promotions, the voucher's terms, the shipping quote) and this
module applies the money rules of docs/pricing.md to them, so the same cart always prices
the same way, in the cart, at checkout and on the order.

The rules in one breath: per line, the undiscounted amount (unit price times quantity), then
the best automatic promotion for that line, then the cart's one voucher on what is left, then
tax on the discounted amount (extracted from it when prices include tax, added on top when
they do not). Every amount is rounded half up to the currency's minor unit as it is
computed, never as a sum of unrounded parts (ecommerce.money).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from ecommerce.money import THREE_DECIMAL_CURRENCIES, ZERO, is_exact, quantum, round_money

PROMOTION_KINDS = frozenset({"percentage", "fixed", "buy_x_pay_y"})
VOUCHER_KINDS = frozenset({"percentage", "fixed", "free_shipping"})
HUNDRED = Decimal(100)

# Why a voucher given with the cart did not apply (Breakdown.voucher_problem).
VOUCHER_CURRENCY = "currency"
VOUCHER_MIN_SPEND = "min_spend"
VOUCHER_NO_ELIGIBLE_LINES = "no_eligible_lines"


@dataclass(frozen=True)
class LineInput:
    """One cart line as the catalog prices it."""

    key: str  # the variant's SKU (echoed in the output)
    variant_id: int
    product_id: int
    category_ids: frozenset[int]  # the product's category and all its ancestors
    unit_price: Decimal  # as entered in the catalog (gross or net, see the context)
    quantity: int
    tax_rate: Decimal  # percent for the line's tax class in the destination: Decimal("19")


@dataclass(frozen=True)
class PromotionTerms:
    """An automatic promotion: applies to every matching line without a code."""

    id: int
    name: str
    kind: str  # "percentage" | "fixed" | "buy_x_pay_y"
    value: Decimal  # percent, or amount off per unit; 0 for buy_x_pay_y
    currency: str  # for "fixed"
    buy_quantity: int  # X, for buy_x_pay_y (else 0)
    pay_quantity: int  # Y, for buy_x_pay_y (else 0)
    product_ids: frozenset[int]
    category_ids: frozenset[int]  # both empty = every line


@dataclass(frozen=True)
class VoucherTerms:
    """The terms of the one voucher a cart may carry."""

    code: str
    kind: str  # "percentage" | "fixed" | "free_shipping"
    value: Decimal
    currency: str
    min_spend: Decimal | None
    product_ids: frozenset[int]
    category_ids: frozenset[int]  # both empty = every line


@dataclass(frozen=True)
class ShippingInput:
    """The chosen shipping method's price for this cart."""

    method_id: int
    name: str
    price: Decimal  # as entered (gross or net, like catalog prices); 0 when free
    tax_rate: Decimal


@dataclass(frozen=True)
class PricingContext:
    """Everything besides the lines that decides the price."""

    currency: str
    prices_include_tax: bool
    promotions: Sequence[PromotionTerms] = ()
    voucher: VoucherTerms | None = None
    shipping: ShippingInput | None = None


@dataclass(frozen=True)
class PricedLine:
    """One line priced: discounts taken off, tax split out."""

    key: str
    variant_id: int
    quantity: int
    unit_price: Decimal
    undiscounted: Decimal  # unit_price * quantity
    promotion_discount: Decimal
    promotion_name: str  # "" when none
    voucher_discount: Decimal
    tax_rate: Decimal
    net: Decimal  # after discounts
    tax: Decimal
    gross: Decimal  # after discounts: what the line costs the customer


@dataclass(frozen=True)
class Breakdown:
    """A priced cart. Invariants: total = sum of line gross + shipping gross;
    tax = sum of line taxes + shipping tax; total - total_net = tax."""

    currency: str
    prices_include_tax: bool
    lines: tuple[PricedLine, ...]
    subtotal: Decimal  # sum of undiscounted line amounts (entered basis)
    discount: Decimal  # promotions + voucher on lines + shipping discount
    shipping_method_id: int | None
    shipping_name: str
    shipping_undiscounted: Decimal  # entered basis
    shipping_net: Decimal
    shipping_tax: Decimal
    shipping_gross: Decimal
    tax: Decimal  # lines + shipping
    total_net: Decimal
    total: Decimal  # gross: what is charged
    voucher_code: str  # "" when none applied
    voucher_problem: str  # "" or why the voucher given did not apply
    shipping_tax_rate: Decimal = ZERO

    def tax_breakdown(self) -> list[dict[str, str]]:
        """Net and tax per tax rate, lines and shipping together, highest rate first.

        JSON-ready: every value is a string (`{"rate": "19", "net": "100.00", "tax": "19.00"}`),
        amounts with the currency's places. Shipping counts only when it costs something,
        so free shipping adds no empty row. The taxes of the rows sum to `tax`.
        """
        groups: dict[Decimal, list[Decimal]] = {}
        for line in self.lines:
            net_tax = groups.setdefault(line.tax_rate, [ZERO, ZERO])
            net_tax[0] += line.net
            net_tax[1] += line.tax
        if self.shipping_gross:
            net_tax = groups.setdefault(self.shipping_tax_rate, [ZERO, ZERO])
            net_tax[0] += self.shipping_net
            net_tax[1] += self.shipping_tax
        return [
            {
                "rate": format_rate(rate),
                "net": format(round_money(net, self.currency), "f"),
                "tax": format(round_money(tax, self.currency), "f"),
            }
            for rate, (net, tax) in sorted(groups.items(), key=lambda item: -item[0])
        ]


def format_rate(rate: Decimal) -> str:
    """A percent without trailing zeros or exponent: 19.00 -> "19", 7.50 -> "7.5"."""
    text = format(rate, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def price(lines: Sequence[LineInput], context: PricingContext) -> Breakdown:
    """Price `lines` under `context` following docs/pricing.md.

    Promotions of another currency ("fixed" ones) are skipped; a voucher of another
    currency, below its minimum spend or matching no line does not apply and says why in
    `voucher_problem`. Raises ValueError on inputs no caller should send: a quantity below
    one, a negative or inexact unit price, a rate outside 0..100, an unknown kind, a
    currency whose amounts cannot be stored.
    """
    currency = _validated_currency(context.currency)
    for line in lines:
        _validate_line(line, currency)
    for promotion in context.promotions:
        _validate_promotion(promotion)
    if context.shipping is not None:
        _validate_shipping(context.shipping, currency)

    undiscounted = [line.unit_price * line.quantity for line in lines]
    promotions = [_best_promotion(line, context.promotions, currency) for line in lines]
    after_promotion = [
        amount - discount
        for amount, (discount, _name) in zip(undiscounted, promotions, strict=True)
    ]

    voucher = context.voucher
    voucher_discounts = [ZERO] * len(lines)
    voucher_code = voucher_problem = ""
    free_shipping = False
    if voucher is not None:
        _validate_voucher(voucher)
        voucher_problem = _voucher_problem(voucher, lines, after_promotion, currency)
        if not voucher_problem:
            voucher_code = voucher.code
            eligible = [_voucher_covers(voucher, line) for line in lines]
            if voucher.kind == "percentage":
                voucher_discounts = [
                    round_money(amount * voucher.value / HUNDRED, currency) if covered else ZERO
                    for amount, covered in zip(after_promotion, eligible, strict=True)
                ]
            elif voucher.kind == "fixed":
                voucher_discounts = _split_fixed(
                    round_money(voucher.value, currency),
                    [
                        amount if covered else ZERO
                        for amount, covered in zip(after_promotion, eligible, strict=True)
                    ],
                    currency,
                )
            else:
                free_shipping = True

    priced: list[PricedLine] = []
    for index, line in enumerate(lines):
        promotion_discount, promotion_name = promotions[index]
        amount = after_promotion[index] - voucher_discounts[index]
        net, tax, gross = _tax_split(amount, line.tax_rate, context.prices_include_tax, currency)
        priced.append(
            PricedLine(
                key=line.key,
                variant_id=line.variant_id,
                quantity=line.quantity,
                unit_price=line.unit_price,
                undiscounted=round_money(undiscounted[index], currency),
                promotion_discount=round_money(promotion_discount, currency),
                promotion_name=promotion_name,
                voucher_discount=round_money(voucher_discounts[index], currency),
                tax_rate=line.tax_rate,
                net=round_money(net, currency),
                tax=tax,
                gross=round_money(gross, currency),
            )
        )

    shipping = context.shipping
    shipping_undiscounted = shipping.price if shipping is not None else ZERO
    shipping_discount = shipping_undiscounted if free_shipping else ZERO
    shipping_rate = shipping.tax_rate if shipping is not None else ZERO
    shipping_net, shipping_tax, shipping_gross = _tax_split(
        shipping_undiscounted - shipping_discount,
        shipping_rate,
        context.prices_include_tax,
        currency,
    )

    zero = round_money(ZERO, currency)
    shipping_net = round_money(shipping_net, currency)
    shipping_gross = round_money(shipping_gross, currency)
    return Breakdown(
        currency=currency,
        prices_include_tax=context.prices_include_tax,
        lines=tuple(priced),
        subtotal=sum((p.undiscounted for p in priced), zero),
        discount=sum((p.promotion_discount + p.voucher_discount for p in priced), zero)
        + round_money(shipping_discount, currency),
        shipping_method_id=shipping.method_id if shipping is not None else None,
        shipping_name=shipping.name if shipping is not None else "",
        shipping_undiscounted=round_money(shipping_undiscounted, currency),
        shipping_net=shipping_net,
        shipping_tax=shipping_tax,
        shipping_gross=shipping_gross,
        tax=sum((p.tax for p in priced), zero) + shipping_tax,
        total_net=sum((p.net for p in priced), zero) + shipping_net,
        total=sum((p.gross for p in priced), zero) + shipping_gross,
        voucher_code=voucher_code,
        voucher_problem=voucher_problem,
        shipping_tax_rate=shipping_rate,
    )


def _tax_split(
    amount: Decimal, rate: Decimal, prices_include_tax: bool, currency: str
) -> tuple[Decimal, Decimal, Decimal]:
    """(net, tax, gross) of an entered amount: tax extracted from it or added on top."""
    if prices_include_tax:
        tax = round_money(amount * rate / (HUNDRED + rate), currency)
        return amount - tax, tax, amount
    tax = round_money(amount * rate / HUNDRED, currency)
    return amount, tax, amount + tax


def _matches(product_ids: frozenset[int], category_ids: frozenset[int], line: LineInput) -> bool:
    if not product_ids and not category_ids:
        return True
    return line.product_id in product_ids or not category_ids.isdisjoint(line.category_ids)


def _promotion_discount(promotion: PromotionTerms, line: LineInput, currency: str) -> Decimal:
    """What `promotion` takes off `line`, rounded; 0 when it does not apply."""
    if not _matches(promotion.product_ids, promotion.category_ids, line):
        return ZERO
    if promotion.kind == "percentage":
        return round_money(line.unit_price * line.quantity * promotion.value / HUNDRED, currency)
    if promotion.kind == "fixed":
        if promotion.currency.upper() != currency:
            return ZERO
        return min(round_money(promotion.value, currency), line.unit_price) * line.quantity
    free_units = (line.quantity // promotion.buy_quantity) * (
        promotion.buy_quantity - promotion.pay_quantity
    )
    return free_units * line.unit_price


def _best_promotion(
    line: LineInput, promotions: Sequence[PromotionTerms], currency: str
) -> tuple[Decimal, str]:
    """The largest discount one promotion gives `line` (tie: lowest id), and its name."""
    best_discount, best_name = round_money(ZERO, currency), ""
    for promotion in sorted(promotions, key=lambda p: p.id):
        discount = _promotion_discount(promotion, line, currency)
        if discount > best_discount:
            best_discount, best_name = discount, promotion.name
    return best_discount, best_name


def _voucher_covers(voucher: VoucherTerms, line: LineInput) -> bool:
    return _matches(voucher.product_ids, voucher.category_ids, line)


def _voucher_problem(
    voucher: VoucherTerms,
    lines: Sequence[LineInput],
    after_promotion: Sequence[Decimal],
    currency: str,
) -> str:
    """Why `voucher` does not apply to these lines, or "" when it does."""
    if voucher.currency.upper() != currency:
        return VOUCHER_CURRENCY
    covered = [
        amount
        for line, amount in zip(lines, after_promotion, strict=True)
        if _voucher_covers(voucher, line)
    ]
    if not covered:
        return VOUCHER_NO_ELIGIBLE_LINES
    if voucher.min_spend is not None and sum(covered, ZERO) < voucher.min_spend:
        return VOUCHER_MIN_SPEND
    return ""


def _split_fixed(value: Decimal, amounts: Sequence[Decimal], currency: str) -> list[Decimal]:
    """Split `value` (capped at the sum of `amounts`) over `amounts` in proportion.

    Largest remainder in minor units, so the parts sum exactly to the capped value and no
    part exceeds its amount. Ties go to the earlier line, so the split is deterministic.
    """
    unit = quantum(currency)
    units = [int(amount / unit) for amount in amounts]
    total_units = sum(units)
    if total_units == 0:
        return [ZERO * unit for _ in amounts]
    target = min(int(value / unit), total_units)
    shares = [target * u // total_units for u in units]
    remainders = [target * u % total_units for u in units]
    leftover = target - sum(shares)
    order = sorted(range(len(units)), key=lambda i: (-remainders[i], i))
    for index in order[:leftover]:
        shares[index] += 1
    return [share * unit for share in shares]


def _validated_currency(currency: str) -> str:
    code = currency.upper() if isinstance(currency, str) else ""
    if len(code) != 3 or not code.isalpha():
        raise ValueError(f"Not an ISO 4217 currency code: {currency!r}.")
    if code in THREE_DECIMAL_CURRENCIES:
        raise ValueError(f"{code} has three decimal places, which amounts cannot hold.")
    return code


def _validate_rate(rate: Decimal, what: str) -> None:
    if not isinstance(rate, Decimal) or not rate.is_finite() or not ZERO <= rate <= HUNDRED:
        raise ValueError(f"{what} must be a Decimal percent from 0 to 100, not {rate!r}.")


def _validate_amount(amount: Decimal, currency: str, what: str) -> None:
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount < ZERO:
        raise ValueError(f"{what} must be a Decimal of at least 0, not {amount!r}.")
    if not is_exact(amount, currency):
        raise ValueError(f"{what} {amount} is not exact to the minor unit of {currency}.")


def _validate_line(line: LineInput, currency: str) -> None:
    if isinstance(line.quantity, bool) or not isinstance(line.quantity, int) or line.quantity < 1:
        raise ValueError(
            f"Line {line.key}: quantity must be a positive integer, not {line.quantity!r}."
        )
    _validate_amount(line.unit_price, currency, f"Line {line.key}: unit price")
    _validate_rate(line.tax_rate, f"Line {line.key}: tax rate")


def _validate_shipping(shipping: ShippingInput, currency: str) -> None:
    _validate_amount(shipping.price, currency, "Shipping price")
    _validate_rate(shipping.tax_rate, "Shipping tax rate")


def _validate_promotion(promotion: PromotionTerms) -> None:
    what = f"Promotion {promotion.id}"
    if promotion.kind not in PROMOTION_KINDS:
        raise ValueError(f"{what}: unknown kind {promotion.kind!r}.")
    if promotion.kind == "percentage":
        _validate_rate(promotion.value, f"{what}: percentage")
    elif promotion.kind == "fixed":
        if (
            not isinstance(promotion.value, Decimal)
            or not promotion.value.is_finite()
            or promotion.value < ZERO
        ):
            raise ValueError(f"{what}: amount off must be a Decimal of at least 0.")
    elif promotion.buy_quantity < 1 or not 0 <= promotion.pay_quantity <= promotion.buy_quantity:
        raise ValueError(
            f"{what}: buy {promotion.buy_quantity} pay {promotion.pay_quantity} needs"
            " buy >= 1 and 0 <= pay <= buy."
        )


def _validate_voucher(voucher: VoucherTerms) -> None:
    what = f"Voucher {voucher.code}"
    if voucher.kind not in VOUCHER_KINDS:
        raise ValueError(f"{what}: unknown kind {voucher.kind!r}.")
    if voucher.kind == "percentage":
        _validate_rate(voucher.value, f"{what}: percentage")
    elif voucher.kind == "fixed" and (
        not isinstance(voucher.value, Decimal)
        or not voucher.value.is_finite()
        or voucher.value < ZERO
    ):
        raise ValueError(f"{what}: amount off must be a Decimal of at least 0.")
    if voucher.min_spend is not None and (
        not isinstance(voucher.min_spend, Decimal) or not voucher.min_spend.is_finite()
    ):
        raise ValueError(f"{what}: minimum spend must be a Decimal or None.")
