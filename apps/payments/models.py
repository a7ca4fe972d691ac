"""Payments: one per order, with the key that makes every provider call idempotent."""

from __future__ import annotations

import uuid

from django.db import models

from ecommerce.models import TimeStampedModel


class PaymentStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    DECLINED = "declined", "Declined"
    # Given up without a charge: the provider kept failing (PAYMENT_MAX_ATTEMPTS_PER_PAYMENT
    # calls, or the charge task's retries ran out) and has no charge under the key.
    FAILED = "failed", "Failed"
    REFUNDED = "refunded", "Refunded"


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

    class Meta:
        indexes = [models.Index(fields=["status", "updated_at"], name="payments_status_idx")]

    def __str__(self) -> str:
        return f"{self.idempotency_key} ({self.status})"

    @staticmethod
    def key_for(order_public_id: uuid.UUID | str) -> str:
        """The idempotency key of an order's payment: one per order, known before the row
        exists, so the provider can be asked about an order whose payment is not open yet."""
        return f"order-{order_public_id}"
