"""The project's base Celery task (`task_cls`): infrastructure retries and outbox completion.

Every task of the project gets this class (ecommerce/celery.py sets it as the app's
`task_cls`, so `@shared_task` needs no `base=`):

- Transient infrastructure errors (`TRANSIENT_INFRASTRUCTURE_ERRORS`: PostgreSQL, Redis,
  the broker unreachable) raised by a task's body are retried with capped, jittered
  exponential backoff through Celery's own `autoretry_for` / `retry_backoff` /
  `retry_jitter`. A task that delivers an outbox message retries them without limit: they
  are never acknowledged as its final failure. Other tasks (the periodic jobs, which beat
  runs again anyway) keep their `max_retries`. A task's own retries (provider errors) stay
  as the task wrote them.
- A task that delivers an outbox message (the `outbox_message_id` header, which Celery
  copies into every retry: `Task.retry` re-sends `request.headers` through
  `signature_from_request` / `Context.as_execution_options`) marks that row completed when
  its body has returned without raising, and only then: one UPDATE. Until then the relay
  re-sends the row whenever its lease runs out. Consumers are idempotent by effect (a
  charge by the order's state and the provider's idempotency key, a notification by its
  dedup key, a delivery by its status), so this at-least-once delivery has exactly-once
  effects.
- A retry extends the row's lease past its countdown, so the relay does not re-send a
  message that is merely waiting. A countdown longer than
  OUTBOX_MAX_BROKER_COUNTDOWN_SECONDS never lives in the broker as an ETA message (one
  held by a worker that dies waits out the broker's visibility timeout): the row's lease
  becomes the schedule, the message is acknowledged, and the relay re-sends it when due,
  with its retry count.

Eager runs (embedded mode, most tests) complete rows the same way; a transient error is
not retried in-process there (Celery would re-run it at once, recursively): it propagates
to the hand-off, which leaves the row to the relay.
"""

from __future__ import annotations

import contextlib
import math
import sys
from datetime import datetime, timedelta
from typing import Any

import celery
from celery.exceptions import Ignore
from django.conf import settings
from django.utils import timezone

from ecommerce import audit
from ecommerce.brokers import is_rabbitmq_url
from ecommerce.observability.logging import get_logger
from ecommerce.outbox import registry
from ecommerce.resilience.retry import TRANSIENT_INFRASTRUCTURE_ERRORS

logger = get_logger(__name__)

# Celery compares `retries > max_retries`; this bound is never reached.
_UNLIMITED_RETRIES = sys.maxsize


def outbox_message_id(request: Any) -> int | None:
    """The outbox row a task request delivers, from its headers; None for other tasks."""
    headers = getattr(request, "headers", None) or {}
    value = headers.get(registry.MESSAGE_ID_HEADER)
    if value is None:
        value = getattr(request, registry.MESSAGE_ID_HEADER, None)
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def _delay_seconds(*, eta: datetime | None, countdown: float | None, default: float) -> float:
    if eta is not None:
        return max(0.0, (eta - timezone.now()).total_seconds())
    return float(default if countdown is None else countdown)


def _whole_broker_seconds(
    broker_url: Any, *, eta: datetime | None, countdown: float | None
) -> tuple[datetime | None, float | None]:
    """On RabbitMQ, a retry's wait as a whole number of seconds, rounded up; else as given.

    There a countdown waits in the broker (Celery's native delayed delivery, quorum queues),
    which counts whole seconds: Celery truncates the countdown (or an ETA's distance) to an
    int and refuses one under a second with a ValueError.
    """
    if not (isinstance(broker_url, str) and is_rabbitmq_url(broker_url)):
        return eta, countdown
    if eta is not None:
        countdown = (eta - timezone.now()).total_seconds()
        eta = None
    if countdown is not None and countdown > 0:
        countdown = float(max(1, math.ceil(countdown)))
    return eta, countdown


def _describe(exc: BaseException | None) -> str:
    return "" if exc is None else f"{type(exc).__name__}: {exc}"


class Task(celery.Task):  # type: ignore[misc]
    autoretry_for = TRANSIENT_INFRASTRUCTURE_ERRORS
    retry_backoff = settings.TASK_TRANSIENT_RETRY_BASE_SECONDS
    retry_backoff_max = settings.TASK_TRANSIENT_RETRY_CAP_SECONDS
    retry_jitter = True

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # Worker code acts for nobody: run eagerly inside a staff request, it must not be
        # recorded as that staff member's change (ecommerce/audit.py).
        with audit.without_actor():
            return super().__call__(*args, **kwargs)

    def on_success(self, retval: Any, task_id: str, args: Any, kwargs: Any) -> None:
        message_id = outbox_message_id(self.request)
        if message_id is None:
            return
        try:
            registry.mark_completed(message_id)
        except TRANSIENT_INFRASTRUCTURE_ERRORS as exc:
            # The effect is committed; the relay re-sends after the lease and the second
            # run finds nothing to do, then records the completion.
            logger.warning(
                "outbox_completion_unrecorded", message_id=message_id, error=_describe(exc)
            )

    def on_failure(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        message_id = outbox_message_id(self.request)
        if message_id is None:
            return
        # Only a note for operators: the lease brings the message back regardless.
        with contextlib.suppress(*TRANSIENT_INFRASTRUCTURE_ERRORS):
            registry.record_failure(message_id, error=_describe(exc))

    def retry(
        self,
        args: Any = None,
        kwargs: Any = None,
        exc: BaseException | None = None,
        throw: bool = True,
        eta: datetime | None = None,
        countdown: float | None = None,
        max_retries: int | None = None,
        **options: Any,
    ) -> Any:
        """Celery's retry, with the outbox row's lease kept in step (see the module doc).

        Raises Ignore (the message is acknowledged) when the retry is deferred to the
        relay, `exc` itself for a transient error in an eager run, else what Celery raises.
        """
        request = self.request
        if request.is_eager and isinstance(exc, TRANSIENT_INFRASTRUCTURE_ERRORS):
            raise exc
        delay = _delay_seconds(eta=eta, countdown=countdown, default=self.default_retry_delay)
        message_id = None if request.called_directly else outbox_message_id(request)
        if request.called_directly:
            pass  # Celery re-raises: nothing was delivered
        elif request.is_eager:
            if message_id is not None:
                # Celery replays an eager retry at once, or (task_eager_propagates) raises
                # it to the hand-off, which leaves the row as recorded here for the relay.
                with contextlib.suppress(*TRANSIENT_INFRASTRUCTURE_ERRORS):
                    registry.extend_lease(
                        message_id,
                        until=timezone.now() + timedelta(seconds=delay),
                        retries=request.retries + 1,
                        error=_describe(exc),
                    )
        elif message_id is not None:
            if isinstance(exc, TRANSIENT_INFRASTRUCTURE_ERRORS):
                max_retries = _UNLIMITED_RETRIES
            countdown = self._keep_lease(
                message_id, retries=request.retries + 1, delay=delay, exc=exc
            )
            eta = None
        elif delay > settings.OUTBOX_MAX_BROKER_COUNTDOWN_SECONDS:
            # No row to hold a long wait: a shorter countdown rather than an ETA message
            # that outlives the broker's visibility timeout.
            logger.warning("retry_countdown_capped", task=self.name, delay_seconds=delay)
            eta, countdown = None, settings.OUTBOX_MAX_BROKER_COUNTDOWN_SECONDS
        eta, countdown = _whole_broker_seconds(
            self.app.conf.broker_url, eta=eta, countdown=countdown
        )
        try:
            return super().retry(
                args=args,
                kwargs=kwargs,
                exc=exc,
                throw=throw,
                eta=eta,
                countdown=countdown,
                max_retries=max_retries,
                **options,
            )
        finally:
            # Celery leaves an override on the task object for autoretry to pick up; it
            # must not outlive this request.
            self.__dict__.pop("override_max_retries", None)

    def _keep_lease(
        self, message_id: int, *, retries: int, delay: float, exc: BaseException | None
    ) -> float:
        """Extend the row's lease past the retry, or defer a long retry to the relay.

        Returns the countdown to publish the retry with. Raises Ignore when the row now
        holds the retry (its lease is the schedule).
        """
        now = timezone.now()
        ceiling = settings.OUTBOX_MAX_BROKER_COUNTDOWN_SECONDS
        if delay > ceiling:
            try:
                deferred = registry.extend_lease(
                    message_id,
                    until=now + timedelta(seconds=delay),
                    retries=retries,
                    error=_describe(exc),
                )
            except TRANSIENT_INFRASTRUCTURE_ERRORS as db_exc:
                logger.warning(
                    "outbox_retry_not_deferred", message_id=message_id, error=_describe(db_exc)
                )
            else:
                if deferred:
                    logger.info(
                        "outbox_retry_deferred",
                        message_id=message_id,
                        task=self.name,
                        retries=retries,
                        delay_seconds=round(delay, 3),
                    )
                    raise Ignore()
            # Not recorded (database down, or the row is gone): a shorter broker countdown
            # beats losing the retry.
            delay = float(ceiling)
        try:
            registry.extend_lease(
                message_id,
                until=now + timedelta(seconds=delay + registry.lease_seconds(1)),
                retries=retries,
                error=_describe(exc),
            )
        except TRANSIENT_INFRASTRUCTURE_ERRORS as db_exc:
            # The old lease may run out while the retry waits: the relay then sends a
            # duplicate, which the idempotent consumer absorbs.
            logger.warning(
                "outbox_lease_not_extended", message_id=message_id, error=_describe(db_exc)
            )
        return delay
