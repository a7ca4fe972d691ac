"""Payments admin: read-only; money moves only through the payment services."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from apps.payments.models import Payment


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
    list_display = ("order", "status", "amount", "currency", "attempts", "updated_at")
    list_filter = ("status", "currency")
    search_fields = ("order__public_id", "idempotency_key", "provider_charge_id")
    list_select_related = ("order",)
    # The card token is deliberately absent: it is never shown.
    fields = (
        "order",
        "status",
        "amount",
        "currency",
        "idempotency_key",
        "provider_charge_id",
        "provider_refund_id",
        "decline_code",
        "attempts",
        "last_attempt_at",
        "last_error",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
