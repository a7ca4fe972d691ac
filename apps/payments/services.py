"""Charging and refunding orders through the payment provider, and the sweeps that make
sure every order ends: paid, declined, failed, or expired only after asking the provider.

An order is placed without a payment: orders stores the card token and publishes
`order.placed`, and the first of its charge task, the sweep, expiry or a staff retry to
reach it opens the payment (`open_payment`, from the order's token and total) and goes on.

A charge is safe to run any number of times, from any number of workers:
- a Redis lock per order keeps two workers from calling the provider at once;
- the order is re-read and nothing happens unless it is still pending_payment;
- the provider gets the payment's idempotency key, so a retry after a lost response finds
  the first charge instead of making a second one;
- the result and the order's transition are written in one transaction, with the money
  ledger's row for the movement (`MoneyMovement`: a capture per succeeded charge, a refund
  per refund), so captures minus refunds always equal what the order says was paid.
Provider calls go through the shared "payment-provider" circuit breaker; only transient
errors count against it (a decline is a successful call). A call the open breaker refuses
is not an attempt of the payment: PAYMENT_MAX_ATTEMPTS_PER_PAYMENT counts calls that left
for the provider, across task retries and sweeps, so one card the provider always fails on
ends payment_failed instead of retrying for ever, while a provider-wide outage fails nobody.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import F, Q, Sum
from django.utils import timezone

from apps.orders import returns as orders_returns
from apps.orders import selectors as orders_selectors
from apps.orders import services as orders_services
from apps.orders.exceptions import IllegalReturnTransition
from apps.orders.models import Order, OrderStatus
from apps.payments import events as payment_events
from apps.payments.exceptions import (
    CaptureRefused,
    InvalidRefundAmount,
    MoneyMovementConflict,
    NothingToRefund,
    PaymentDeclined,
    ProviderEventDeferred,
    ProviderRejected,
    ProviderUnavailable,
    RefundExceedsRefundable,
    RefundRefused,
    RefundRequestKeyReused,
    VoidRefused,
)
from apps.payments.gateway import ChargeResult, ChargeStatus, RefundResult, get_gateway
from apps.payments.models import (
    CaptureMode,
    MoneyMovement,
    MoneyMovementKind,
    Payment,
    PaymentStatus,
    Refund,
    RefundOrigin,
    RefundStatus,
)
from ecommerce import audit, outbox
from ecommerce.money import amount_error, format_amount
from ecommerce.observability.logging import get_logger
from ecommerce.observability.metrics import (
    PAYMENT_LIFECYCLE,
    PAYMENT_PROVIDER_LATENCY,
    PAYMENT_SWEEPS,
    PAYMENTS,
    REFUNDS,
)
from ecommerce.resilience.breaker import breaker
from ecommerce.resilience.exceptions import CircuitOpen, LockNotAcquired
from ecommerce.resilience.locks import distributed_lock

logger = get_logger(__name__)

PROVIDER = "payment-provider"
CHARGE_REQUESTED = "payment.charge_requested"
# A charge's money came back to an order that is not paid (expired, cancelled, failed).
UNPAID_ENDS = (OrderStatus.EXPIRED, OrderStatus.CANCELLED, OrderStatus.PAYMENT_FAILED)
# Orders waiting for their payment's outcome.
AWAITING = (OrderStatus.PENDING_PAYMENT, OrderStatus.ACTION_REQUIRED)
PROVIDER_DOWN = (ProviderUnavailable, CircuitOpen)
ZERO = Decimal("0.00")


def open_payment(*, order_id: int) -> Payment | None:
    """The order's payment, opened from the order's token and total if it has none yet.

    Opening is idempotent by constraint: the payment is one-to-one with its order and its
    key is unique, so two deliveries of `order.placed` at once open one payment (the loser
    of the insert reads the winner's row). It commits before any provider call is made
    under its key, so an order without a payment has never been charged by us. Returns
    None for an order that has no payment and is no longer pending payment (cancelled
    before its payment was opened): nothing to charge, nothing to record.
    """
    payment = Payment.objects.select_related("order").filter(order_id=order_id).first()
    if payment is not None:
        return payment
    order = Order.objects.filter(pk=order_id, status=OrderStatus.PENDING_PAYMENT).first()
    if order is None:
        return None
    payment, created = Payment.objects.get_or_create(
        order=order,
        defaults={
            "amount": order.total,
            "currency": order.currency,
            "token": order.payment_token,
            "idempotency_key": Payment.key_for(order.public_id),
            "capture_mode": settings.PAYMENT_CAPTURE_MODE,
        },
    )
    if created:
        logger.info("payment_opened", order_id=str(order.public_id))
    return payment


def _provider_guard() -> Any:
    return breaker(PROVIDER).guard(transient=(ProviderUnavailable,))


@contextmanager
def _provider_call(operation: str) -> Iterator[None]:
    """Time a provider call (latency histogram), whatever its outcome."""
    started = time.perf_counter()
    try:
        yield
    finally:
        PAYMENT_PROVIDER_LATENCY.labels(operation).observe(time.perf_counter() - started)


def record_money_movement(
    *,
    payment: Payment,
    kind: MoneyMovementKind,
    amount: Decimal,
    currency: str,
    provider_reference: str,
    reason: str,
) -> MoneyMovement:
    """Write the ledger row of one provider movement, once; return it.

    Call it inside the transaction that writes the state the movement justifies. Idempotent
    by constraint: (kind, provider_reference) is unique, so a second record of the same
    movement, even from another transaction at the same instant (it waits for the first to
    commit), returns the row already there. Raises MoneyMovementConflict when that row has
    other figures (payment, amount or currency): never overwritten, the ledger is
    append-only.
    """
    return _insert_movement(
        payment=payment,
        kind=kind,
        amount=amount,
        currency=currency,
        provider_reference=provider_reference,
        reason=reason,
    )[0]


def _insert_movement(
    *,
    payment: Payment,
    kind: MoneyMovementKind,
    amount: Decimal,
    currency: str,
    provider_reference: str,
    reason: str,
) -> tuple[MoneyMovement, bool]:
    """`record_money_movement`, also saying whether this call wrote the row."""
    try:
        with transaction.atomic():
            row = MoneyMovement.objects.create(
                payment=payment,
                order_id=payment.order_id,
                kind=kind,
                amount=amount,
                currency=currency,
                provider_reference=provider_reference,
                reason=reason[:255],
            )
            return row, True
    except IntegrityError:
        existing = MoneyMovement.objects.filter(
            kind=kind, provider_reference=provider_reference
        ).first()
        if existing is None:
            raise  # a CHECK refused the row (an amount of 0): not a duplicate
    if (existing.payment_id, existing.amount, existing.currency) != (
        payment.pk,
        amount,
        currency,
    ):
        raise MoneyMovementConflict(kind=kind, provider_reference=provider_reference)
    return existing, False


# A payment a succeeded charge can still land on: waiting for its answer, or given up
# (FAILED) although the provider did charge (that charge is then refunded as late).
# A charge the customer confirmed (action_required) lands there too.
CAPTURABLE = (PaymentStatus.PENDING, PaymentStatus.FAILED, PaymentStatus.ACTION_REQUIRED)


def _record_capture(payment: Payment, result: ChargeResult, *, reason: str) -> Order | None:
    """Store a succeeded charge and its capture in the ledger, and pay the order, in one
    transaction; return the order as it is after (not paid when it ended meanwhile).

    None when the payment was no longer capturable: whoever ended it (the charge task, a
    provider webhook, a sweep) recorded this charge already, so nothing is written twice.
    """
    with transaction.atomic():
        updated = Payment.objects.filter(pk=payment.pk, status__in=CAPTURABLE).update(
            status=PaymentStatus.SUCCEEDED,
            provider_charge_id=result.charge_id,
            amount_captured=result.amount,
            next_action_url="",
            last_error="",
            updated_at=timezone.now(),
        )
        if not updated:
            return None
        record_money_movement(
            payment=payment,
            kind=MoneyMovementKind.CAPTURE,
            amount=result.amount,
            currency=result.currency,
            provider_reference=result.charge_id,
            reason=reason,
        )
        return orders_services.mark_paid(
            order_id=payment.order_id, charge_id=result.charge_id, amount=result.amount
        )


def _record_success(payment: Payment, result: ChargeResult, *, reason: str) -> str:
    """Store the charge and its capture in the ledger, and pay the order; refund a charge
    that came too late.

    A late charge whose refund cannot reach the provider stays succeeded (and captured in
    the ledger) on an unpaid order; `reconcile_payments` refunds it.
    """
    order = _record_capture(payment, result, reason=reason)
    if order is None:
        logger.info(
            "payment_already_recorded", order_id=payment.order_id, charge_id=result.charge_id
        )
        return "succeeded"
    logger.info(
        "payment_succeeded",
        order_id=str(order.public_id),
        charge_id=result.charge_id,
        amount=str(payment.amount),
        currency=payment.currency,
    )
    if order.status != OrderStatus.PAID:
        # The order expired or was cancelled while the charge was in flight.
        logger.warning("payment_late_charge_refund", order_id=str(order.public_id))
        refund_payment(order_id=payment.order_id, reason=f"late charge of an order {order.status}")
        return "refunded_late"
    return "succeeded"


def _record_decline(payment: Payment, declined: PaymentDeclined) -> str:
    with transaction.atomic():
        Payment.objects.filter(pk=payment.pk).update(
            status=PaymentStatus.DECLINED,
            decline_code=declined.decline_code or "",
            provider_charge_id=declined.charge_id or "",
            last_error=str(declined)[:1000],
            updated_at=timezone.now(),
        )
        orders_services.fail_payment(
            order_id=payment.order_id, reason=f"declined: {declined.decline_code}"
        )
    logger.info("payment_declined", order_id=payment.order_id, decline_code=declined.decline_code)
    return "declined"


def _record_failure(payment: Payment, reason: str) -> str:
    """Give up without a charge (the provider has none under the key): the order fails."""
    with transaction.atomic():
        Payment.objects.filter(pk=payment.pk, status=PaymentStatus.PENDING).update(
            status=PaymentStatus.FAILED, last_error=reason[:1000], updated_at=timezone.now()
        )
        orders_services.fail_payment(order_id=payment.order_id, reason=reason)
    PAYMENTS.labels("failed").inc()
    logger.warning("payment_failed", order_id=payment.order_id, reason=reason)
    return "failed"


def _record_found(payment: Payment, found: ChargeResult | None, *, when: str) -> str | None:
    """Record a charge the provider made under the payment's key; None when it made none.

    `when` says which step asked (it lands in the ledger row's reason).
    """
    if found is None:
        return None
    return _record_charge(payment, found, reason=f"charge found by key {when}")


def _find_charge(payment: Payment) -> ChargeResult | None:
    """The provider's charge under this payment's key. Raises ProviderUnavailable, CircuitOpen."""
    with _provider_guard(), _provider_call("find_charge"):
        return get_gateway().find_charge(idempotency_key=payment.idempotency_key)


def _settle(payment: Payment, *, reason: str) -> str:
    """End a payment without charging: record what the provider made, else fail the order.

    Raises ProviderUnavailable or CircuitOpen when the provider cannot be asked (nothing
    changes: a charge may have happened, so the order is never failed blind).
    """
    found = _record_found(payment, _find_charge(payment), when="when settling")
    return found or _record_failure(payment, reason)


def _max_attempts() -> int:
    """PAYMENT_MAX_ATTEMPTS_PER_PAYMENT, at least 1: a payment always gets one call."""
    return max(1, int(settings.PAYMENT_MAX_ATTEMPTS_PER_PAYMENT))


def charge_payment(*, order_id: int, ask_first: bool = False) -> str:
    """Charge a pending order once, opening its payment first if need be; returns what
    happened. The handler of `order.placed` (through `charge_payment_task`).

    "succeeded", "declined", "refunded_late", "failed" (given up: the payment reached
    PAYMENT_MAX_ATTEMPTS_PER_PAYMENT and the provider has no charge under its key), "noop"
    (nothing to do) or "busy" (another worker holds the order's lock). With `ask_first`
    (the sweeps) the provider is asked by key before charging, so a charge already made is
    recorded, not repeated. Raises ProviderUnavailable or CircuitOpen when the provider
    cannot be reached: the order stays pending and the caller retries later.
    """
    try:
        with distributed_lock(
            f"order:{order_id}:charge", ttl_seconds=settings.PAYMENT_LOCK_TTL_SECONDS
        ):
            return _charge_locked(order_id, ask_first=ask_first)
    except LockNotAcquired:
        logger.info("payment_charge_skipped", order_id=order_id, reason="lock_busy")
        return "busy"


def _pending_payment(order_id: int) -> Payment | None:
    """The order's payment, opened if need be, when both are still pending; else None.

    Caller holds the order's charge lock.
    """
    payment = open_payment(order_id=order_id)
    if (
        payment is None
        or payment.status != PaymentStatus.PENDING
        or payment.order.status != OrderStatus.PENDING_PAYMENT
    ):
        return None
    return payment


def _charge_locked(order_id: int, *, ask_first: bool) -> str:
    payment = _pending_payment(order_id)
    if payment is None:
        return "noop"
    if payment.attempts >= _max_attempts():
        return _settle(payment, reason=f"gave up after {payment.attempts} provider attempts")
    if ask_first:
        recorded = _record_found(payment, _find_charge(payment), when="before charging again")
        if recorded is not None:
            return recorded
    return _attempt(payment)


def _attempt(payment: Payment) -> str:
    """One call to the provider for this payment; the caller holds the order's charge lock."""
    order_id = payment.order_id
    attempt = payment.attempts + 1
    started = time.perf_counter()
    declined: PaymentDeclined | None = None
    try:
        with _provider_guard():
            # Counted once the breaker lets the call go: its refusals use up no attempt.
            now = timezone.now()
            Payment.objects.filter(pk=payment.pk).update(
                attempts=F("attempts") + 1, last_attempt_at=now, updated_at=now
            )
            with _provider_call("charge"):
                try:
                    result = get_gateway().charge(
                        amount=payment.amount,
                        currency=payment.currency,
                        token=payment.token,
                        idempotency_key=payment.idempotency_key,
                        capture=payment.capture_mode == CaptureMode.IMMEDIATE,
                    )
                except PaymentDeclined as exc:  # the provider answered: not a breaker failure
                    declined = exc
                except ProviderRejected as exc:
                    # Refused as sent (a 4xx): retrying the same request can never succeed,
                    # so the order fails now rather than waiting pending until it expires.
                    declined = PaymentDeclined(decline_code=f"rejected:{exc.error}", charge_id=None)
    except Exception as exc:
        refused = isinstance(exc, CircuitOpen)
        PAYMENTS.labels("circuit_open" if refused else "provider_error").inc()
        Payment.objects.filter(pk=payment.pk).update(
            last_error=f"{type(exc).__name__}: {exc}"[:1000], updated_at=timezone.now()
        )
        logger.warning(
            "payment_attempt_refused" if refused else "payment_attempt_failed",
            order_id=order_id,
            attempt=payment.attempts if refused else attempt,
            error=type(exc).__name__,
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        if isinstance(exc, ProviderUnavailable) and attempt >= _max_attempts():
            # The last attempt this payment gets: end it now if the provider can say.
            return _settle(payment, reason=f"gave up after {attempt} provider attempts")
        raise
    logger.info(
        "payment_attempt",
        order_id=order_id,
        attempt=attempt,
        outcome="declined" if declined else "succeeded",
        duration_ms=round((time.perf_counter() - started) * 1000, 1),
    )
    PAYMENTS.labels("declined" if declined else "succeeded").inc()
    if declined is not None:
        return _record_decline(payment, declined)
    return _record_charge(payment, result, reason=f"charge {result.status}")


def give_up_charge(*, order_id: int, attempts: int) -> str:
    """End a pending order whose charge task ran out of retries, without charging again.

    The provider is asked by key: a charge it made is recorded (paid or declined), none
    fails the order (payment_failed, stock back). Returns the outcome as charge_payment
    does. Raises ProviderUnavailable or CircuitOpen when the provider cannot be asked: the
    order stays pending and `reconcile_payments` settles it later.
    """
    try:
        with distributed_lock(
            f"order:{order_id}:charge", ttl_seconds=settings.PAYMENT_LOCK_TTL_SECONDS
        ):
            payment = _pending_payment(order_id)
            if payment is None:
                return "noop"
            return _settle(payment, reason=f"charge retries exhausted after {attempts} runs")
    except LockNotAcquired:
        return "busy"


# --- Refunds -----------------------------------------------------------------------------
#
# A refund is reserved, then sent. Reserving (`Refund` row, pending) happens under the
# payment's row lock, where what is refundable is read: the ledger's captures minus its
# refunds, minus the refunds still pending. So two refunds asked at once queue on that lock
# and the second sees the first: together they never exceed what was captured (the
# provider enforces the same sum on its side). The provider is called after the
# reservation commits, outside any row lock, with the refund's own idempotency key; its
# answer is recorded under the payment's lock again (`_complete_refund`): the refund
# succeeded, its ledger row, and the order's amount_paid lowered (`orders.record_refund`,
# which ends the order refunded when nothing paid is left), in one transaction. A refusal
# marks it failed (the reservation is released); a provider that cannot be reached leaves
# it pending, and `reconcile_payments` sends it again (same key: never twice).

CAPTURED = Q(kind=MoneyMovementKind.CAPTURE)
REFUNDED = Q(kind=MoneyMovementKind.REFUND)


def _ledger_net(payment: Payment) -> Decimal:
    """Captures minus refunds in the payment's ledger rows."""
    sums = MoneyMovement.objects.filter(payment=payment).aggregate(
        captured=Sum("amount", filter=CAPTURED), refunded=Sum("amount", filter=REFUNDED)
    )
    return (sums["captured"] or ZERO) - (sums["refunded"] or ZERO)


def refundable_amount(payment: Payment) -> Decimal:
    """What can still be refunded: captured, less refunds made or pending.

    Read under the payment's row lock when it decides a reservation.
    """
    pending = Refund.objects.filter(payment=payment, status=RefundStatus.PENDING).aggregate(
        total=Sum("amount")
    )["total"]
    return _ledger_net(payment) - (pending or ZERO)


def _check_refund_amount(amount: Decimal, currency: str) -> None:
    """Raises InvalidRefundAmount unless `amount` is a positive amount of `currency`."""
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise InvalidRefundAmount("The amount must be a decimal number.")
    if amount <= 0:
        raise InvalidRefundAmount("The amount must be more than zero.")
    error = amount_error(amount, currency)
    if error:
        raise InvalidRefundAmount(error)


def _refund_key(payment: Payment, *, whole: bool) -> str:
    """The provider idempotency key of a new refund: `refund-<uuid>`.

    A refund of all that was captured, as the first refund of the payment (a cancellation
    or a compensation), keeps the key such refunds had before partial refunds,
    `refund-<payment key>`: one left in flight across the upgrade is found, not repeated.
    """
    if whole and not Refund.objects.filter(payment=payment).exists():
        return f"refund-{payment.idempotency_key}"
    return f"refund-{uuid.uuid4()}"


def reserve_refund(
    *,
    order_id: int,
    amount: Decimal | None,
    by: Any,
    reason: str,
    origin: str = RefundOrigin.STAFF,
    request_key: str = "",
) -> tuple[Refund | None, bool]:
    """Reserve a refund of `amount` (None: all that is left) of the order's payment; return
    (refund, created). Commits before any provider call.

    With a `request_key` already used for this order, returns that refund and False (the
    same amount) or raises RefundRequestKeyReused. None and False when `amount` is None and
    nothing is left. Raises NothingToRefund (no captured payment), InvalidRefundAmount,
    RefundExceedsRefundable.
    """
    with transaction.atomic():
        payment = (
            Payment.objects.select_for_update(of=("self",))
            .select_related("order")
            .filter(order_id=order_id)
            .first()
        )
        if payment is None or payment.status not in (
            PaymentStatus.SUCCEEDED,
            PaymentStatus.REFUNDED,
        ):
            raise NothingToRefund(f"Order {order_id} has no captured payment to refund.")
        if request_key:
            existing = Refund.objects.filter(order_id=order_id, request_key=request_key).first()
            if existing is not None:
                if amount is not None and existing.amount != amount:
                    raise RefundRequestKeyReused(key=request_key)
                return existing, False
        refundable = refundable_amount(payment)
        if amount is None:
            if refundable <= 0:
                return None, False
            amount = refundable
        _check_refund_amount(amount, payment.currency)
        if amount > refundable:
            raise RefundExceedsRefundable(
                amount=format_amount(amount, payment.currency),
                refundable=format_amount(max(refundable, ZERO), payment.currency),
                currency=payment.currency,
            )
        refund = Refund.objects.create(
            payment=payment,
            order_id=order_id,
            amount=amount,
            currency=payment.currency,
            origin=origin,
            idempotency_key=_refund_key(payment, whole=amount == _ledger_net(payment)),
            request_key=request_key,
            reason=(reason or origin)[:255],
            requested_by=_actor(by),
        )
        audit.record_for(
            refund,
            action="payment.refund",
            changes={
                "order": (None, str(payment.order.public_id)),
                "amount": (None, amount),
                "reason": (None, refund.reason),
            },
        )
    logger.info(
        "refund_reserved",
        order_id=str(payment.order.public_id),
        refund_id=str(refund.public_id),
        amount=str(amount),
        origin=origin,
    )
    return refund, True


def _actor(user: Any) -> Any:
    return user if user is not None and getattr(user, "is_authenticated", False) else None


def _complete_refund(refund_id: int, result: RefundResult, *, source: str) -> tuple[Refund, bool]:
    """Record a refund the provider made: the refund succeeded, its ledger row, the order's
    amount_paid lowered, the payment refunded once nothing captured is left; one
    transaction, under the payment's row lock. Returns (refund, newly recorded).

    A no-op for a refund already recorded (the task and the provider's webhook both report
    it: one ledger row, one lowering).
    """
    with transaction.atomic():
        payment_id = Refund.objects.values_list("payment_id", flat=True).get(pk=refund_id)
        payment = Payment.objects.select_for_update(of=("self",)).get(pk=payment_id)
        refund = Refund.objects.select_for_update(of=("self",)).get(pk=refund_id)
        if refund.status == RefundStatus.SUCCEEDED:
            return refund, False
        if refund.status == RefundStatus.FAILED:
            # One key, one answer: the provider cannot have refused and refunded it.
            logger.error("refund_failed_then_succeeded", refund_id=str(refund.public_id))
        if (result.amount, result.currency) != (refund.amount, refund.currency):
            logger.error(
                "refund_amount_mismatch",
                refund_id=str(refund.public_id),
                asked=str(refund.amount),
                refunded=str(result.amount),
            )
        refund.status = RefundStatus.SUCCEEDED
        refund.provider_refund_id = result.refund_id
        refund.last_error = ""
        refund.save(update_fields=["status", "provider_refund_id", "last_error", "updated_at"])
        _, created = _insert_movement(
            payment=payment,
            kind=MoneyMovementKind.REFUND,
            amount=result.amount,
            currency=result.currency,
            provider_reference=result.refund_id,
            reason=refund.reason,
        )
        if created:
            orders_services.record_refund(
                order_id=refund.order_id,
                amount=result.amount,
                by=refund.requested_by,
                reason=refund.reason,
            )
        if refund.order_return_id is not None:
            _mark_return_refunded(refund, amount=result.amount)
        if _ledger_net(payment) <= 0:
            Payment.objects.filter(pk=payment.pk, status=PaymentStatus.SUCCEEDED).update(
                status=PaymentStatus.REFUNDED,
                provider_refund_id=result.refund_id,
                updated_at=timezone.now(),
            )
        if refund.origin == RefundOrigin.COMPENSATION:
            outbox.publish(
                payment_events.PAYMENT_COMPENSATED,
                {
                    "order_id": refund.order_id,
                    "refund_id": str(refund.public_id),
                    "amount": str(refund.amount),
                    "reason": refund.reason,
                },
            )
    REFUNDS.labels(refund.origin, "succeeded").inc()
    logger.info(
        "payment_refunded",
        order_id=refund.order_id,
        refund_id=result.refund_id,
        amount=str(result.amount),
        origin=refund.origin,
        source=source,
    )
    return refund, True


def _mark_return_refunded(refund: Refund, *, amount: Decimal) -> None:
    """A return's refund succeeded: the return is refunded, in the caller's transaction
    (which records the money, under the payment's row lock). A return that cannot be
    refunded (a bug: only received returns get refunds) is logged, never allowed to undo
    the money already recorded."""
    try:
        orders_returns.mark_return_refunded(
            return_id=refund.order_return_id, amount=amount, by=refund.requested_by
        )
    except IllegalReturnTransition as exc:
        logger.error(
            "return_refund_unrecorded",
            refund_id=str(refund.public_id),
            return_id=refund.order_return_id,
            error=str(exc.detail),
        )


def _fail_refund(refund: Refund, refused: RefundRefused) -> Refund:
    """The provider will never make this refund: failed, its reservation released. A
    cancellation's order goes back to paid (the money stays)."""
    with transaction.atomic():
        updated = Refund.objects.filter(pk=refund.pk, status=RefundStatus.PENDING).update(
            status=RefundStatus.FAILED,
            last_error=f"refused: {refused.error}"[:1000],
            updated_at=timezone.now(),
        )
        if updated and refund.origin == RefundOrigin.CANCELLATION:
            orders_services.abort_refund(
                order_id=refund.order_id, reason=f"refund refused: {refused.error}"
            )
    if updated:
        REFUNDS.labels(refund.origin, "failed").inc()
    logger.error(
        "refund_refused",
        order_id=refund.order_id,
        refund_id=str(refund.public_id),
        origin=refund.origin,
        error=refused.error,
    )
    refund.refresh_from_db()
    return refund


def send_refund(refund: Refund) -> Refund:
    """Ask the provider for a reserved refund (its own idempotency key: asking again never
    refunds twice) and record the answer; return the refund as it ends.

    Succeeded, or failed when the provider refuses it for good. Raises ProviderUnavailable
    or CircuitOpen when the provider cannot be reached: the refund stays pending (reserved)
    for the next try.
    """
    payment = refund.payment
    try:
        with _provider_guard(), _provider_call("refund"):
            result = get_gateway().refund(
                charge_id=payment.provider_charge_id,
                amount=refund.amount,
                idempotency_key=refund.idempotency_key,
            )
    except RefundRefused as exc:
        return _fail_refund(refund, exc)
    except PROVIDER_DOWN as exc:
        Refund.objects.filter(pk=refund.pk, status=RefundStatus.PENDING).update(
            last_error=f"{type(exc).__name__}: {exc}"[:1000], updated_at=timezone.now()
        )
        raise
    return _complete_refund(refund.pk, result, source="refund call")[0]


def refund(
    order_id: int,
    amount: Decimal,
    *,
    by: Any,
    reason: str,
    origin: str = RefundOrigin.STAFF,
    request_key: str = "",
) -> Refund:
    """Refund `amount` of an order's captured payment: reserve it, then ask the provider.

    The public refund service (staff in the API and the admin, returns). Returns the
    refund: succeeded, failed (the provider refused; nothing changed), or pending when
    the provider cannot be reached now (it stays reserved; `reconcile_payments` sends it
    again). A request repeated with the same `request_key` returns the first refund
    (sent again if still pending). Raises NothingToRefund, InvalidRefundAmount,
    RefundExceedsRefundable, RefundRequestKeyReused.
    """
    reserved, _ = reserve_refund(
        order_id=order_id,
        amount=amount,
        by=by,
        reason=reason,
        origin=origin,
        request_key=request_key,
    )
    if reserved is None:  # only an amount of None finds nothing left
        raise NothingToRefund(f"Order {order_id} has nothing left to refund.")
    if reserved.status != RefundStatus.PENDING:
        return reserved
    try:
        return send_refund(reserved)
    except PROVIDER_DOWN as exc:
        logger.warning(
            "refund_deferred", refund_id=str(reserved.public_id), error=type(exc).__name__
        )
        reserved.refresh_from_db()
        return reserved


def refund_payment(*, order_id: int, reason: str = "refunded") -> Payment:
    """Compensation: refund all that is left of a payment whose order cannot keep it (a
    capture that landed on an order that ended unpaid); the customer and staff are told
    (`payment.compensated`). Idempotent: nothing is left the second time.

    Raises ProviderUnavailable or CircuitOpen when the provider cannot be reached (the
    refund stays pending: `reconcile_payments` sends it), and RefundRefused when it will
    never refund this charge (the refund is failed, logged for staff).
    """
    try:
        reserved, _ = reserve_refund(
            order_id=order_id,
            amount=None,
            by=None,
            reason=reason,
            origin=RefundOrigin.COMPENSATION,
        )
    except NothingToRefund:
        reserved = None
    if reserved is None:
        # Nothing left: finish any compensation still pending.
        for pending in _pending_refunds(order_id):
            send_refund(pending)
        return Payment.objects.get(order_id=order_id)
    done = send_refund(reserved)
    if done.status == RefundStatus.FAILED:
        raise RefundRefused(
            charge_id=done.payment.provider_charge_id, status_code=400, error=done.last_error
        )
    return Payment.objects.get(order_id=order_id)


def _pending_refunds(order_id: int) -> list[Refund]:
    return list(
        Refund.objects.filter(order_id=order_id, status=RefundStatus.PENDING)
        .select_related("payment")
        .order_by("pk")
    )


def refund_order_payment(*, order_id: int, actor_id: int | None = None, reason: str) -> str:
    """Do a refund the orders app claimed (order refunding): refund all that is left of
    the payment, then finish the order.

    Refunds still pending for the order are sent first (a staff refund in flight when the
    order was cancelled), then what is left is reserved and sent. Returns "refunded",
    "refused" (the provider will never refund: the order goes back to paid) or "noop" (not
    refunding: finished or aborted already). Raises ProviderUnavailable or CircuitOpen when
    the provider cannot be reached: the order stays refunding, and retrying is safe (each
    refund has its key).
    """
    if not Order.objects.filter(pk=order_id, status=OrderStatus.REFUNDING).exists():
        return "noop"
    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id else None
    for pending in _pending_refunds(order_id):
        send_refund(pending)
    try:
        reserved, _ = reserve_refund(
            order_id=order_id,
            amount=None,
            by=actor,
            reason=reason,
            origin=RefundOrigin.CANCELLATION,
        )
    except NothingToRefund:
        reserved = None
    if reserved is not None and send_refund(reserved).status == RefundStatus.FAILED:
        return "refused"
    # Nothing was captured, or all of it is refunded: the order ends refunded.
    orders_services.complete_refund(order_id=order_id, by=actor, reason=reason)
    return "refunded"


# --- Provider events (webhooks) ----------------------------------------------------------
#
# What a provider reports about a charge or a refund is applied by the code the charge
# task and the sweeps use (`_record_capture`, `_record_decline`, `_record_refund`), under
# the payment's row lock and in the caller's transaction, which also stores the event
# (`apps.payments.webhooks`). Each step is a no-op when the state already says it, so an
# event that arrives before, after or instead of the task's own answer, or twice, leaves
# one state. No provider call is made here: a late charge is refunded by the caller, after
# its transaction commits.


def _payment_for_update(*, idempotency_key: str | None, charge_id: str | None) -> Payment | None:
    """The payment a provider event names, row-locked (its key, else its charge id)."""
    payments = Payment.objects.select_for_update(of=("self",)).select_related("order")
    if idempotency_key:
        return payments.filter(idempotency_key=idempotency_key).first()
    if charge_id:
        return payments.filter(provider_charge_id=charge_id).first()
    return None


def apply_charge_event(*, charge: ChargeResult, idempotency_key: str, source: str) -> str:
    """Apply a charge the provider reports (succeeded, authorized, captured, voided,
    declined, or the end of the customer's action as one of those); return the outcome.

    Caller holds a transaction. "paid", "declined", "late_charge" (captured for an order
    that ended unpaid: the caller refunds it after commit, else `reconcile_payments`
    does), "authorized", "late_authorization" (held for an order that ended unpaid: the
    caller voids it after commit, else reconciliation does), "captured" (an authorization
    captured at fulfilment), "voided", "already_recorded", "unknown_payment" (no payment
    under that key: logged, reconciliation asks the provider about our own payments) or
    "mismatch" (the charge's figures are not the payment's: logged as an error, nothing
    changed).
    """
    payment = _payment_for_update(idempotency_key=idempotency_key, charge_id=charge.charge_id)
    if payment is None:
        logger.warning("provider_event_unknown_payment", charge_id=charge.charge_id, source=source)
        return "unknown_payment"
    if (charge.amount, charge.currency) != (payment.amount, payment.currency):
        logger.error(
            "provider_event_mismatch",
            order_id=payment.order_id,
            charge_id=charge.charge_id,
            amount=str(charge.amount),
            currency=charge.currency,
        )
        return "mismatch"
    if charge.status is not ChargeStatus.SUCCEEDED or payment.status == PaymentStatus.AUTHORIZED:
        return _apply_lifecycle_event(payment, charge, source=source)
    if charge.status is ChargeStatus.SUCCEEDED:
        order = _record_capture(payment, charge, reason=f"charge succeeded ({source})")
        if order is None:
            return "already_recorded"
        logger.info(
            "payment_succeeded",
            order_id=str(order.public_id),
            charge_id=charge.charge_id,
            source=source,
        )
        return "paid" if order.status == OrderStatus.PAID else "late_charge"
    if payment.status not in (PaymentStatus.PENDING, PaymentStatus.ACTION_REQUIRED):
        return "already_recorded"
    _record_decline(
        payment,
        PaymentDeclined(decline_code=charge.decline_code or "declined", charge_id=charge.charge_id),
    )
    return "declined"


def apply_refund_event(
    *,
    refund: RefundResult,
    charge_idempotency_key: str | None,
    event_id: str,
    source: str,
    refund_key: str | None = None,
) -> str:
    """Apply a refund the provider reports; return the outcome.

    Caller holds a transaction. A refund of ours (found by its idempotency key
    `refund_key`, else its provider id) is recorded as its own answer would be
    (`_complete_refund`): "refunded", or "already_recorded". A refund we never asked for
    (made in the provider's dashboard, a dispute) is recorded too, as a Refund of origin
    "provider" with its ledger row, lowering what the order says was paid:
    "unrequested_refund" (logged as a warning for staff). "unknown_payment" and "mismatch"
    (another charge, currency, or more than is left: logged as an error, nothing
    changed) otherwise. Raises ProviderEventDeferred when the charge it refunds is not
    recorded yet: a refund applied before its capture would leave the ledger without the
    capture.
    """
    payment = _payment_for_update(
        idempotency_key=charge_idempotency_key, charge_id=refund.charge_id
    )
    if payment is None:
        logger.warning("provider_event_unknown_payment", charge_id=refund.charge_id, source=source)
        return "unknown_payment"
    if payment.status in CAPTURABLE:
        raise ProviderEventDeferred(event_id=event_id, reason="charge_not_recorded")
    ours = None
    if refund_key:
        ours = Refund.objects.filter(payment=payment, idempotency_key=refund_key).first()
    if ours is None:
        ours = Refund.objects.filter(payment=payment, provider_refund_id=refund.refund_id).first()
    if ours is not None:
        _, recorded = _complete_refund(ours.pk, refund, source=source)
        return "refunded" if recorded else "already_recorded"
    if MoneyMovement.objects.filter(
        kind=MoneyMovementKind.REFUND, provider_reference=refund.refund_id
    ).exists():
        return "already_recorded"  # recorded before refunds had rows of their own
    if (
        payment.status not in (PaymentStatus.SUCCEEDED, PaymentStatus.REFUNDED)
        or payment.provider_charge_id != refund.charge_id
        or refund.currency != payment.currency
        or refund.amount > _ledger_net(payment)
    ):
        logger.error(
            "provider_event_mismatch",
            order_id=payment.order_id,
            refund_id=refund.refund_id,
            amount=str(refund.amount),
            currency=refund.currency,
        )
        return "mismatch"
    # A refunding order's claimed refund, made before refunds had rows (under the key
    # `refund-<payment key>`), is ours; anything else we never asked for.
    claimed = Order.objects.filter(
        pk=payment.order_id, status=OrderStatus.REFUNDING
    ).exists() and refund_key in (None, f"refund-{payment.idempotency_key}")
    unrequested = Refund.objects.create(
        payment=payment,
        order_id=payment.order_id,
        amount=refund.amount,
        currency=refund.currency,
        origin=RefundOrigin.CANCELLATION if claimed else RefundOrigin.PROVIDER,
        idempotency_key=refund_key or f"provider-{refund.refund_id}",
        reason=(
            f"refund succeeded ({source})"
            if claimed
            else f"refunded at the provider, not by us ({source})"
        )[:255],
    )
    _complete_refund(unrequested.pk, refund, source=source)
    if claimed:
        return "refunded"
    logger.warning(
        "provider_refund_not_requested",
        order_id=payment.order_id,
        refund_id=refund.refund_id,
        amount=str(refund.amount),
    )
    return "unrequested_refund"


def settle_ended_order_payment(*, order_id: int) -> str:
    """Close the pending payment of an order that ended unpaid while a charge was in
    flight and its answer never came: ask the provider by key, under the charge lock.

    "refunded_late" (charged: captured, then refunded as compensation), "declined",
    "closed" (no charge under the key: the payment fails, nothing to give back), "noop"
    (not pending any more) or "busy". Raises ProviderUnavailable or CircuitOpen when the
    provider cannot be asked (or cannot refund now: the sweep refunds it later).
    """
    try:
        with distributed_lock(
            f"order:{order_id}:charge", ttl_seconds=settings.PAYMENT_LOCK_TTL_SECONDS
        ):
            payment = Payment.objects.select_related("order").get(order_id=order_id)
            if payment.status != PaymentStatus.PENDING:
                return "noop"
            found = _record_found(payment, _find_charge(payment), when="after the order ended")
            if found is not None:
                return found
            Payment.objects.filter(pk=payment.pk, status=PaymentStatus.PENDING).update(
                status=PaymentStatus.FAILED,
                last_error=f"no charge: the order ended {payment.order.status}",
                updated_at=timezone.now(),
            )
            return "closed"
    except LockNotAcquired:
        return "busy"


class _Sweep:
    """Counts what one sweep did, and stops it starting work past its time budget."""

    def __init__(self, name: str, outcomes: tuple[str, ...]) -> None:
        self.name = name
        self.counts = dict.fromkeys(outcomes, 0)
        self.deadline = time.monotonic() + settings.PAYMENT_SWEEP_BUDGET_SECONDS

    def out_of_time(self) -> bool:
        return time.monotonic() > self.deadline

    def count(self, outcome: str) -> None:
        if outcome in self.counts:
            self.counts[outcome] += 1
            PAYMENT_SWEEPS.labels(self.name, outcome).inc()

    def deferred(self, order_id: int, exc: BaseException | None) -> None:
        self.count("deferred")
        logger.warning(
            f"{self.name}_deferred",
            order_id=order_id,
            reason="lock_busy" if exc is None else type(exc).__name__,
        )

    def done(self) -> dict[str, int]:
        if any(self.counts.values()):
            logger.info(f"{self.name}_done", **self.counts)
        return self.counts


CHARGE_OUTCOMES = {"succeeded": "paid", "refunded_late": "refunded"}


def reconcile_payments(*, now: Any = None) -> dict[str, int]:
    """Make sure no payment falls between two jobs; the periodic sweep (beat).

    - A pending order still without a payment PAYMENT_UNATTEMPTED_AFTER_SECONDS after it
      was placed (its `order.placed` message was lost or not handled yet), a pending
      payment of a pending order never attempted that long after the order was placed (its
      charge message was lost), or one whose last attempt is older than
      PAYMENT_RECONCILE_AFTER_SECONDS (its outcome in doubt), is charged through
      `charge_payment(ask_first=True)`: the payment is opened if need be, the provider is
      asked by key first, so a charge made is recorded, not repeated; a payment at its
      attempt cap ends payment_failed.
    - A payment attempted for an order that then ended unpaid (cancelled while the charge
      was in flight, its answer lost) is asked about by key: a charge the provider made
      is recorded and refunded (compensation), none closes the payment.
    - A refund reserved but not answered that long (the provider could not be reached) is
      sent again, under its own key.
    - A succeeded charge of an order that ended unpaid (expired, cancelled) is refunded
      (compensation), unless the provider refused that already (left to staff).
    - A refund claimed but not finished (order refunding) is finished.
    - The authorize-and-capture steps whose answer or event was lost: a charge waiting
      for its customer is asked about (the action ended but its event was dropped), a
      fulfilled order's authorization is captured, an ended order's authorization is
      voided (`_reconcile_lifecycle`); each under its own idempotency key, so nothing is
      ever captured or voided twice.
    Each step leaves what the provider cannot answer now for the next run.
    """
    now = now or timezone.now()
    sweep = _Sweep(
        "payments_reconcile",
        ("paid", "declined", "failed", "refunded", "deferred"),
    )
    in_doubt = now - timedelta(seconds=settings.PAYMENT_RECONCILE_AFTER_SECONDS)
    unattempted = now - timedelta(seconds=settings.PAYMENT_UNATTEMPTED_AFTER_SECONDS)
    batch = settings.PAYMENT_RECONCILE_BATCH_SIZE
    due = Payment.objects.filter(
        Q(attempts__gt=0, last_attempt_at__lt=in_doubt)
        | Q(
            last_attempt_at__isnull=True,
            order__created_at__lt=unattempted,
            updated_at__lt=unattempted,  # not refused by the breaker just now
        ),
        status=PaymentStatus.PENDING,
        order__status=OrderStatus.PENDING_PAYMENT,
    ).order_by("pk")
    unopened = Order.objects.filter(
        status=OrderStatus.PENDING_PAYMENT, payment__isnull=True, created_at__lt=unattempted
    ).order_by("pk")
    for order_id in [
        *unopened.values_list("pk", flat=True)[:batch],
        *due.values_list("order_id", flat=True)[:batch],
    ]:
        if sweep.out_of_time():
            break
        try:
            outcome = charge_payment(order_id=order_id, ask_first=True)
        except PROVIDER_DOWN as exc:
            sweep.deferred(order_id, exc)
            continue
        if outcome == "busy":
            sweep.deferred(order_id, None)
        sweep.count(CHARGE_OUTCOMES.get(outcome, outcome))
    abandoned = Payment.objects.filter(
        status=PaymentStatus.PENDING,
        attempts__gt=0,
        last_attempt_at__lt=in_doubt,
        order__status__in=UNPAID_ENDS,
    ).order_by("pk")
    for order_id in list(abandoned.values_list("order_id", flat=True)[:batch]):
        if sweep.out_of_time():
            break
        try:
            outcome = settle_ended_order_payment(order_id=order_id)
        except PROVIDER_DOWN as exc:
            sweep.deferred(order_id, exc)
            continue
        sweep.count(CHARGE_OUTCOMES.get(outcome, outcome))
    stuck = Refund.objects.filter(status=RefundStatus.PENDING, updated_at__lt=in_doubt)
    for pending in list(stuck.select_related("payment").order_by("pk")[:batch]):
        if sweep.out_of_time():
            break
        try:
            done = send_refund(pending)
        except PROVIDER_DOWN as exc:
            sweep.deferred(pending.order_id, exc)
            continue
        sweep.count("refunded" if done.status == RefundStatus.SUCCEEDED else "refund_failed")
    late = (
        Payment.objects.filter(
            status=PaymentStatus.SUCCEEDED, order__status__in=UNPAID_ENDS, updated_at__lt=in_doubt
        )
        # A compensation the provider refused is for staff (logged), not retried blind.
        .exclude(refunds__origin=RefundOrigin.COMPENSATION, refunds__status=RefundStatus.FAILED)
        .order_by("pk")
    )
    for order_id in list(late.values_list("order_id", flat=True)[:batch]):
        if sweep.out_of_time():
            break
        try:
            refund_payment(order_id=order_id, reason="late charge refunded by reconciliation")
        except PROVIDER_DOWN as exc:
            sweep.deferred(order_id, exc)
            continue
        except RefundRefused as exc:
            logger.error("payment_late_refund_refused", order_id=order_id, error=exc.error)
            continue
        sweep.count("refunded")
    claimed = Order.objects.filter(status=OrderStatus.REFUNDING, updated_at__lt=in_doubt)
    for order_id in list(claimed.order_by("pk").values_list("pk", flat=True)[:batch]):
        if sweep.out_of_time():
            break
        try:
            outcome = refund_order_payment(order_id=order_id, reason="refund finished by sweep")
        except PROVIDER_DOWN as exc:
            sweep.deferred(order_id, exc)
            continue
        sweep.count(outcome)
    _reconcile_lifecycle(sweep, in_doubt=in_doubt, batch=batch)
    return sweep.done()


def expire_overdue_orders(*, now: Any = None) -> dict[str, int]:
    """Expire orders pending past ORDER_PAYMENT_TIMEOUT_SECONDS, each after asking the provider.

    Under the order's charge lock (so no charge of ours starts meanwhile) the provider is
    asked by the payment's key: a succeeded charge pays the order, a declined one fails it,
    none expires it (stock back). An order whose payment was never opened is asked about
    too (its payment is opened first, so the answer has a row to land on): no row means no
    charge of ours, but asking costs one read and keeps "never expired blind" free of any
    assumption about who may have charged under the key. An order whose lock is taken (a
    charge in flight) or whose provider cannot be asked is left for the next run, logged
    and counted as deferred: never expired blind. Returns {"expired", "paid", "declined",
    "deferred"}.
    """
    sweep = _Sweep("orders_expiry", ("expired", "paid", "declined", "deferred"))
    for order_id in orders_services.overdue_order_ids(now=now):
        if sweep.out_of_time():
            break
        try:
            with distributed_lock(
                f"order:{order_id}:charge", ttl_seconds=settings.PAYMENT_LOCK_TTL_SECONDS
            ):
                outcome = _expire_locked(order_id)
        except LockNotAcquired:
            sweep.deferred(order_id, None)
            continue
        except PROVIDER_DOWN as exc:
            sweep.deferred(order_id, exc)
            continue
        sweep.count(CHARGE_OUTCOMES.get(outcome, outcome))
    return sweep.done()


def _expire_locked(order_id: int) -> str:
    payment = _pending_payment(order_id)
    if payment is not None:
        recorded = _record_found(payment, _find_charge(payment), when="at expiry")
        if recorded is not None:
            return recorded
    waiting = Payment.objects.filter(
        order_id=order_id, status=PaymentStatus.ACTION_REQUIRED, order__status__in=AWAITING
    ).first()
    if waiting is not None:
        # The customer may have finished just now, its event not arrived yet: never
        # expire an order whose charge went on.
        found = _find_charge(waiting)
        if found is not None and found.status is not ChargeStatus.ACTION_REQUIRED:
            return _record_charge(waiting, found, reason="charge found by key at expiry")
    # Expired, an order's authorization (or waiting charge) is voided on `order.expired`.
    return "expired" if orders_services.expire_order(order_id=order_id) else "noop"


# --- Authorize, capture, void; the customer's action -------------------------------------
#
# With PAYMENT_CAPTURE_MODE=fulfilment (fixed on each payment when it is opened) the charge
# only authorizes: the payment is `authorized`, the ledger has an AUTHORIZATION row (no
# money to us), the order is `authorized`. Fulfilling the order (`order.fulfilled`)
# captures what shipped (`orders.selectors.fulfilled_amount`) under the key
# `capture-<payment key>`: a CAPTURE row, a VOID row for the part released, the order's
# amount_paid. Cancelling or expiring it (`order.cancelled`, `order.expired`) voids the
# authorization under `void-<payment key>`: a VOID row. A charge waiting for its customer
# (`tok_action_required`) leaves the payment and the order `action_required` with the
# provider's redirect URL; the provider's word that the action ended (its event, or its
# answer when asked by key) records what the charge became. Each step is a conditional
# UPDATE from the state it leaves, so a task, a webhook and a sweep doing it at once
# write it once, and each provider call carries its own idempotency key, so a retry never
# captures or voids twice.

VOIDABLE = (PaymentStatus.AUTHORIZED, PaymentStatus.ACTION_REQUIRED)
AUTHORIZABLE = (PaymentStatus.PENDING, PaymentStatus.FAILED, PaymentStatus.ACTION_REQUIRED)


def _record_charge(payment: Payment, result: ChargeResult, *, reason: str) -> str:
    """Record a charge the provider made under the payment's key, whatever it became."""
    if result.status is ChargeStatus.SUCCEEDED:
        return _record_success(payment, result, reason=reason)
    if result.status is ChargeStatus.AUTHORIZED:
        return _record_authorized(payment, result, reason=reason)
    if result.status is ChargeStatus.ACTION_REQUIRED:
        return _record_action_required(payment, result)
    if result.status is ChargeStatus.VOIDED:
        # Voided by us (its order ended) before its answer was recorded: nothing was taken.
        with transaction.atomic():
            _record_void(payment, result, reason=reason)
            orders_services.fail_payment(order_id=payment.order_id, reason="authorization voided")
        return "voided"
    return _record_decline(
        payment,
        PaymentDeclined(decline_code=result.decline_code or "declined", charge_id=result.charge_id),
    )


def _record_authorization(payment: Payment, result: ChargeResult, *, reason: str) -> Order | None:
    """Store an authorization (its ledger row) and authorize the order, in one transaction;
    the order as it is after, or None when the payment had left the states it comes from
    (recorded already)."""
    with transaction.atomic():
        updated = Payment.objects.filter(pk=payment.pk, status__in=AUTHORIZABLE).update(
            status=PaymentStatus.AUTHORIZED,
            provider_charge_id=result.charge_id,
            next_action_url="",
            last_error="",
            updated_at=timezone.now(),
        )
        if not updated:
            return None
        record_money_movement(
            payment=payment,
            kind=MoneyMovementKind.AUTHORIZATION,
            amount=result.amount,
            currency=result.currency,
            provider_reference=result.charge_id,
            reason=reason,
        )
        return orders_services.mark_authorized(
            order_id=payment.order_id, charge_id=result.charge_id
        )


def _record_authorized(payment: Payment, result: ChargeResult, *, reason: str) -> str:
    """Record an authorization; void one that came too late (its order ended unpaid)."""
    order = _record_authorization(payment, result, reason=reason)
    if order is None:
        return "authorized"
    PAYMENT_LIFECYCLE.labels("authorized").inc()
    logger.info(
        "payment_authorized",
        order_id=str(order.public_id),
        charge_id=result.charge_id,
        amount=str(result.amount),
    )
    if order.status != OrderStatus.AUTHORIZED:
        logger.warning("payment_late_authorization_void", order_id=str(order.public_id))
        # Provider down: reconciliation voids it (the payment stays authorized, order ended).
        with suppress(*PROVIDER_DOWN):
            void_payment(order_id=payment.order_id, reason=f"late authorization ({order.status})")
        return "voided_late"
    return "authorized"


def _record_action_required(
    payment: Payment, result: ChargeResult, *, void_if_ended: bool = True
) -> str:
    """The charge waits for the customer: the payment and the order say so, with the URL.

    An order that ended meanwhile (cancelled while the charge was in flight) keeps its
    status and the waiting charge is voided (`void_if_ended`; else, inside a caller's
    transaction, reconciliation voids it).
    """
    url = result.next_action_url or ""
    with transaction.atomic():
        updated = Payment.objects.filter(pk=payment.pk, status=PaymentStatus.PENDING).update(
            status=PaymentStatus.ACTION_REQUIRED,
            provider_charge_id=result.charge_id,
            next_action_url=url,
            last_error="",
            updated_at=timezone.now(),
        )
        if not updated:
            return "action_required"
        order = orders_services.require_action(
            order_id=payment.order_id,
            charge_id=result.charge_id,
            next_action={"type": "redirect", "url": url},
        )
    PAYMENT_LIFECYCLE.labels("action_required").inc()
    logger.info(
        "payment_action_required", order_id=str(order.public_id), charge_id=result.charge_id
    )
    if void_if_ended and order.status in UNPAID_ENDS:
        with suppress(*PROVIDER_DOWN):  # else reconciliation voids it
            void_payment(order_id=payment.order_id, reason=f"order {order.status}")
    return "action_required"


def _record_void(payment: Payment, result: ChargeResult, *, reason: str) -> bool:
    """The payment is voided; an authorization's hold gets its VOID row (a charge that only
    waited for its customer held nothing). Caller holds a transaction. False when the
    payment was not voidable any more (recorded already)."""
    updated = Payment.objects.filter(
        pk=payment.pk, status__in=(*VOIDABLE, PaymentStatus.PENDING, PaymentStatus.FAILED)
    ).update(
        status=PaymentStatus.VOIDED,
        provider_charge_id=result.charge_id,
        next_action_url="",
        updated_at=timezone.now(),
    )
    if not updated:
        return False
    held = MoneyMovement.objects.filter(
        payment=payment, kind=MoneyMovementKind.AUTHORIZATION, provider_reference=result.charge_id
    ).exists()
    if held:
        record_money_movement(
            payment=payment,
            kind=MoneyMovementKind.VOID,
            amount=result.amount,
            currency=result.currency,
            provider_reference=result.charge_id,
            reason=reason,
        )
    PAYMENT_LIFECYCLE.labels("voided").inc()
    logger.info("payment_voided", order_id=payment.order_id, charge_id=result.charge_id)
    return True


def _record_authorized_capture(payment: Payment, result: ChargeResult, *, reason: str) -> bool:
    """An authorization captured (all or part): the payment is succeeded, the ledger has the
    capture and the release of the rest, the order says what was paid. Caller holds a
    transaction. False when the payment was not authorized any more (recorded already)."""
    captured = result.amount_captured
    updated = Payment.objects.filter(pk=payment.pk, status=PaymentStatus.AUTHORIZED).update(
        status=PaymentStatus.SUCCEEDED, amount_captured=captured, updated_at=timezone.now()
    )
    if not updated:
        return False
    record_money_movement(
        payment=payment,
        kind=MoneyMovementKind.CAPTURE,
        amount=captured,
        currency=result.currency,
        provider_reference=result.charge_id,
        reason=reason,
    )
    if result.amount > captured:
        record_money_movement(
            payment=payment,
            kind=MoneyMovementKind.VOID,
            amount=result.amount - captured,
            currency=result.currency,
            provider_reference=result.charge_id,
            reason=f"rest of the authorization released by a partial capture ({reason})",
        )
    orders_services.record_capture(
        order_id=payment.order_id, amount=captured, charge_id=result.charge_id
    )
    PAYMENT_LIFECYCLE.labels("captured").inc()
    logger.info(
        "payment_captured",
        order_id=payment.order_id,
        charge_id=result.charge_id,
        amount=str(captured),
        authorized=str(result.amount),
    )
    return True


def _apply_lifecycle_event(payment: Payment, charge: ChargeResult, *, source: str) -> str:
    """`apply_charge_event` for what is not a charge captured at once (see there)."""
    reason = f"charge {charge.status} ({source})"
    if charge.status is ChargeStatus.SUCCEEDED:  # a capture of our authorization
        if not _record_authorized_capture(payment, charge, reason=reason):
            return "already_recorded"
        return "captured"
    if charge.status is ChargeStatus.AUTHORIZED:
        order = _record_authorization(payment, charge, reason=reason)
        if order is None:
            return "already_recorded"
        return "authorized" if order.status == OrderStatus.AUTHORIZED else "late_authorization"
    if charge.status is ChargeStatus.VOIDED:
        return "voided" if _record_void(payment, charge, reason=reason) else "already_recorded"
    if charge.status is ChargeStatus.ACTION_REQUIRED:
        if payment.status != PaymentStatus.PENDING:
            return "already_recorded"
        _record_action_required(payment, charge, void_if_ended=False)
        return "action_required"
    if payment.status not in (PaymentStatus.PENDING, PaymentStatus.ACTION_REQUIRED):
        return "already_recorded"
    _record_decline(
        payment,
        PaymentDeclined(decline_code=charge.decline_code or "declined", charge_id=charge.charge_id),
    )
    return "declined"


def void_payment(*, order_id: int, reason: str) -> str:
    """Release the authorization (or the charge waiting for its customer) of an order that
    ended unpaid: the handler of `order.cancelled` and `order.expired`.

    Returns "voided", "noop" (nothing held, or the order is not ended: an authorized order
    is never voided under it), or what recording the provider's charge did when the void
    is refused because the charge moved on (the customer confirmed just before: the late
    capture is refunded; or it was declined). Raises ProviderUnavailable or CircuitOpen:
    retrying is safe (one void key, one void).
    """
    payment = Payment.objects.select_related("order").filter(order_id=order_id).first()
    if (
        payment is None
        or payment.status not in VOIDABLE
        or payment.order.status not in UNPAID_ENDS
        or not payment.provider_charge_id
    ):
        return "noop"
    try:
        with _provider_guard(), _provider_call("void"):
            result = get_gateway().void(
                charge_id=payment.provider_charge_id,
                idempotency_key=f"void-{payment.idempotency_key}",
            )
    except VoidRefused as exc:
        logger.warning("payment_void_refused", order_id=order_id, error=exc.error)
        found = _find_charge(payment)
        if found is None:
            return "noop"
        return _record_charge(payment, found, reason=f"charge found by key when voiding ({reason})")
    with transaction.atomic():
        _record_void(payment, result, reason=reason)
    return "voided"


def capture_payment(*, order_id: int) -> str:
    """Capture what a fulfilled order shipped from its authorization: the handler of
    `order.fulfilled`. The provider releases the rest (one capture per authorization).

    Returns "captured", "noop" (not fulfilled, or no authorization to capture: captured
    already, or charged at placement) or "capture_failed" (the provider will never
    capture it: the authorization expired or was voided; the payment says capture_failed
    and an error is logged for staff). Raises ProviderUnavailable or CircuitOpen: retrying
    is safe (one capture key, one capture).
    """
    payment = Payment.objects.select_related("order").filter(order_id=order_id).first()
    if (
        payment is None
        or payment.status != PaymentStatus.AUTHORIZED
        or payment.order.status != OrderStatus.FULFILLED
    ):
        return "noop"
    amount = min(orders_selectors.fulfilled_amount(order_id=order_id), payment.amount)
    try:
        with _provider_guard(), _provider_call("capture"):
            result = get_gateway().capture(
                charge_id=payment.provider_charge_id,
                amount=amount,
                idempotency_key=f"capture-{payment.idempotency_key}",
            )
    except CaptureRefused as exc:
        found = _find_charge(payment) if exc.error == "charge_already_captured" else None
        if found is not None and found.status is ChargeStatus.SUCCEEDED:
            # Captured under another key (never by us: one key per payment): record it.
            result = found
        else:
            with transaction.atomic():
                Payment.objects.filter(pk=payment.pk, status=PaymentStatus.AUTHORIZED).update(
                    status=PaymentStatus.CAPTURE_FAILED,
                    last_error=f"capture refused: {exc.error}",
                    updated_at=timezone.now(),
                )
            PAYMENT_LIFECYCLE.labels("capture_failed").inc()
            logger.error("payment_capture_refused", order_id=order_id, error=exc.error)
            return "capture_failed"
    with transaction.atomic():
        _record_authorized_capture(payment, result, reason="captured at fulfilment")
    return "captured"


def _reconcile_lifecycle(sweep: _Sweep, *, in_doubt: Any, batch: int) -> None:
    """Heal the authorize-and-capture steps whose answer or event was lost (see
    `reconcile_payments`); a step untouched for PAYMENT_RECONCILE_AFTER_SECONDS is due."""
    payments = Payment.objects.filter(updated_at__lt=in_doubt).order_by("pk")
    waiting = payments.filter(status=PaymentStatus.ACTION_REQUIRED, order__status__in=AWAITING)
    to_capture = payments.filter(
        status=PaymentStatus.AUTHORIZED, order__status=OrderStatus.FULFILLED
    )
    to_void = payments.filter(status__in=VOIDABLE, order__status__in=UNPAID_ENDS)
    steps: list[tuple[Any, Any]] = [
        (waiting, _settle_action),
        (to_capture, lambda order_id: capture_payment(order_id=order_id)),
        (to_void, lambda order_id: void_payment(order_id=order_id, reason="voided by sweep")),
    ]
    for queryset, step in steps:
        for order_id in list(queryset.values_list("order_id", flat=True)[:batch]):
            if sweep.out_of_time():
                return
            try:
                outcome = step(order_id)
            except PROVIDER_DOWN as exc:
                sweep.deferred(order_id, exc)
                continue
            outcome = CHARGE_OUTCOMES.get(outcome, outcome)
            if outcome in LIFECYCLE_OUTCOMES:  # counted once one happens
                sweep.counts.setdefault(outcome, 0)
            sweep.count(outcome)


LIFECYCLE_OUTCOMES = frozenset({"authorized", "captured", "voided", "capture_failed"})


def _settle_action(order_id: int) -> str:
    """Ask the provider about a charge waiting for its customer; record it if it moved on
    (the action's event was lost). Under the order's charge lock, as the expiry is."""
    try:
        with distributed_lock(
            f"order:{order_id}:charge", ttl_seconds=settings.PAYMENT_LOCK_TTL_SECONDS
        ):
            payment = Payment.objects.filter(
                order_id=order_id, status=PaymentStatus.ACTION_REQUIRED
            ).first()
            if payment is None:
                return "noop"
            found = _find_charge(payment)
            if found is None or found.status is ChargeStatus.ACTION_REQUIRED:
                return "noop"
            return _record_charge(payment, found, reason="charge found by key by the sweep")
    except LockNotAcquired:
        return "busy"
