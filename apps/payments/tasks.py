"""Payment tasks: ids in, a service call, retries only for what can recover."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.conf import settings

from apps.payments import services
from apps.payments.exceptions import ProviderUnavailable
from ecommerce.observability.logging import get_logger
from ecommerce.resilience.exceptions import CircuitOpen
from ecommerce.resilience.retry import payment_retry_policy

logger = get_logger(__name__)


@shared_task(
    bind=True,
    name="payments.charge_payment",
    acks_late=True,
    max_retries=None,
    soft_time_limit=60,
    time_limit=90,
)
def charge_payment_task(self: Any, order_id: int) -> str:
    """Charge an order. Transient provider errors and an open breaker are retried with
    backoff; after the last attempt the order stays pending_payment for reconciliation.

    A run that finds the order's charge lock taken ("busy") looks again once that lock has
    expired: its holder is a duplicate still charging (the next look finds nothing to do),
    or a run whose process died holding it, whose message task_reject_on_worker_lost has
    handed straight back, to this very run.
    """
    try:
        outcome = services.charge_payment(order_id=order_id)
    except (ProviderUnavailable, CircuitOpen) as exc:
        policy = payment_retry_policy()
        attempt = self.request.retries
        if policy.exhausted(attempt + 1):
            logger.error("payment_retries_exhausted", order_id=order_id, attempts=attempt + 1)
            return "gave_up"
        countdown = policy.countdown(attempt)
        if isinstance(exc, CircuitOpen):
            countdown = max(countdown, exc.retry_after_seconds)
        raise self.retry(exc=exc, countdown=countdown) from exc
    if outcome == "busy" and not payment_retry_policy().exhausted(self.request.retries + 1):
        raise self.retry(countdown=settings.PAYMENT_LOCK_TTL_SECONDS)
    return outcome


@shared_task(
    name="payments.reconcile_payments", acks_late=True, soft_time_limit=240, time_limit=300
)
def reconcile_payments_task() -> dict[str, int]:
    return services.reconcile_payments()
