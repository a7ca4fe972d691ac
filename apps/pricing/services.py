"""Writes of pricing: a voucher use claimed with an order and given back when it is released.

The usage limit is held by the database, not by a read-then-write: one conditional UPDATE
adds the use only while uses are left, so 200 buyers racing for the last 10 uses get
exactly 10, whatever the interleaving (PostgreSQL re-checks the WHERE clause on the row
version a blocked UPDATE finally sees). The row lock that UPDATE takes is held until the
caller's transaction ends, which serializes the per-customer count as well.

The reads that price a cart (`price_items`, `voucher_terms`, ...) live in
apps.pricing.selectors and are re-exported here for callers that import one module.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, cast

from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.pricing import selectors
from apps.pricing.exceptions import VoucherAlreadyClaimed, VoucherExhausted, VoucherNotFound
from apps.pricing.models import Voucher, VoucherUse
from apps.pricing.selectors import (  # noqa: F401 - re-exported
    active_promotions,
    line_inputs,
    price_items,
    tax_rates,
    tax_settings,
    voucher_terms,
)
from ecommerce.db import prepared
from ecommerce.db.inserts import Insert
from ecommerce.observability.logging import get_logger

if TYPE_CHECKING:
    from apps.users.models import User

logger = get_logger(__name__)

RELEASE_REASON_MAX_LENGTH = VoucherUse._meta.get_field("release_reason").max_length or 40


def claim_voucher(*, code: str, reference: str, user: User | None) -> VoucherUse:
    """Record one use of voucher `code` for `reference` ("order:<public id>").

    Call it inside the transaction that creates what uses the voucher (the order): the use
    commits with it or not at all, and the voucher row stays locked until then. Nothing
    changes when it raises.

    Raises VoucherNotFound, VoucherNotActive, VoucherExhausted (no use left),
    VoucherPerCustomerLimitReached (`user` has as many unreleased uses as allowed) and
    VoucherAlreadyClaimed (`reference` holds a use already).
    """
    now = timezone.now()
    code = selectors.normalize_code(code)
    if not code:
        raise VoucherNotFound(code=code)
    written_once = connection.vendor == "postgresql"
    with transaction.atomic():
        # Our UPDATE holds the row lock until the caller commits: a concurrent claim for
        # the same customer waits there, and reads the row as we left it.
        voucher = _claim_use_of(code, now) if written_once else _claim_use_of_orm(code, now)
        if voucher is None:
            # Say why: each check below fails for the voucher the UPDATE skipped.
            selectors.usable_voucher(code, now=now)
            # Usable again by now: a use was released after our UPDATE found none left.
            raise VoucherExhausted(code=code)
        selectors.refuse_over_customer_limit(voucher, user=user)
        use = VoucherUse(
            voucher=voucher,
            reference=reference,
            user=user if user is not None and user.is_authenticated else None,
            created_at=now,
        )
        if written_once:
            sql, params = _USE_INSERT.statement([use])
            with connection.cursor() as cursor:
                prepared.execute(cursor, (sql + _USE_CLAIMED_ONCE, params))
                row = cursor.fetchone()
            if row is None:
                raise VoucherAlreadyClaimed(reference=reference)
            use.pk = row[0]
        else:
            try:
                with transaction.atomic():
                    use.save(force_insert=True)
            except IntegrityError:
                raise VoucherAlreadyClaimed(reference=reference) from None
    logger.info("voucher_claimed", voucher=code, reference=reference, used=voucher.used_count)
    return use


# The claim on PostgreSQL, written out once (every checkout with a voucher makes it): the
# conditional UPDATE returns the row it changed, and the use's INSERT says whether the
# reference held one already, without a savepoint.
_CLAIM_SQL = f"""
UPDATE pricing_voucher v SET used_count = v.used_count + 1
WHERE v.code = %(code)s AND v.is_active
  AND (v.starts_at IS NULL OR v.starts_at <= %(now)s) AND (v.ends_at IS NULL OR v.ends_at > %(now)s)
  AND (v.usage_limit IS NULL OR v.used_count < v.usage_limit)
RETURNING {selectors.VOUCHER_ROW.columns()}
"""  # noqa: S608 (the select list comes from the model's fields)
_USE_INSERT = Insert(VoucherUse)
_USE_CLAIMED_ONCE = " ON CONFLICT (reference) DO NOTHING RETURNING id"


def _claim_use_of(code: str, now: datetime) -> Voucher | None:
    """Add one use to voucher `code` if it is usable at `now` and uses are left: the
    voucher as updated (its row locked), or None with nothing changed."""
    with connection.cursor() as cursor:
        prepared.execute(cursor, (_CLAIM_SQL, {"code": code, "now": now}))
        row = cursor.fetchone()
    return None if row is None else cast(Voucher, selectors.VOUCHER_ROW.instance(row, 0))


def _claim_use_of_orm(code: str, now: datetime) -> Voucher | None:
    claimed = (
        Voucher.objects.filter(code=code, is_active=True)
        .filter(selectors.running(now))
        .filter(Q(usage_limit__isnull=True) | Q(used_count__lt=F("usage_limit")))
        .update(used_count=F("used_count") + 1)
    )
    return Voucher.objects.get(code=code) if claimed else None


def release_voucher_use(*, reference: str, reason: str) -> bool:
    """Give the voucher use of `reference` back: True the first time, False every later
    time and when `reference` never held a use.

    Safe to call twice and concurrently: the use's row is marked released by one
    conditional UPDATE, and only the caller whose UPDATE marked it takes one off the
    voucher's used_count.
    """
    now = timezone.now()
    with transaction.atomic():
        released = VoucherUse.objects.filter(reference=reference, released_at__isnull=True).update(
            released_at=now, release_reason=reason[:RELEASE_REASON_MAX_LENGTH]
        )
        if not released:
            return False
        # The row lock taken above is ours until commit: nobody else can release it.
        voucher_id = VoucherUse.objects.filter(reference=reference).values_list(
            "voucher_id", flat=True
        )[0]
        Voucher.objects.filter(pk=voucher_id).update(used_count=F("used_count") - 1)
    logger.info("voucher_use_released", reference=reference, reason=reason)
    return True
