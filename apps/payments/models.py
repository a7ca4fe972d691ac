"""Payments: one per order, with the key that makes every provider call idempotent, and the
money ledger: one append-only row per movement of money at the provider."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from ecommerce.models import TimeStampedModel


class PaymentStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    DECLINED = "declined", "Declined"
    # Given up without a charge: the provider kept failing (PAYMENT_MAX_ATTEMPTS_PER_PAYMENT
    # calls, or the charge task's retries ran out) and has no charge under the key.
    FAILED = "failed", "Failed"
    REFUNDED = "refunded", "Refunded"
    # The provider waits for the customer's action (3-D Secure); `next_action_url`.
    ACTION_REQUIRED = "action_required", "Action required"
    # Held on the card, not captured (capture at fulfilment).
    AUTHORIZED = "authorized", "Authorized"
    # The authorization (or the charge waiting for its customer) was released uncaptured.
    VOIDED = "voided", "Voided"
    # The provider refused the capture for good (the authorization expired): the order
    # was fulfilled and nothing was taken; staff collect it another way.
    CAPTURE_FAILED = "capture_failed", "Capture failed"


class CaptureMode(models.TextChoices):
    """When a payment's money is taken (PAYMENT_CAPTURE_MODE, fixed when it is opened)."""

    IMMEDIATE = "immediate", "At placement"
    FULFILMENT = "fulfilment", "At fulfilment"


class Payment(TimeStampedModel):
    order = models.OneToOneField("orders.Order", on_delete=models.PROTECT, related_name="payment")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    status = models.CharField(
        max_length=16, choices=PaymentStatus.choices, default=PaymentStatus.PENDING
    )
    # A single-use provider token (never a card number); never logged, never shown.
    token = models.CharField(max_length=255)
    idempotency_key = models.CharField(max_length=255, unique=True)
    provider_charge_id = models.CharField(max_length=64, blank=True)
    provider_refund_id = models.CharField(max_length=64, blank=True)
    decline_code = models.CharField(max_length=64, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    # Fixed when the payment is opened, so every retry under its key asks the provider the
    # same thing (the key's fingerprint includes it) whatever the setting says later.
    capture_mode = models.CharField(
        max_length=16,
        choices=CaptureMode.choices,
        default=CaptureMode.IMMEDIATE,
        db_default=CaptureMode.IMMEDIATE,
    )
    # Where the customer finishes an action_required charge (the provider's redirect page).
    next_action_url = models.URLField(max_length=2048, blank=True, db_default="")
    # What was captured (all of `amount`, or the part that shipped); 0 before.
    amount_captured = models.DecimalField(max_digits=12, decimal_places=2, default=0, db_default=0)

    class Meta:
        indexes = [models.Index(fields=["status", "updated_at"], name="payments_status_idx")]

    def __str__(self) -> str:
        return f"{self.idempotency_key} ({self.status})"

    @staticmethod
    def key_for(order_public_id: uuid.UUID | str) -> str:
        """The idempotency key of an order's payment: one per order, known before the row
        exists, so the provider can be asked about an order whose payment is not open yet."""
        return f"order-{order_public_id}"


class MoneyMovementKind(models.TextChoices):
    AUTHORIZATION = "authorization", "Authorization"
    CAPTURE = "capture", "Capture"
    VOID = "void", "Void"
    REFUND = "refund", "Refund"


class MoneyMovement(models.Model):
    """One movement of money at the provider, written in the transaction of the state it
    justifies; append-only (a database trigger refuses UPDATE and DELETE: migration 0003).

    Per order, captures minus refunds equal what the order says was paid
    (`payments.money_ledger`). A charge today is one provider call that authorizes and
    captures at once: it is recorded as one "capture" under the charge id, the only
    movement the provider reports for it. Authorization and void rows come with separate
    authorize and capture calls, each under its own provider reference; an authorization
    moves no money to us, so the invariant counts captures and refunds only.

    The same provider movement is recorded once: (kind, provider_reference) is unique, so
    two paths recording it at once (a task and a sweep) leave one row.
    """

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="movements")
    # The order's own column (not only through the payment), so the per-order sums are one
    # indexed aggregate.
    order = models.ForeignKey(
        "orders.Order", on_delete=models.PROTECT, related_name="money_movements"
    )
    kind = models.CharField(max_length=16, choices=MoneyMovementKind.choices)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    # The provider's id of this movement: the charge id of a capture, the refund id of a refund.
    provider_reference = models.CharField(max_length=64)
    reason = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("created_at", "pk")
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "provider_reference"], name="payments_movement_once"
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="payments_movement_amount_gt_0"),
            models.CheckConstraint(
                condition=Q(kind__in=MoneyMovementKind.values), name="payments_movement_kind"
            ),
            models.CheckConstraint(
                condition=~Q(provider_reference=""), name="payments_movement_reference"
            ),
        ]
        indexes = [
            models.Index(fields=["created_at"], name="payments_movement_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} {self.currency} ({self.provider_reference})"


class ProviderEvent(models.Model):
    """One event a payment provider sent to our webhook endpoint, stored once.

    (provider, event_id) is unique, so a delivery repeated by the provider (a retry after a
    lost answer, a duplicate) finds the row of the first and changes nothing. The row is
    written in the transaction that applies the event (`payments.webhooks`): an event is
    stored exactly when it has been applied, or found to need nothing (`outcome` says
    which), so a failure while applying stores nothing and the provider's retry applies it.
    """

    provider = models.CharField(max_length=32)
    event_id = models.CharField(max_length=255)
    type = models.CharField(max_length=64)
    # The provider's own time of the event (its `created`), for ordering when reading.
    created_at_provider = models.DateTimeField()
    payload = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    # What applying it did: "paid", "declined", "refunded", "already_recorded",
    # "unknown_payment", ... (low-cardinality, also a metric label).
    outcome = models.CharField(max_length=32, blank=True)

    class Meta:
        ordering = ("-received_at", "-pk")
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "event_id"], name="payments_provider_event_once"
            ),
        ]
        indexes = [models.Index(fields=["received_at"], name="payments_event_received_idx")]

    def __str__(self) -> str:
        return f"{self.provider} {self.type} {self.event_id}"


class RefundStatus(models.TextChoices):
    # Reserved (counted against what is refundable) and not answered yet by the provider:
    # the refund call runs after the reservation commits; the payment sweep finishes it.
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    # The provider refused it for good: the reservation is released.
    FAILED = "failed", "Failed"


class RefundOrigin(models.TextChoices):
    STAFF = "staff", "Staff refund"
    # What was left of a cancelled paid order's payment (orders' `order.refund_requested`).
    CANCELLATION = "cancellation", "Cancellation"
    # Money taken for an order that cannot be honoured (it ended unpaid while the capture
    # was in flight): refunded by the system, never by a person.
    COMPENSATION = "compensation", "Compensation"
    # Made at the provider without us asking (its dashboard, a dispute): reported by its
    # webhook and recorded so the ledger and the order still add up.
    PROVIDER = "provider", "Refunded at the provider"
    RETURN = "return", "Return"


class Refund(TimeStampedModel):
    """One refund of part or all of a payment's captured money.

    Reserved before the provider is called: under the payment's row lock, its amount must
    fit in what is refundable (captures minus refunds in the ledger minus pending refunds),
    so refunds asked at once can never add up to more than was captured. The provider gets
    the refund's own idempotency key; its success writes the ledger row and lowers what
    the order says was paid, in one transaction.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="refunds")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    status = models.CharField(
        max_length=16, choices=RefundStatus.choices, default=RefundStatus.PENDING
    )
    origin = models.CharField(max_length=16, choices=RefundOrigin.choices)
    # `refund-<uuid>`: the provider refunds at most once under it, however often we ask.
    idempotency_key = models.CharField(max_length=255, unique=True)
    # The API client's Idempotency-Key, if it sent one: a retried request finds this row.
    request_key = models.CharField(max_length=255, blank=True, default="")
    provider_refund_id = models.CharField(max_length=64, blank=True)
    reason = models.CharField(max_length=255)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    last_error = models.TextField(blank=True)
    # The return this refund pays back (origin `return`); its success marks the return
    # refunded in the same transaction (apps.payments.return_refunds).
    order_return = models.ForeignKey(
        "orders.Return",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="refunds",
    )

    class Meta:
        ordering = ("created_at", "pk")
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payments_refund_amount_gt_0"),
            # A return is refunded once: a second refund may be asked only after the first
            # failed (the provider refused it).
            models.UniqueConstraint(
                fields=["order_return"],
                condition=Q(order_return__isnull=False)
                & Q(status__in=[RefundStatus.PENDING, RefundStatus.SUCCEEDED]),
                name="payments_refund_one_live_per_return",
            ),
            models.CheckConstraint(
                condition=Q(status__in=RefundStatus.values), name="payments_refund_status"
            ),
            models.UniqueConstraint(
                fields=["order", "request_key"],
                condition=~Q(request_key=""),
                name="payments_refund_request_once",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "updated_at"], name="payments_refund_status_idx"),
        ]
        permissions = [
            ("refund_payment", "Can refund part or all of an order's payment"),
        ]

    def __str__(self) -> str:
        return f"refund {self.amount} {self.currency} ({self.status})"
