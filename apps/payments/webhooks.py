"""Provider webhooks in: verify a delivery, store its event once, apply it.

A provider tells us what happened to a charge through signed events that may arrive before
the charge task's own answer, after it, instead of it (the answer was lost), twice, or out
of order. Each is handled so that every such arrival leaves one state:

- The signature is the authentication. The provider signs `<timestamp>.<body>` with
  HMAC-SHA256 under a secret we share (PAYMENT_WEBHOOK_SECRET) and sends
  `Sandbox-Signature: t=<unix seconds>,v1=<hex>` (Stripe's scheme; several `v1` are
  allowed while a secret is rotated). The digest is compared in constant time, then the
  timestamp must lie within PAYMENT_WEBHOOK_TOLERANCE_SECONDS of our clock, either way:
  a delivery captured and replayed later is refused, as is one dated ahead.
- An event is stored once: (provider, event id) is unique in `ProviderEvent`. The row is
  inserted in the transaction that applies the event, so a repeated delivery waits for the
  first to commit and finds it (200, nothing done), and a failure while applying stores
  nothing (the provider's retry applies it).
- Applying goes through `apps.payments.services` (`apply_charge_event`,
  `apply_refund_event`): the code the charge task and the sweeps use, under the payment's
  row lock, each step a no-op when the state already says it.
- An event about a payment we do not know is stored and answered 200 (logged): retrying
  cannot help, and `reconcile_payments` asks the provider about every payment of ours.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.payments import services
from apps.payments.exceptions import (
    ProviderEventDeferred,
    RefundRefused,
    WebhookPayloadInvalid,
    WebhookProviderUnknown,
    WebhookRefused,
    WebhookSignatureInvalid,
    WebhookTimestampOutOfTolerance,
)
from apps.payments.gateway import ChargeResult, ChargeStatus, RefundResult
from apps.payments.models import Payment, ProviderEvent
from ecommerce.observability.logging import get_logger
from ecommerce.observability.metrics import PAYMENT_WEBHOOK_EVENTS

logger = get_logger(__name__)

# Each provider that sends us webhooks, with its signature header (Django's META name).
PROVIDERS: dict[str, str] = {"sandbox": "HTTP_SANDBOX_SIGNATURE"}
SIGNATURE_SCHEME = "v1"
MAX_BODY_BYTES = 64 * 1024
CHARGE_EVENTS = {"charge.succeeded": ChargeStatus.SUCCEEDED, "charge.failed": ChargeStatus.DECLINED}
REFUND_EVENTS = frozenset({"refund.succeeded"})


@dataclass(frozen=True)
class Receipt:
    """What receiving one delivery did: its stored event, and whether it was new."""

    event: ProviderEvent
    duplicate: bool


def signature_header(provider: str) -> str:
    """The META key of `provider`'s signature header. Raises WebhookProviderUnknown."""
    try:
        return PROVIDERS[provider]
    except KeyError:
        raise WebhookProviderUnknown(provider=provider) from None


def sign(*, secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of `<timestamp>.<body>` under `secret`: what `v1` carries."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify_signature(
    *, header: str | None, body: bytes, secret: str, tolerance_seconds: int, now: float
) -> int:
    """Check a `t=<unix>,v1=<hex>` header against `body`; return its timestamp.

    Raises WebhookSignatureInvalid (no secret configured, header missing or malformed, no
    `v1` matching) and WebhookTimestampOutOfTolerance (signed more than `tolerance_seconds`
    before or after `now`). The signature is checked first, so an unsigned caller learns
    nothing about our clock.
    """
    if not secret:
        logger.error("payment_webhook_secret_unset")
        raise WebhookSignatureInvalid("No webhook secret is configured: every delivery is refused.")
    if not header:
        raise WebhookSignatureInvalid("The signature header is missing.")
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isascii() and value.isdigit() and len(value) <= 12:
            timestamp = int(value)
        elif name == SIGNATURE_SCHEME and value:
            signatures.append(value)
    if timestamp is None or not signatures:
        raise WebhookSignatureInvalid("The signature header is malformed.")
    expected = sign(secret=secret, timestamp=timestamp, body=body)
    # Every candidate is compared (no early exit), each in constant time.
    matched = False
    for candidate in signatures:
        matched |= hmac.compare_digest(expected.encode(), candidate.encode("utf-8", "replace"))
    if not matched:
        raise WebhookSignatureInvalid("No signature matches the body.")
    if abs(now - timestamp) > tolerance_seconds:
        raise WebhookTimestampOutOfTolerance(
            f"The signature's timestamp is more than {tolerance_seconds} seconds away from now."
        )
    return timestamp


@dataclass(frozen=True)
class ParsedEvent:
    event_id: str
    type: str
    created: datetime
    payload: dict[str, Any]
    data: dict[str, Any]


def _text(data: dict[str, Any], name: str, *, max_length: int = 255) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value or len(value) > max_length:
        raise WebhookPayloadInvalid(f"`{name}` must be a non-empty string of at most {max_length}.")
    return value


def _amount(data: dict[str, Any]) -> Decimal:
    value = data.get("amount")
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise WebhookPayloadInvalid("`amount` must be a decimal string.")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise WebhookPayloadInvalid("`amount` is not a number.") from None
    if not amount.is_finite() or amount <= 0:
        raise WebhookPayloadInvalid("`amount` must be a positive number.")
    return amount


def parse_event(body: bytes) -> ParsedEvent:
    """Read a verified body as an event. Raises WebhookPayloadInvalid."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise WebhookPayloadInvalid("The body is not JSON.") from None
    if not isinstance(payload, dict):
        raise WebhookPayloadInvalid("The body must be a JSON object.")
    if "\\u0000" in body.decode("utf-8", "replace"):
        # PostgreSQL's jsonb cannot hold NUL characters.
        raise WebhookPayloadInvalid("The body contains a NUL character.")
    created = payload.get("created")
    if isinstance(created, bool) or not isinstance(created, int) or not 0 <= created < 2**33:
        raise WebhookPayloadInvalid("`created` must be a Unix timestamp.")
    data = payload.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        raise WebhookPayloadInvalid("`data.object` must be a JSON object.")
    return ParsedEvent(
        event_id=_text(payload, "id"),
        type=_text(payload, "type", max_length=64),
        created=datetime.fromtimestamp(created, tz=UTC),
        payload=payload,
        data=obj,
    )


def _charge(data: dict[str, Any], status: ChargeStatus) -> ChargeResult:
    decline_code = data.get("decline_code")
    return ChargeResult(
        charge_id=_text(data, "id", max_length=64),
        status=status,
        amount=_amount(data),
        currency=_text(data, "currency", max_length=3),
        decline_code=decline_code if isinstance(decline_code, str) else None,
    )


def _refund(data: dict[str, Any]) -> RefundResult:
    return RefundResult(
        refund_id=_text(data, "id", max_length=64),
        charge_id=_text(data, "charge", max_length=64),
        status=_text(data, "status", max_length=32),
        amount=_amount(data),
        currency=_text(data, "currency", max_length=3),
    )


def _apply(provider: str, event: ParsedEvent) -> tuple[str, int | None]:
    """Apply one event inside the caller's transaction; (outcome, order id to refund late)."""
    source = f"{provider} event {event.event_id}"
    if event.type in CHARGE_EVENTS:
        charge = _charge(event.data, CHARGE_EVENTS[event.type])
        outcome = services.apply_charge_event(
            charge=charge, idempotency_key=_text(event.data, "idempotency_key"), source=source
        )
        if outcome == "late_charge":
            order_ids = Payment.objects.filter(
                idempotency_key=event.data["idempotency_key"]
            ).values_list("order_id", flat=True)
            return outcome, order_ids.first()
        return outcome, None
    if event.type in REFUND_EVENTS:
        key = event.data.get("charge_idempotency_key")
        refund_key = event.data.get("idempotency_key")
        outcome = services.apply_refund_event(
            refund=_refund(event.data),
            charge_idempotency_key=key if isinstance(key, str) and key else None,
            event_id=event.event_id,
            source=source,
            refund_key=refund_key if isinstance(refund_key, str) and refund_key else None,
        )
        return outcome, None
    return "ignored", None


def _event_type_label(body: bytes) -> str:
    """The event type a refused delivery claims, for the metric only: one of the types we
    apply, else `other`/`unknown`, so a forged body cannot mint label values."""
    try:
        claimed = json.loads(body).get("type")
    except (UnicodeDecodeError, ValueError, AttributeError):
        return "unknown"
    if claimed in CHARGE_EVENTS or claimed in REFUND_EVENTS:
        return str(claimed)
    return "other" if isinstance(claimed, str) else "unknown"


def receive_event(*, provider: str, body: bytes, signature: str | None) -> Receipt:
    """Verify a delivery, then store and apply its event once; return what was done.

    Every delivery of a known provider is counted (`ecommerce_payment_webhook_events_total`
    by provider, type and outcome: what applying did, `duplicate`, `deferred`, or
    `refused`). Raises WebhookProviderUnknown, WebhookSignatureInvalid,
    WebhookTimestampOutOfTolerance, WebhookPayloadInvalid (nothing stored), and
    ProviderEventDeferred (an event that cannot be applied yet: nothing stored, the
    provider delivers it again later).
    """
    signature_header(provider)
    try:
        receipt = _receive(provider=provider, body=body, signature=signature)
    except WebhookRefused:
        PAYMENT_WEBHOOK_EVENTS.labels(provider, _event_type_label(body), "refused").inc()
        raise
    except ProviderEventDeferred:
        PAYMENT_WEBHOOK_EVENTS.labels(provider, _event_type_label(body), "deferred").inc()
        raise
    event = receipt.event
    outcome = "duplicate" if receipt.duplicate else event.outcome
    type_label = (
        event.type if event.type in CHARGE_EVENTS or event.type in REFUND_EVENTS else "other"
    )
    PAYMENT_WEBHOOK_EVENTS.labels(provider, type_label, outcome).inc()
    return receipt


def _receive(*, provider: str, body: bytes, signature: str | None) -> Receipt:
    verify_signature(
        header=signature,
        body=body,
        secret=settings.PAYMENT_WEBHOOK_SECRET,
        tolerance_seconds=settings.PAYMENT_WEBHOOK_TOLERANCE_SECONDS,
        now=time.time(),
    )
    event = parse_event(body)
    late_order_id: int | None = None
    with transaction.atomic():
        try:
            with transaction.atomic():
                stored = ProviderEvent.objects.create(
                    provider=provider,
                    event_id=event.event_id,
                    type=event.type,
                    created_at_provider=event.created,
                    payload=event.payload,
                )
        except IntegrityError:
            stored = None
        if stored is None:
            existing = ProviderEvent.objects.get(provider=provider, event_id=event.event_id)
            logger.info("provider_event_duplicate", provider=provider, event_id=event.event_id)
            return Receipt(event=existing, duplicate=True)
        outcome, late_order_id = _apply(provider, event)
        stored.processed_at = timezone.now()
        stored.outcome = outcome
        stored.save(update_fields=["processed_at", "outcome"])
    logger.info(
        "provider_event_applied",
        provider=provider,
        event_id=event.event_id,
        type=event.type,
        outcome=outcome,
    )
    if late_order_id is not None:
        _refund_late_charge(late_order_id)
    return Receipt(event=stored, duplicate=False)


def _refund_late_charge(order_id: int) -> None:
    """Refund a charge that landed on an order that ended unpaid; when the provider cannot
    do it now, `reconcile_payments` does it later (the payment stays succeeded)."""
    try:
        services.refund_payment(order_id=order_id, reason="late charge reported by the provider")
    except (*services.PROVIDER_DOWN, RefundRefused) as exc:
        logger.warning("payment_late_refund_deferred", order_id=order_id, error=type(exc).__name__)
