"""The pricing calculator against worked examples computed by hand (docs/pricing.md shows
the same table), and its invariants over generated carts."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from apps.pricing.calculator import (
    Breakdown,
    LineInput,
    PricingContext,
    PromotionTerms,
    ShippingInput,
    VoucherTerms,
    price,
)
from ecommerce.money import minor_unit

D = Decimal
CLOTHING, TSHIRTS, KITCHEN, BOOKS = 1, 2, 3, 4


def line(
    key: str,
    unit_price: str,
    quantity: int = 1,
    rate: str = "19",
    *,
    product: int = 0,
    categories: tuple[int, ...] = (),
) -> LineInput:
    return LineInput(
        key=key,
        variant_id=sum(map(ord, key)),
        product_id=product,
        category_ids=frozenset(categories),
        unit_price=D(unit_price),
        quantity=quantity,
        tax_rate=D(rate),
    )


def tee(quantity: int = 1) -> LineInput:
    """A T-shirt at 19.90: category T-shirts, whose parent is Clothing."""
    return line("TEE", "19.90", quantity, product=10, categories=(TSHIRTS, CLOTHING))


def mug(quantity: int = 1) -> LineInput:
    return line("MUG", "12.00", quantity, product=20, categories=(KITCHEN,))


def promotion(
    id: int,
    kind: str,
    value: str = "0",
    *,
    name: str = "",
    currency: str = "EUR",
    buy: int = 0,
    pay: int = 0,
    products: tuple[int, ...] = (),
    categories: tuple[int, ...] = (),
) -> PromotionTerms:
    return PromotionTerms(
        id=id,
        name=name or f"Promotion {id}",
        kind=kind,
        value=D(value),
        currency=currency,
        buy_quantity=buy,
        pay_quantity=pay,
        product_ids=frozenset(products),
        category_ids=frozenset(categories),
    )


def voucher(
    kind: str,
    value: str = "0",
    *,
    code: str = "SAVE",
    currency: str = "EUR",
    min_spend: str | None = None,
    products: tuple[int, ...] = (),
    categories: tuple[int, ...] = (),
) -> VoucherTerms:
    return VoucherTerms(
        code=code,
        kind=kind,
        value=D(value),
        currency=currency,
        min_spend=D(min_spend) if min_spend is not None else None,
        product_ids=frozenset(products),
        category_ids=frozenset(categories),
    )


def shipping(price: str, rate: str = "19") -> ShippingInput:
    return ShippingInput(method_id=7, name="Parcel", price=D(price), tax_rate=D(rate))


def gross(currency: str = "EUR", **kwargs: Any) -> PricingContext:
    """A context where prices include tax (the shop's default)."""
    return PricingContext(currency=currency, prices_include_tax=True, **kwargs)


def net(currency: str = "EUR", **kwargs: Any) -> PricingContext:
    """A context where tax is added on top of the prices."""
    return PricingContext(currency=currency, prices_include_tax=False, **kwargs)


@dataclass(frozen=True)
class Example:
    """A cart, and what it must cost: totals, and per line (promotion discount, voucher
    discount, net, tax, gross)."""

    name: str
    lines: list[LineInput]
    context: PricingContext
    subtotal: str
    discount: str
    shipping_gross: str
    tax: str
    total_net: str
    total: str
    per_line: list[tuple[str, str, str, str, str]]
    voucher_code: str = ""
    voucher_problem: str = ""
    promotion_names: list[str] = field(default_factory=list)


EXAMPLES = [
    # -- gross prices (tax included), Germany ------------------------------------------------
    Example(
        "gross, one line at 19%: 119.00 holds 19.00 tax",
        [line("A", "119.00")],
        gross(),
        subtotal="119.00", discount="0.00", shipping_gross="0.00",
        tax="19.00", total_net="100.00", total="119.00",
        per_line=[("0.00", "0.00", "100.00", "19.00", "119.00")],
    ),
    Example(
        "gross, several lines: tax rounded per line (9.575 -> 9.58, 1.596 -> 1.60)",
        [line("A", "19.99", 3), line("B", "5.00", 2)],
        gross(),
        subtotal="69.97", discount="0.00", shipping_gross="0.00",
        tax="11.18", total_net="58.79", total="69.97",
        per_line=[
            ("0.00", "0.00", "50.39", "9.58", "59.97"),
            ("0.00", "0.00", "8.40", "1.60", "10.00"),
        ],
    ),
    Example(
        "gross, a 7% reduced line beside a 19% one",
        [line("A", "119.00"), line("BOOK", "10.70", rate="7")],
        gross(),
        subtotal="129.70", discount="0.00", shipping_gross="0.00",
        tax="19.70", total_net="110.00", total="129.70",
        per_line=[
            ("0.00", "0.00", "100.00", "19.00", "119.00"),
            ("0.00", "0.00", "10.00", "0.70", "10.70"),
        ],
    ),
    # -- net prices (tax added on top): the same carts -----------------------------------------
    Example(
        "net, one line at 19%: 119.00 plus 22.61 tax",
        [line("A", "119.00")],
        net(),
        subtotal="119.00", discount="0.00", shipping_gross="0.00",
        tax="22.61", total_net="119.00", total="141.61",
        per_line=[("0.00", "0.00", "119.00", "22.61", "141.61")],
    ),
    Example(
        "net, several lines (11.3943 -> 11.39)",
        [line("A", "19.99", 3), line("B", "5.00", 2)],
        net(),
        subtotal="69.97", discount="0.00", shipping_gross="0.00",
        tax="13.29", total_net="69.97", total="83.26",
        per_line=[
            ("0.00", "0.00", "59.97", "11.39", "71.36"),
            ("0.00", "0.00", "10.00", "1.90", "11.90"),
        ],
    ),
    Example(
        "net, a 7% reduced line (0.749 -> 0.75)",
        [line("A", "119.00"), line("BOOK", "10.70", rate="7")],
        net(),
        subtotal="129.70", discount="0.00", shipping_gross="0.00",
        tax="23.36", total_net="129.70", total="153.06",
        per_line=[
            ("0.00", "0.00", "119.00", "22.61", "141.61"),
            ("0.00", "0.00", "10.70", "0.75", "11.45"),
        ],
    ),
    # -- a zero-decimal currency -----------------------------------------------------------------
    Example(
        "JPY gross at 10%: 1234 holds 112.18 -> 112 tax",
        [line("A", "1234", rate="10")],
        gross(currency="JPY"),
        subtotal="1234", discount="0", shipping_gross="0",
        tax="112", total_net="1122", total="1234",
        per_line=[("0", "0", "1122", "112", "1234")],
    ),
    Example(
        "JPY net at 10%: 123.5 rounds half up to 124 on each line (248, not 247 on the sum)",
        [line("A", "1235", rate="10"), line("B", "1235", rate="10")],
        net(currency="JPY"),
        subtotal="2470", discount="0", shipping_gross="0",
        tax="248", total_net="2470", total="2718",
        per_line=[("0", "0", "1235", "124", "1359"), ("0", "0", "1235", "124", "1359")],
    ),
    # -- vouchers --------------------------------------------------------------------------------
    Example(
        "10% voucher on a taxed line: 1.999 -> 2.00 off, tax on the 17.99 left",
        [line("A", "19.99")],
        gross(voucher=voucher("percentage", "10")),
        subtotal="19.99", discount="2.00", shipping_gross="0.00",
        tax="2.87", total_net="15.12", total="17.99",
        per_line=[("0.00", "2.00", "15.12", "2.87", "17.99")],
        voucher_code="SAVE",
    ),
    Example(
        "fixed 10.00 voucher over three equal lines: the odd cent goes to the first",
        [line("A", "10.00"), line("B", "10.00"), line("C", "10.00")],
        gross(voucher=voucher("fixed", "10.00")),
        subtotal="30.00", discount="10.00", shipping_gross="0.00",
        tax="3.18", total_net="16.82", total="20.00",
        per_line=[
            ("0.00", "3.34", "5.60", "1.06", "6.66"),
            ("0.00", "3.33", "5.61", "1.06", "6.67"),
            ("0.00", "3.33", "5.61", "1.06", "6.67"),
        ],
        voucher_code="SAVE",
    ),
    Example(
        "fixed 5.01 voucher split 1:3 (1.2525 / 3.7575): the cent goes to the larger remainder",
        [line("A", "10.00"), line("B", "30.00")],
        gross(voucher=voucher("fixed", "5.01")),
        subtotal="40.00", discount="5.01", shipping_gross="0.00",
        tax="5.59", total_net="29.40", total="34.99",
        per_line=[
            ("0.00", "1.25", "7.35", "1.40", "8.75"),
            ("0.00", "3.76", "22.05", "4.19", "26.24"),
        ],
        voucher_code="SAVE",
    ),
    Example(
        "fixed voucher larger than the cart: capped at what the lines cost",
        [line("A", "20.00")],
        gross(voucher=voucher("fixed", "50.00")),
        subtotal="20.00", discount="20.00", shipping_gross="0.00",
        tax="0.00", total_net="0.00", total="0.00",
        per_line=[("0.00", "20.00", "0.00", "0.00", "0.00")],
        voucher_code="SAVE",
    ),
    Example(
        "free-shipping voucher: the 5.95 shipping becomes 0",
        [line("A", "119.00")],
        gross(voucher=voucher("free_shipping", code="FREESHIP"), shipping=shipping("5.95")),
        subtotal="119.00", discount="5.95", shipping_gross="0.00",
        tax="19.00", total_net="100.00", total="119.00",
        per_line=[("0.00", "0.00", "100.00", "19.00", "119.00")],
        voucher_code="FREESHIP",
    ),
    Example(
        "voucher with a 150.00 minimum spend on a 119.00 cart does not apply",
        [line("A", "119.00")],
        gross(voucher=voucher("percentage", "10", min_spend="150.00")),
        subtotal="119.00", discount="0.00", shipping_gross="0.00",
        tax="19.00", total_net="100.00", total="119.00",
        per_line=[("0.00", "0.00", "100.00", "19.00", "119.00")],
        voucher_problem="min_spend",
    ),
    Example(
        "voucher for books only on a cart without books does not apply",
        [tee()],
        gross(voucher=voucher("percentage", "10", categories=(BOOKS,))),
        subtotal="19.90", discount="0.00", shipping_gross="0.00",
        tax="3.18", total_net="16.72", total="19.90",
        per_line=[("0.00", "0.00", "16.72", "3.18", "19.90")],
        voucher_problem="no_eligible_lines",
    ),
    Example(
        "voucher in another currency does not apply",
        [tee()],
        gross(voucher=voucher("fixed", "5.00", currency="USD")),
        subtotal="19.90", discount="0.00", shipping_gross="0.00",
        tax="3.18", total_net="16.72", total="19.90",
        per_line=[("0.00", "0.00", "16.72", "3.18", "19.90")],
        voucher_problem="currency",
    ),
    # -- promotions ------------------------------------------------------------------------------
    Example(
        "20% off Clothing reaches T-shirts (a subcategory), not the mug",
        [tee(2), mug()],
        gross(promotions=[promotion(1, "percentage", "20", name="Summer", categories=(CLOTHING,))]),
        subtotal="51.80", discount="7.96", shipping_gross="0.00",
        tax="7.00", total_net="36.84", total="43.84",
        per_line=[
            ("7.96", "0.00", "26.76", "5.08", "31.84"),
            ("0.00", "0.00", "10.08", "1.92", "12.00"),
        ],
        promotion_names=["Summer", ""],
    ),
    Example(
        "buy 3 pay 2 on 7 mugs: 2 free",
        [mug(7)],
        gross(promotions=[promotion(1, "buy_x_pay_y", buy=3, pay=2, name="3 for 2")]),
        subtotal="84.00", discount="24.00", shipping_gross="0.00",
        tax="9.58", total_net="50.42", total="60.00",
        per_line=[("24.00", "0.00", "50.42", "9.58", "60.00")],
        promotion_names=["3 for 2"],
    ),
    Example(
        "a fixed promotion takes at most the unit price; one in another currency is skipped",
        [mug(2)],
        gross(
            promotions=[
                promotion(1, "fixed", "15.00", name="Big"),
                promotion(2, "fixed", "50.00", name="Dollars", currency="USD"),
            ]
        ),
        subtotal="24.00", discount="24.00", shipping_gross="0.00",
        tax="0.00", total_net="0.00", total="0.00",
        per_line=[("24.00", "0.00", "0.00", "0.00", "0.00")],
        promotion_names=["Big"],
    ),
    Example(
        "promotion and voucher stack: 20% off 39.80, then 10% off the 31.84 left",
        [tee(2)],
        gross(
            promotions=[promotion(1, "percentage", "20", name="Summer", categories=(CLOTHING,))],
            voucher=voucher("percentage", "10"),
        ),
        subtotal="39.80", discount="11.14", shipping_gross="0.00",
        tax="4.58", total_net="24.08", total="28.66",
        per_line=[("7.96", "3.18", "24.08", "4.58", "28.66")],
        voucher_code="SAVE",
        promotion_names=["Summer"],
    ),
    Example(
        "the best promotion per line: 3 for 2 on three mugs, 10% on two",
        [mug(3), line("MUG2", "12.00", 2, product=21, categories=(KITCHEN,))],
        gross(
            promotions=[
                promotion(1, "percentage", "10", name="Ten", categories=(KITCHEN,)),
                promotion(2, "buy_x_pay_y", buy=3, pay=2, name="3 for 2"),
                promotion(3, "fixed", "1.00", name="One off"),
            ]
        ),
        subtotal="60.00", discount="14.40", shipping_gross="0.00",
        tax="7.28", total_net="38.32", total="45.60",
        per_line=[
            ("12.00", "0.00", "20.17", "3.83", "24.00"),
            ("2.40", "0.00", "18.15", "3.45", "21.60"),
        ],
        promotion_names=["3 for 2", "Ten"],
    ),
    Example(
        "two promotions give the same discount: the lower id wins",
        [mug()],
        gross(
            promotions=[
                promotion(5, "percentage", "10", name="Later"),
                promotion(4, "percentage", "10", name="Earlier"),
            ]
        ),
        subtotal="12.00", discount="1.20", shipping_gross="0.00",
        tax="1.72", total_net="9.08", total="10.80",
        per_line=[("1.20", "0.00", "9.08", "1.72", "10.80")],
        promotion_names=["Earlier"],
    ),
    # -- shipping --------------------------------------------------------------------------------
    Example(
        "shipping taxed, gross: 5.95 holds 0.95",
        [line("A", "119.00")],
        gross(shipping=shipping("5.95")),
        subtotal="119.00", discount="0.00", shipping_gross="5.95",
        tax="19.95", total_net="105.00", total="124.95",
        per_line=[("0.00", "0.00", "100.00", "19.00", "119.00")],
    ),
    Example(
        "shipping taxed, net: 4.90 plus 0.931 -> 0.93",
        [line("A", "100.00")],
        net(shipping=shipping("4.90")),
        subtotal="100.00", discount="0.00", shipping_gross="5.83",
        tax="19.93", total_net="104.90", total="124.83",
        per_line=[("0.00", "0.00", "100.00", "19.00", "119.00")],
    ),
    Example(
        "free over a threshold: the method's price is 0, no discount",
        [line("A", "119.00")],
        gross(shipping=shipping("0.00")),
        subtotal="119.00", discount="0.00", shipping_gross="0.00",
        tax="19.00", total_net="100.00", total="119.00",
        per_line=[("0.00", "0.00", "100.00", "19.00", "119.00")],
    ),
]  # fmt: skip


@pytest.mark.parametrize("example", EXAMPLES, ids=[example.name for example in EXAMPLES])
def test_worked_example(example: Example) -> None:
    # when
    result = price(example.lines, example.context)

    # then
    assert {
        "subtotal": result.subtotal,
        "discount": result.discount,
        "shipping_gross": result.shipping_gross,
        "tax": result.tax,
        "total_net": result.total_net,
        "total": result.total,
    } == {
        "subtotal": D(example.subtotal),
        "discount": D(example.discount),
        "shipping_gross": D(example.shipping_gross),
        "tax": D(example.tax),
        "total_net": D(example.total_net),
        "total": D(example.total),
    }
    assert [
        (p.promotion_discount, p.voucher_discount, p.net, p.tax, p.gross) for p in result.lines
    ] == [tuple(D(amount) for amount in amounts) for amounts in example.per_line]
    assert (result.voucher_code, result.voucher_problem) == (
        example.voucher_code,
        example.voucher_problem,
    )
    if example.promotion_names:
        assert [p.promotion_name for p in result.lines] == example.promotion_names
    assert_consistent(result)


def test_the_breakdown_echoes_the_cart_and_groups_tax_by_rate() -> None:
    # when
    result = price(
        [line("A", "119.00"), line("BOOK", "10.70", rate="7")],
        gross(shipping=shipping("5.95")),
    )

    # then
    assert (result.currency, result.prices_include_tax) == ("EUR", True)
    assert (result.shipping_method_id, result.shipping_name) == (7, "Parcel")
    assert (result.shipping_undiscounted, result.shipping_net, result.shipping_tax) == (
        D("5.95"),
        D("5.00"),
        D("0.95"),
    )
    assert [(p.key, p.quantity, p.unit_price, p.undiscounted) for p in result.lines] == [
        ("A", 1, D("119.00"), D("119.00")),
        ("BOOK", 1, D("10.70"), D("10.70")),
    ]
    assert result.tax_breakdown() == [
        {"rate": "19", "net": "105.00", "tax": "19.95"},
        {"rate": "7", "net": "10.00", "tax": "0.70"},
    ]


def test_free_shipping_adds_no_empty_tax_row_and_amounts_keep_the_currency_places() -> None:
    # when
    result = price([line("A", "1100", rate="10")], gross(currency="jpy", shipping=shipping("0")))

    # then
    assert result.currency == "JPY"
    assert result.tax_breakdown() == [{"rate": "10", "net": "1000", "tax": "100"}]
    assert (str(result.total), str(result.shipping_gross), str(result.discount)) == (
        "1100",
        "0",
        "0",
    )


def test_an_empty_cart_costs_its_shipping() -> None:
    result = price([], net(shipping=shipping("4.90")))

    assert (result.subtotal, result.tax, result.total) == (D("0.00"), D("0.93"), D("5.83"))
    assert result.lines == ()


@pytest.mark.parametrize(
    ("lines", "context", "message"),
    [
        ([line("A", "10.00", 0)], gross(), "quantity"),
        ([line("A", "10.00", -1)], gross(), "quantity"),
        ([LineInput("A", 1, 1, frozenset(), D("1"), True, D("19"))], gross(), "quantity"),  # type: ignore[arg-type]
        ([line("A", "-1.00")], gross(), "unit price"),
        ([line("A", "12.50")], gross(currency="JPY"), "not exact"),
        ([line("A", "10.001")], gross(), "not exact"),
        ([line("A", "10.00", rate="101")], gross(), "tax rate"),
        ([line("A", "10.00", rate="-1")], gross(), "tax rate"),
        ([line("A", "10.00")], gross(currency="BHD"), "three decimal places"),
        ([line("A", "10.00")], gross(currency="EURO"), "ISO 4217"),
        ([line("A", "10.00")], gross(shipping=shipping("4.999")), "Shipping price"),
        ([line("A", "10.00")], gross(shipping=shipping("4.90", rate="120")), "Shipping tax"),
        ([line("A", "10.00")], gross(promotions=[promotion(1, "percentage", "120")]), "percentage"),
        ([line("A", "10.00")], gross(promotions=[promotion(1, "bogus")]), "unknown kind"),
        ([line("A", "10.00")], gross(promotions=[promotion(1, "buy_x_pay_y", buy=0)]), "buy 0"),
        (
            [line("A", "10.00")],
            gross(promotions=[promotion(1, "buy_x_pay_y", buy=2, pay=3)]),
            "pay 3",
        ),
        ([line("A", "10.00")], gross(voucher=voucher("percentage", "101")), "percentage"),
        ([line("A", "10.00")], gross(voucher=voucher("fixed", "-5")), "amount off"),
        ([line("A", "10.00")], gross(voucher=voucher("gift", "5")), "unknown kind"),
    ],
)  # fmt: skip
def test_inputs_no_caller_should_send_are_refused(
    lines: list[LineInput], context: PricingContext, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        price(lines, context)


# -- invariants over generated carts ---------------------------------------------------------------

RATES = [D("0"), D("5.5"), D("7"), D("10"), D("19"), D("20"), D("25")]


@st.composite
def carts(
    draw: st.DrawFn, voucher_kinds: tuple[str, ...] = ("percentage", "fixed", "free_shipping")
) -> tuple[list[LineInput], PricingContext]:
    """A cart of up to six lines in EUR or JPY, with or without promotions, a voucher of
    one of `voucher_kinds` (most of the time) and shipping."""
    currency = draw(st.sampled_from(["EUR", "JPY"]))
    unit = D(1).scaleb(-minor_unit(currency))
    money = st.integers(min_value=0, max_value=200_000).map(lambda n: n * unit)
    ids = st.frozensets(st.integers(min_value=1, max_value=4), max_size=2)
    lines = draw(
        st.lists(
            st.builds(
                LineInput,
                key=st.text("ABCDEF", min_size=1, max_size=4),
                variant_id=st.integers(1, 50),
                product_id=st.integers(1, 5),
                category_ids=ids,
                unit_price=money,
                quantity=st.integers(1, 25),
                tax_rate=st.sampled_from(RATES),
            ),
            max_size=6,
        )
    )
    promotions = draw(
        st.lists(
            st.one_of(
                st.builds(
                    promotion,
                    id=st.integers(1, 9),
                    kind=st.just("percentage"),
                    value=st.integers(0, 100).map(str),
                    products=st.tuples(st.integers(1, 5)) | st.just(()),
                    categories=ids.map(tuple),
                ),
                st.builds(
                    promotion,
                    id=st.integers(1, 9),
                    kind=st.just("fixed"),
                    value=money.map(str),
                    currency=st.sampled_from([currency, "USD"]),
                    categories=ids.map(tuple),
                ),
                st.integers(1, 5).flatmap(
                    lambda buy: st.builds(
                        promotion,
                        id=st.integers(1, 9),
                        kind=st.just("buy_x_pay_y"),
                        buy=st.just(buy),
                        pay=st.integers(0, buy),
                    )
                ),
            ),
            max_size=3,
        )
    )
    vouchers = st.builds(
        voucher,
        kind=st.sampled_from(voucher_kinds),
        value=st.integers(0, 100).map(str) | money.map(str),
        currency=st.sampled_from([currency, currency, currency, "USD"]),
        min_spend=st.none() | st.none() | money.map(str),
        products=st.tuples(st.integers(1, 5)) | st.just(()),
        categories=ids.map(tuple),
    ).filter(lambda v: v.kind != "percentage" or v.value <= 100)
    terms = draw(vouchers | st.none())
    method = draw(
        st.none()
        | st.builds(ShippingInput, st.just(1), st.just("Parcel"), money, st.sampled_from(RATES))
    )
    context = PricingContext(
        currency=currency,
        prices_include_tax=draw(st.booleans()),
        promotions=promotions,
        voucher=terms,
        shipping=method,
    )
    return lines, context


def assert_consistent(result: Breakdown) -> None:
    """What every breakdown must satisfy, whatever the cart."""
    places = minor_unit(result.currency)
    assert result.total == sum(p.gross for p in result.lines) + result.shipping_gross
    assert result.tax == sum(p.tax for p in result.lines) + result.shipping_tax
    assert result.total_net == sum(p.net for p in result.lines) + result.shipping_net
    assert result.total - result.total_net == result.tax
    assert result.subtotal == sum(p.undiscounted for p in result.lines)
    assert result.discount <= result.subtotal + result.shipping_undiscounted
    assert sum(D(row["tax"]) for row in result.tax_breakdown()) == result.tax
    amounts = [
        result.subtotal,
        result.discount,
        result.shipping_undiscounted,
        result.shipping_net,
        result.shipping_tax,
        result.shipping_gross,
        result.tax,
        result.total_net,
        result.total,
    ]
    for p in result.lines:
        assert p.undiscounted == p.unit_price * p.quantity
        assert p.promotion_discount + p.voucher_discount <= p.undiscounted
        assert p.net + p.tax == p.gross
        amounts += [p.undiscounted, p.promotion_discount, p.voucher_discount, p.net, p.tax, p.gross]
    for amount in amounts:
        assert amount >= 0, amounts
        assert amount.as_tuple().exponent == -places, amount


@settings(max_examples=400, deadline=None)
@given(carts())
def test_every_breakdown_adds_up_exactly(cart: tuple[list[LineInput], PricingContext]) -> None:
    lines, context = cart

    result = price(lines, context)

    assert_consistent(result)
    free_shipping = bool(
        result.voucher_code and context.voucher and context.voucher.kind == "free_shipping"
    )
    line_discounts = sum(p.promotion_discount + p.voucher_discount for p in result.lines)
    assert result.discount == line_discounts + (
        result.shipping_undiscounted if free_shipping else 0
    )


@settings(max_examples=200, deadline=None)
@given(carts(voucher_kinds=("fixed",)))
def test_a_fixed_voucher_takes_exactly_its_value_or_everything_eligible(
    cart: tuple[list[LineInput], PricingContext],
) -> None:
    lines, context = cart
    assume(context.voucher is not None)
    assert context.voucher is not None
    without = price(lines, replace(context, voucher=None))

    result = price(lines, context)

    if result.voucher_code:
        taken = sum(p.voucher_discount for p in result.lines)
        eligible = sum(
            p.gross if context.prices_include_tax else p.net
            for p, given_line in zip(without.lines, lines, strict=True)
            if (not context.voucher.product_ids and not context.voucher.category_ids)
            or given_line.product_id in context.voucher.product_ids
            or given_line.category_ids & context.voucher.category_ids
        )
        assert taken == min(context.voucher.value, eligible)
