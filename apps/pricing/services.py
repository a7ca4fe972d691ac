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

from typing import TYPE_CHECKING

from django.db import IntegrityError, transaction
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
    with transaction.atomic():
        claimed = (
            Voucher.objects.filter(code=code, is_active=True)
            .filter(selectors.running(now))
            .filter(Q(usage_limit__isnull=True) | Q(used_count__lt=F("usage_limit")))
            .update(used_count=F("used_count") + 1)
        )
        if not claimed:
            # Say why: each check below fails for the voucher the UPDATE skipped.
            selectors.usable_voucher(code, now=now)
            # Usable again by now: a use was released after our UPDATE found none left.
            raise VoucherExhausted(code=code)
        # Our UPDATE holds the row lock: this reads the row as we left it, and a concurrent
        # claim for the same customer waits here until we commit or roll back.
        voucher = Voucher.objects.get(code=code)
        selectors.refuse_over_customer_limit(voucher, user=user)
        try:
            with transaction.atomic():
                use = VoucherUse.objects.create(
                    voucher=voucher,
                    reference=reference,
                    user=user if user is not None and user.is_authenticated else None,
                )
        except IntegrityError:
            raise VoucherAlreadyClaimed(reference=reference) from None
    logger.info("voucher_claimed", voucher=code, reference=reference, used=voucher.used_count)
    return use


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
