"""Money: `Decimal` amounts rounded to their currency's minor unit.

Every amount the shop stores or shows is exact to its currency's places: two for most
currencies, none for the zero-decimal ones (JPY, KRW, ...). Amounts are columns with two
places, so a yen price is stored as `1200.00` and shown as `"1200"`. Currencies with three
places (BHD, KWD, ...) cannot be stored exactly and are refused where a price is entered.

One rounding rule everywhere: half up (away from zero on a tie), to the minor unit, applied
per line and per amount as computed, never to a sum of unrounded parts (see
docs/pricing.md for the pricing rules that build on it).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

# ISO 4217 currencies without a minor unit (what payment providers charge in whole units).
ZERO_DECIMAL_CURRENCIES = frozenset(
    {"BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "MGA"}
    | {"PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"}
)
# ISO 4217 currencies with three places: not storable in a two-place column.
THREE_DECIMAL_CURRENCIES = frozenset({"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"})

ZERO = Decimal("0")


def minor_unit(currency: str) -> int:
    """How many decimal places amounts in `currency` have: 0 or 2."""
    return 0 if currency.upper() in ZERO_DECIMAL_CURRENCIES else 2


def quantum(currency: str) -> Decimal:
    """The smallest amount of `currency`: Decimal("1") or Decimal("0.01")."""
    return Decimal(1).scaleb(-minor_unit(currency))


def round_money(amount: Decimal, currency: str) -> Decimal:
    """`amount` rounded half up to the minor unit of `currency`."""
    return amount.quantize(quantum(currency), rounding=ROUND_HALF_UP)


def is_exact(amount: Decimal, currency: str) -> bool:
    """Whether `amount` has no more places than `currency` allows (1200.00 JPY is exact)."""
    return amount.is_finite() and round_money(amount, currency) == amount


def format_amount(amount: Decimal, currency: str) -> str:
    """The decimal string of `amount` with exactly the places of `currency`: "1200", "9.90"."""
    return format(round_money(amount, currency), "f")


def amount_error(amount: Decimal, currency: str) -> str | None:
    """Why `amount` cannot be a price in `currency`, or None when it can."""
    code = currency.upper()
    if code in THREE_DECIMAL_CURRENCIES:
        return f"{code} has three decimal places, which prices cannot hold."
    if not is_exact(amount, code):
        places = minor_unit(code)
        return (
            f"{code} amounts have no decimal places."
            if places == 0
            else f"{code} amounts have at most {places} decimal places."
        )
    return None
