"""Reads of pricing: the tax setting (cached), rates, promotions and vouchers as the
calculator's terms, and `price_items`, which gathers them and prices a list of variants.

Nothing here writes; claiming and releasing a voucher use are in apps.pricing.services.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol, cast

from django.db import connection
from django.db.models import Q, QuerySet
from django.utils import timezone

from apps.catalog.models import Category, ProductVariant
from apps.pricing import cache
from apps.pricing.calculator import (
    Breakdown,
    LineInput,
    PricingContext,
    PromotionTerms,
    ShippingInput,
    VoucherTerms,
    price,
)
from apps.pricing.exceptions import (
    VoucherExhausted,
    VoucherNotActive,
    VoucherNotFound,
    VoucherPerCustomerLimitReached,
)
from apps.pricing.models import (
    STANDARD_TAX_CLASS,
    Promotion,
    TaxRate,
    TaxSettings,
    Voucher,
    VoucherUse,
)
from ecommerce import caching
from ecommerce.db import prepared
from ecommerce.db.joined import Joined
from ecommerce.money import ZERO

if TYPE_CHECKING:
    from apps.users.models import User


@dataclass(frozen=True)
class TaxSettingsData:
    prices_include_tax: bool
    shipping_tax_class: str  # a tax class slug


class ShippingChoice(Protocol):
    """What pricing needs of a shipping quote (apps.shipping's ShippingQuote has it)."""

    @property
    def method_id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def price(self) -> Decimal: ...


DEFAULT_TAX_SETTINGS = TaxSettingsData(
    prices_include_tax=True, shipping_tax_class=STANDARD_TAX_CLASS
)


def tax_settings() -> TaxSettingsData:
    """The store's tax setting; the defaults (gross prices, standard class for shipping)
    until staff save one. Cached; read from the database when the cache is down."""

    def compute() -> bytes:
        row = (
            TaxSettings.objects.select_related("shipping_tax_class")
            .filter(pk=TaxSettings.SINGLETON_PK)
            .first()
        )
        data = DEFAULT_TAX_SETTINGS
        if row is not None:
            data = TaxSettingsData(
                prices_include_tax=row.prices_include_tax,
                shipping_tax_class=(
                    row.shipping_tax_class.slug if row.shipping_tax_class else STANDARD_TAX_CLASS
                ),
            )
        return json.dumps(
            {
                "prices_include_tax": data.prices_include_tax,
                "shipping_tax_class": data.shipping_tax_class,
            }
        ).encode()

    raw = caching.read_through(
        name=cache.TAX_SETTINGS,
        key=cache.TAX_SETTINGS_KEY,
        generation_key=cache.TAX_SETTINGS_GENERATION_KEY,
        compute=compute,
        ttl_seconds=cache.TAX_SETTINGS_TTL_SECONDS,
    )
    if raw is None:  # compute never returns None; a stray ABSENT entry reads as defaults
        return DEFAULT_TAX_SETTINGS
    data = json.loads(raw)
    return TaxSettingsData(
        prices_include_tax=bool(data["prices_include_tax"]),
        shipping_tax_class=str(data["shipping_tax_class"]),
    )


# `tax_rates` on PostgreSQL.
TAX_RATES_SQL = """
SELECT c.slug, r.rate FROM pricing_taxrate r JOIN pricing_taxclass c ON c.id = r.tax_class_id
WHERE r.country = %s
"""


def tax_rates(country: str) -> dict[str, Decimal]:
    """Tax class slug -> percent in `country`. A class without a rate there is not in the
    dict: it is taxed at 0 (look it up with `.get(slug, ZERO)`)."""
    country = country.strip().upper()
    if connection.vendor == "postgresql":
        # Read for every order and priced cart: written out, it costs a fifth of the CPU.
        with connection.cursor() as cursor:
            prepared.execute(cursor, (TAX_RATES_SQL, [country]))
            return dict(cursor.fetchall())
    return dict(TaxRate.objects.filter(country=country).values_list("tax_class__slug", "rate"))


def running(now: datetime) -> Q:
    """Rows whose validity window covers `now` (an open end never closes)."""
    return (Q(starts_at__isnull=True) | Q(starts_at__lte=now)) & (
        Q(ends_at__isnull=True) | Q(ends_at__gt=now)
    )


def _targets(through: Any, owner_field: str, target_field: str, owner_ids: Iterable[int]) -> dict:
    """owner id -> frozenset of target ids, read from an M2M's through table in one query."""
    found: dict[int, set[int]] = {}
    rows = through.objects.filter(**{f"{owner_field}__in": list(owner_ids)}).values_list(
        owner_field, target_field
    )
    for owner_id, target_id in rows:
        found.setdefault(owner_id, set()).add(target_id)
    return {owner_id: frozenset(ids) for owner_id, ids in found.items()}


# `active_promotions` on PostgreSQL (the ORM's version is its SQLite branch).
RUNNING_PROMOTIONS_SQL = """
SELECT p.id, p.name, p.kind, p.value, p.currency, p.buy_quantity, p.pay_quantity,
       ARRAY(SELECT product_id FROM pricing_promotion_products WHERE promotion_id = p.id),
       ARRAY(SELECT category_id FROM pricing_promotion_categories WHERE promotion_id = p.id)
FROM pricing_promotion p
WHERE p.is_active
  AND (p.starts_at IS NULL OR p.starts_at <= %(now)s)
  AND (p.ends_at IS NULL OR p.ends_at > %(now)s)
  AND (p.kind <> 'fixed' OR p.currency = %(currency)s)
ORDER BY p.id
"""


def active_promotions(*, currency: str, now: datetime | None = None) -> list[PromotionTerms]:
    """The promotions running at `now` that can apply in `currency` (a fixed amount off
    only in its own currency), as the calculator's terms; one query whatever the count
    (three on SQLite)."""
    now = now or timezone.now()
    currency = currency.upper()
    # Rows in PromotionTerms' field order: its scalars, then product and category ids.
    rows: list[tuple[Any, ...]]
    if connection.vendor == "postgresql":
        # Every order and every priced cart reads this: one statement written out, with
        # each promotion's targets as arrays beside it. Built by the ORM, the same query
        # cost 2.5 ms of CPU to compile (about a sixth of an order), this one 0.1 ms.
        with connection.cursor() as cursor:
            prepared.execute(cursor, (RUNNING_PROMOTIONS_SQL, {"now": now, "currency": currency}))
            rows = cursor.fetchall()
    else:
        scalars = list(
            Promotion.objects.filter(is_active=True)
            .filter(running(now))
            .filter(~Q(kind=Promotion.Kind.FIXED) | Q(currency=currency))
            .order_by("pk")
            .values_list("pk", "name", "kind", "value", "currency", "buy_quantity", "pay_quantity")
        )
        ids = [row[0] for row in scalars]
        products = _targets(Promotion.products.through, "promotion_id", "product_id", ids)
        categories = _targets(Promotion.categories.through, "promotion_id", "category_id", ids)
        rows = [(*row, products.get(row[0], ()), categories.get(row[0], ())) for row in scalars]
    return [
        PromotionTerms(*row[:7], product_ids=frozenset(row[7]), category_ids=frozenset(row[8]))
        for row in rows
    ]


def normalize_code(code: str) -> str:
    """A voucher code as stored: trimmed, in capitals."""
    return code.strip().upper()


def usable_voucher(code: str, *, now: datetime | None = None) -> Voucher:
    """The voucher `code` (any letter case) if a customer may use it at `now`.

    Raises VoucherNotFound, VoucherNotActive (switched off, not started, ended) or
    VoucherExhausted (its usage limit reached).
    """
    now = now or timezone.now()
    code = normalize_code(code)
    voucher = _voucher_by_code(code) if code else None
    if voucher is None:
        raise VoucherNotFound(code=code)
    refuse_unusable(voucher, now=now)
    return voucher


# The voucher reads of every priced cart and checkout with a code, on PostgreSQL: written
# out once, where the ORM compiled each statement again on every call (ecommerce/db/joined.py).
# A voucher row under alias `v`, as the reads here and the claim's UPDATE ... RETURNING
# (apps.pricing.services) select it.
VOUCHER_ROW = Joined(Voucher, "v")
_VOUCHER_SQL = f"SELECT {VOUCHER_ROW.columns()} FROM pricing_voucher v WHERE v.code = %s"  # noqa: S608
_VOUCHER_TARGETS_SQL = """
SELECT ARRAY(SELECT product_id FROM pricing_voucher_products WHERE voucher_id = %(id)s),
       ARRAY(SELECT category_id FROM pricing_voucher_categories WHERE voucher_id = %(id)s)
"""
_OPEN_USES_SQL = """
SELECT count(*) FROM pricing_voucheruse
WHERE voucher_id = %s AND user_id = %s AND released_at IS NULL
"""


def _voucher_by_code(code: str) -> Voucher | None:
    """The voucher stored under `code` (normalized), or None; codes are unique."""
    if connection.vendor != "postgresql":
        return Voucher.objects.filter(code=code).first()
    with connection.cursor() as cursor:
        prepared.execute(cursor, (_VOUCHER_SQL, [code]))
        row = cursor.fetchone()
    return None if row is None else cast(Voucher, VOUCHER_ROW.instance(row, 0))


def refuse_unusable(voucher: Voucher, *, now: datetime) -> None:
    """Raise why `voucher` cannot be used at `now`, if it cannot."""
    if not voucher.is_active:
        raise VoucherNotActive(code=voucher.code, reason=VoucherNotActive.INACTIVE)
    if voucher.starts_at is not None and voucher.starts_at > now:
        raise VoucherNotActive(code=voucher.code, reason=VoucherNotActive.NOT_STARTED)
    if voucher.ends_at is not None and voucher.ends_at <= now:
        raise VoucherNotActive(code=voucher.code, reason=VoucherNotActive.ENDED)
    if voucher.usage_limit is not None and voucher.used_count >= voucher.usage_limit:
        raise VoucherExhausted(code=voucher.code)


def terms_of(voucher: Voucher) -> VoucherTerms:
    """The calculator's terms of `voucher`, with the products and categories it is
    limited to (one query)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            prepared.execute(cursor, (_VOUCHER_TARGETS_SQL, {"id": voucher.pk}))
            product_ids, category_ids = cursor.fetchone()
    else:
        products = _targets(Voucher.products.through, "voucher_id", "product_id", [voucher.pk])
        categories = _targets(Voucher.categories.through, "voucher_id", "category_id", [voucher.pk])
        product_ids = products.get(voucher.pk, ())
        category_ids = categories.get(voucher.pk, ())
    return VoucherTerms(
        code=voucher.code,
        kind=voucher.kind,
        value=voucher.value,
        currency=voucher.currency,
        min_spend=voucher.min_spend,
        product_ids=frozenset(product_ids),
        category_ids=frozenset(category_ids),
    )


def voucher_terms(code: str, *, now: datetime | None = None) -> VoucherTerms:
    """The terms of voucher `code` (any letter case) if it can be used at `now`.

    Raises VoucherNotFound, VoucherNotActive or VoucherExhausted.
    """
    return terms_of(usable_voucher(code, now=now))


def open_uses(*, voucher: Voucher, user: User) -> int:
    """How many unreleased uses of `voucher` `user` has."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            prepared.execute(cursor, (_OPEN_USES_SQL, [voucher.pk, user.pk]))
            return int(cursor.fetchone()[0])
    return VoucherUse.objects.filter(voucher=voucher, user=user, released_at__isnull=True).count()


def refuse_over_customer_limit(voucher: Voucher, *, user: User | None) -> None:
    """Raise VoucherPerCustomerLimitReached when `user` has used up their share of
    `voucher`. Anonymous buyers have no account to count against."""
    limit = voucher.per_customer_limit
    if (
        limit is not None
        and user is not None
        and user.is_authenticated
        and open_uses(voucher=voucher, user=user) >= limit
    ):
        raise VoucherPerCustomerLimitReached(code=voucher.code, limit=limit)


def category_ancestors(category_ids: Iterable[int]) -> dict[int, frozenset[int]]:
    """category id -> the ids of it and all its ancestors, for every id given, in one query.

    Categories form a tree through `parent`; a recursive query climbs it for all the ids
    at once (UNION, not UNION ALL, so even a cycle the services refuse could not loop).
    """
    ids = sorted(set(category_ids))
    if not ids:
        return {}
    table = connection.ops.quote_name(Category._meta.db_table)
    placeholders = ", ".join(["%s"] * len(ids))
    sql = f"""
        WITH RECURSIVE chain(start_id, id, parent_id) AS (
            SELECT id, id, parent_id FROM {table} WHERE id IN ({placeholders})
            UNION
            SELECT chain.start_id, c.id, c.parent_id
            FROM {table} c JOIN chain ON c.id = chain.parent_id
        )
        SELECT start_id, id FROM chain
    """  # noqa: S608 - the table name is ours; the ids are parameters
    found: dict[int, set[int]] = {pk: set() for pk in ids}
    with connection.cursor() as cursor:
        prepared.execute(cursor, (sql, ids))
        for start_id, ancestor_id in cursor.fetchall():
            found[start_id].add(ancestor_id)
    return {pk: frozenset(chain) for pk, chain in found.items()}


def _line_inputs(
    items: Sequence[tuple[ProductVariant, int]], rates: dict[str, Decimal]
) -> list[LineInput]:
    products = [variant.product for variant, _ in items]
    ancestors = category_ancestors(
        product.category_id for product in products if product.category_id is not None
    )
    lines = []
    for (variant, quantity), product in zip(items, products, strict=True):
        product_type = product.product_type
        tax_class = getattr(product_type, "tax_class", "") or STANDARD_TAX_CLASS
        lines.append(
            LineInput(
                key=variant.sku,
                variant_id=variant.pk,
                product_id=product.pk,
                category_ids=(
                    ancestors.get(product.category_id, frozenset())
                    if product.category_id is not None
                    else frozenset()
                ),
                unit_price=variant.price,
                quantity=quantity,
                tax_rate=rates.get(tax_class, ZERO),
            )
        )
    return lines


def line_inputs(items: Sequence[tuple[ProductVariant, int]], *, country: str) -> list[LineInput]:
    """The calculator's lines for (variant, quantity) pairs shipped to `country`.

    Give variants with `product` and `product__product_type` loaded (select_related), or
    each costs a query; the categories' ancestors take one query for all lines, the rates
    one more. A product without a type is in the standard tax class; a class without a
    rate in `country` is taxed at 0.
    """
    return _line_inputs(items, tax_rates(country))


def variants_for_pricing() -> QuerySet[ProductVariant]:
    """Variants with what `line_inputs` reads loaded."""
    return ProductVariant.objects.select_related("product", "product__product_type")


def price_items(
    items: Sequence[tuple[ProductVariant, int]],
    *,
    currency: str,
    country: str,
    voucher_code: str = "",
    shipping: ShippingChoice | None = None,
    user: User | None = None,
    now: datetime | None = None,
) -> Breakdown:
    """Price (variant, quantity) pairs in `currency` for delivery to `country`.

    Reads the tax setting, the destination's rates, the running promotions and the voucher
    (`voucher_code`, any letter case; "" for none), and prices with the shipping quote's
    price taxed at the shipping tax class's rate. A voucher that exists and is usable but
    does not fit the cart (currency, minimum spend, no eligible line) is reported in
    `Breakdown.voucher_problem`, not raised.

    Raises VoucherNotFound, VoucherNotActive, VoucherExhausted, and
    VoucherPerCustomerLimitReached when `user` has used it up already.
    """
    now = now or timezone.now()
    setting = tax_settings()
    rates = tax_rates(country)
    voucher = None
    if normalize_code(voucher_code):
        usable = usable_voucher(voucher_code, now=now)
        refuse_over_customer_limit(usable, user=user)
        voucher = terms_of(usable)
    shipping_input = None
    if shipping is not None:
        shipping_input = ShippingInput(
            method_id=shipping.method_id,
            name=shipping.name,
            price=shipping.price,
            tax_rate=rates.get(setting.shipping_tax_class, ZERO),
        )
    return price(
        _line_inputs(items, rates),
        PricingContext(
            currency=currency.upper(),
            prices_include_tax=setting.prices_include_tax,
            promotions=active_promotions(currency=currency, now=now),
            voucher=voucher,
            shipping=shipping_input,
        ),
    )


# --- Staff reads (the API) ------------------------------------------------------------------


def list_vouchers(*, is_active: bool | None = None, search: str = "") -> QuerySet[Voucher]:
    """Vouchers by code, with their products and categories prefetched."""
    vouchers = Voucher.objects.prefetch_related("products", "categories").order_by("code")
    if is_active is not None:
        vouchers = vouchers.filter(is_active=is_active)
    if search.strip():
        vouchers = vouchers.filter(code__contains=normalize_code(search))
    return vouchers


def get_voucher(*, code: str) -> Voucher:
    """The voucher `code` (any letter case), usable or not. Raises VoucherNotFound."""
    voucher = list_vouchers().filter(code=normalize_code(code)).first()
    if voucher is None:
        raise VoucherNotFound(code=normalize_code(code))
    return voucher


def uses_of(*, code: str) -> QuerySet[VoucherUse]:
    """The uses of voucher `code`, newest first. Raises VoucherNotFound."""
    return VoucherUse.objects.filter(voucher=get_voucher(code=code)).order_by("-created_at", "-pk")


def list_tax_rates(*, country: str = "") -> QuerySet[TaxRate]:
    rates = TaxRate.objects.select_related("tax_class").order_by("country", "tax_class__slug")
    return rates.filter(country=country.upper()) if country else rates


def list_promotions() -> QuerySet[Promotion]:
    return Promotion.objects.prefetch_related("products", "categories").order_by("name", "pk")
