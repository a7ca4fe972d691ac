"""Typed errors of pricing: vouchers a customer cannot use (yet, any more, or at all)."""

from __future__ import annotations

from ecommerce.errors import Conflict, NotFound


class VoucherNotFound(NotFound):
    code = "voucher_not_found"
    title = "Voucher not found"

    def __init__(self, *, code: str) -> None:
        super().__init__(f"No voucher {code}.", voucher_code=code)


class VoucherNotActive(Conflict):
    """The voucher exists but cannot be used now: switched off, not started or ended."""

    code = "voucher_not_active"
    title = "Voucher not active"

    INACTIVE = "inactive"
    NOT_STARTED = "not_started"
    ENDED = "ended"
    _DETAILS = {
        INACTIVE: "Voucher {code} is not active.",
        NOT_STARTED: "Voucher {code} is not valid yet.",
        ENDED: "Voucher {code} has expired.",
    }

    def __init__(self, *, code: str, reason: str) -> None:
        super().__init__(self._DETAILS[reason].format(code=code), voucher_code=code, reason=reason)
        self.reason = reason


class VoucherExhausted(Conflict):
    code = "voucher_exhausted"
    title = "Voucher used up"

    def __init__(self, *, code: str) -> None:
        super().__init__(f"Voucher {code} has reached its usage limit.", voucher_code=code)


class VoucherPerCustomerLimitReached(Conflict):
    code = "voucher_per_customer_limit"
    title = "Voucher already used"

    def __init__(self, *, code: str, limit: int) -> None:
        times = "once" if limit == 1 else f"{limit} times"
        super().__init__(
            f"Voucher {code} can be used {times} per customer.", voucher_code=code, limit=limit
        )


class VoucherAlreadyClaimed(Conflict):
    """A second claim for the same reference (an order records at most one voucher use)."""

    code = "voucher_already_claimed"
    title = "Voucher already claimed"

    def __init__(self, *, reference: str) -> None:
        super().__init__(f"{reference} has a voucher use already.", reference=reference)
