"""Charging and refunding orders through the payment provider.

A charge is safe to run any number of times, from any number of workers:
- a Redis lock per order keeps two workers from calling the provider at once;
- the order is re-read and nothing happens unless it is still pending_payment;
- the provider gets the payment's idempotency key, so a retry after a lost response finds
  the first charge instead of making a second one;
- the result and the order's transition are written in one transaction.
Provider calls go through the shared "payment-provider" circuit breaker; only transient
errors count against it (a decline is a successful call).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.orders import services as orders_services
from apps.orders.models import OrderStatus
from apps.payments.exceptions import PaymentDeclined, ProviderRejected, ProviderUnavailable
from apps.payments.gateway import ChargeResult, get_gateway
from apps.payments.models import Payment, PaymentStatus
from ecommerce import outbox
from ecommerce.observability.logging import get_logger
from ecommerce.observability.metrics import PAYMENT_PROVIDER_LATENCY, PAYMENTS
from ecommerce.resilience.breaker import breaker
from ecommerce.resilience.exceptions import CircuitOpen, LockNotAcquired
from ecommerce.resilience.locks import distributed_lock

logger = get_logger(__name__)

PROVIDER = "payment-provider"
CHARGE_REQUESTED = "payment.charge_requested"


def open_payment(*, order: Any, token: str) -> Payment:
    """The payment of a new order, inside the order's transaction."""
    return Payment.objects.create(
        order=order,
        amount=order.total,
        currency=order.currency,
        token=token,
        idempotency_key=f"order-{order.public_id}",
    )


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


def _record_success(payment: Payment, result: ChargeResult) -> str:
    """Store the charge and pay the order; refund a charge that came too late."""
    with transaction.atomic():
        Payment.objects.filter(pk=payment.pk).update(
            status=PaymentStatus.SUCCEEDED,
            provider_charge_id=result.charge_id,
            last_error="",
            updated_at=timezone.now(),
        )
        order = orders_services.mark_paid(order_id=payment.order_id, charge_id=result.charge_id)
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
        refund_payment(order_id=payment.order_id)
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


def charge_payment(*, order_id: int) -> str:
    """Charge a pending order once; returns what happened.

    "succeeded", "declined", "refunded_late", "noop" (nothing to do) or "busy" (another
    worker holds the order's lock). Raises ProviderUnavailable or CircuitOpen when the
    provider cannot be reached: the order stays pending and the caller retries later.
    """
    try:
        with distributed_lock(
            f"order:{order_id}:charge", ttl_seconds=settings.PAYMENT_LOCK_TTL_SECONDS
        ):
            return _charge_locked(order_id)
    except LockNotAcquired:
        logger.info("payment_charge_skipped", order_id=order_id, reason="lock_busy")
        return "busy"


def _charge_locked(order_id: int) -> str:
    payment = Payment.objects.select_related("order").filter(order_id=order_id).first()
    if (
        payment is None
        or payment.status != PaymentStatus.PENDING
        or payment.order.status != OrderStatus.PENDING_PAYMENT
    ):
        return "noop"
    attempt = payment.attempts + 1
    Payment.objects.filter(pk=payment.pk).update(
        attempts=F("attempts") + 1, last_attempt_at=timezone.now()
    )
    started = time.perf_counter()
    declined: PaymentDeclined | None = None
    try:
        with _provider_guard(), _provider_call("charge"):
            try:
                result = get_gateway().charge(
                    amount=payment.amount,
                    currency=payment.currency,
                    token=payment.token,
                    idempotency_key=payment.idempotency_key,
                )
            except PaymentDeclined as exc:  # the provider answered: not a breaker failure
                declined = exc
            except ProviderRejected as exc:
                # Refused as sent (a 4xx): retrying the same request can never succeed, so
                # the order fails now rather than waiting pending until it expires.
                declined = PaymentDeclined(decline_code=f"rejected:{exc.error}", charge_id=None)
    except Exception as exc:
        PAYMENTS.labels("circuit_open" if isinstance(exc, CircuitOpen) else "provider_error").inc()
        Payment.objects.filter(pk=payment.pk).update(
            last_error=f"{type(exc).__name__}: {exc}"[:1000], updated_at=timezone.now()
        )
        logger.warning(
            "payment_attempt_failed",
            order_id=order_id,
            attempt=attempt,
            error=type(exc).__name__,
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
        )
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
    return _record_success(payment, result)


def refund_payment(*, order_id: int) -> Payment:
    """Refund a succeeded payment in full (idempotent: the refund has its own key).

    Raises ProviderUnavailable or CircuitOpen when the provider cannot be reached.
    """
    payment = Payment.objects.get(order_id=order_id)
    if payment.status == PaymentStatus.REFUNDED:
        return payment
    if payment.status != PaymentStatus.SUCCEEDED:
        return payment
    with _provider_guard(), _provider_call("refund"):
        refund = get_gateway().refund(
            charge_id=payment.provider_charge_id,
            amount=payment.amount,
            idempotency_key=f"refund-{payment.idempotency_key}",
        )
    Payment.objects.filter(pk=payment.pk, status=PaymentStatus.SUCCEEDED).update(
        status=PaymentStatus.REFUNDED,
        provider_refund_id=refund.refund_id,
        updated_at=timezone.now(),
    )
    payment.refresh_from_db()
    logger.info("payment_refunded", order_id=order_id, refund_id=refund.refund_id)
    return payment


def reconcile_payments(*, now: Any = None) -> dict[str, int]:
    """Settle payments stuck in doubt: ask the provider by idempotency key first.

    A pending payment of a pending order whose last attempt is older than
    PAYMENT_RECONCILE_AFTER_SECONDS is looked up: a charge found is recorded (paid or
    declined); none found means no charge happened, so the charge is requested again.
    """
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.PAYMENT_RECONCILE_AFTER_SECONDS)
    stuck = Payment.objects.filter(
        status=PaymentStatus.PENDING,
        order__status=OrderStatus.PENDING_PAYMENT,
        attempts__gt=0,
        last_attempt_at__lt=cutoff,
    ).order_by("pk")[: settings.PAYMENT_RECONCILE_BATCH_SIZE]
    outcome = {"paid": 0, "declined": 0, "requeued": 0}
    for payment in stuck:
        with _provider_guard(), _provider_call("find_charge"):
            found = get_gateway().find_charge(idempotency_key=payment.idempotency_key)
        if found is None:
            with transaction.atomic():
                outbox.publish(CHARGE_REQUESTED, {"order_id": payment.order_id})
            outcome["requeued"] += 1
        elif found.status == "succeeded":
            _record_success(payment, found)
            outcome["paid"] += 1
        else:
            _record_decline(
                payment,
                PaymentDeclined(
                    decline_code=found.decline_code or "declined", charge_id=found.charge_id
                ),
            )
            outcome["declined"] += 1
    if any(outcome.values()):
        logger.info("payments_reconciled", **outcome)
    return outcome
