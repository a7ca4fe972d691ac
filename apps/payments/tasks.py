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
    """Charge an order, opening its payment first: the handler of `order.placed` and of a
    staff retry. Transient provider errors and an open breaker are retried with backoff.
    After the last retry the order is ended cleanly: the provider is asked by key,
    a charge it made is recorded, none fails the order (stock back); only when it cannot
    even be asked does the order stay pending, for `reconcile_payments`.

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
            try:
                return services.give_up_charge(order_id=order_id, attempts=attempt + 1)
            except (ProviderUnavailable, CircuitOpen):
                return "gave_up"
        countdown = policy.countdown(attempt)
        if isinstance(exc, CircuitOpen):
            countdown = max(countdown, exc.retry_after_seconds)
        raise self.retry(exc=exc, countdown=countdown) from exc
    if outcome == "busy" and not payment_retry_policy().exhausted(self.request.retries + 1):
        raise self.retry(countdown=settings.PAYMENT_LOCK_TTL_SECONDS)
    return outcome


@shared_task(
    bind=True,
    name="payments.refund_order",
    acks_late=True,
    max_retries=None,
    soft_time_limit=60,
    time_limit=90,
)
def refund_order_task(
    self: Any, order_id: int, actor_id: int | None = None, reason: str = "refunded"
) -> str:
    """Refund an order whose refund the orders app claimed (`order.refund_requested`).

    Transient provider errors are retried with backoff; after the last retry the order
    stays refunding and `reconcile_payments` finishes it.
    """
    try:
        return services.refund_order_payment(order_id=order_id, actor_id=actor_id, reason=reason)
    except (ProviderUnavailable, CircuitOpen) as exc:
        policy = payment_retry_policy()
        if policy.exhausted(self.request.retries + 1):
            logger.error("refund_retries_exhausted", order_id=order_id)
            return "left_for_sweep"
        countdown = policy.countdown(self.request.retries)
        if isinstance(exc, CircuitOpen):
            countdown = max(countdown, exc.retry_after_seconds)
        raise self.retry(exc=exc, countdown=countdown) from exc


def _lifecycle_step(task: Any, step: str, run: Any, order_id: int) -> str:
    """Run a capture or void; transient provider errors are retried with backoff, and after
    the last retry `reconcile_payments` finishes it (same key: never twice)."""
    try:
        return str(run())
    except (ProviderUnavailable, CircuitOpen) as exc:
        policy = payment_retry_policy()
        if policy.exhausted(task.request.retries + 1):
            logger.error(f"{step}_retries_exhausted", order_id=order_id)
            return "left_for_sweep"
        countdown = policy.countdown(task.request.retries)
        if isinstance(exc, CircuitOpen):
            countdown = max(countdown, exc.retry_after_seconds)
        raise task.retry(exc=exc, countdown=countdown) from exc


@shared_task(
    bind=True,
    name="payments.capture_payment",
    acks_late=True,
    max_retries=None,
    soft_time_limit=60,
    time_limit=90,
)
def capture_payment_task(self: Any, order_id: int) -> str:
    """Capture what a fulfilled order shipped (`order.fulfilled`); a no-op for an order
    charged at placement."""
    return _lifecycle_step(
        self, "capture", lambda: services.capture_payment(order_id=order_id), order_id
    )


@shared_task(
    bind=True,
    name="payments.void_payment",
    acks_late=True,
    max_retries=None,
    soft_time_limit=60,
    time_limit=90,
)
def void_payment_task(self: Any, order_id: int) -> str:
    """Void the authorization of an order that ended unpaid (`order.cancelled`,
    `order.expired`); a no-op when it holds none."""
    return _lifecycle_step(
        self,
        "void",
        lambda: services.void_payment(order_id=order_id, reason="order ended unpaid"),
        order_id,
    )


@shared_task(
    name="payments.reconcile_payments", acks_late=True, soft_time_limit=240, time_limit=300
)
def reconcile_payments_task() -> dict[str, int]:
    return services.reconcile_payments()


@shared_task(name="payments.expire_orders", acks_late=True, soft_time_limit=240, time_limit=300)
def expire_orders_task() -> dict[str, int]:
    """Expire overdue unpaid orders, each after asking the provider (so it runs here)."""
    return services.expire_overdue_orders()


@shared_task(
    name="orders.expire_orders",
    queue="payments",
    acks_late=True,
    soft_time_limit=240,
    time_limit=300,
)
def legacy_expire_orders_task() -> dict[str, int]:
    """The name a beat of an earlier release still sends during a rolling deploy."""
    return services.expire_overdue_orders()
