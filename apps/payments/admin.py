"""Payments admin: read-only; money moves only through the payment services."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from apps.payments import (
    admin_order,  # noqa: F401  (the order page's payment inlines)
    admin_return,  # noqa: F401  (the Return page's refund action)
)
from apps.payments.models import MoneyMovement, Payment, ProviderEvent


class ReadOnlyAdmin(admin.ModelAdmin):
    """Viewed, never added, changed or deleted here (by anyone, superusers included)."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class MoneyMovementInline(admin.TabularInline):
    """The payment's movements in the money ledger, oldest first; append-only."""

    model = MoneyMovement
    fields = ("created_at", "kind", "amount", "currency", "provider_reference", "reason")
    readonly_fields = fields
    ordering = ("created_at", "pk")
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
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
    inlines = (MoneyMovementInline,)


@admin.register(MoneyMovement)
class MoneyMovementAdmin(ReadOnlyAdmin):
    """The money ledger: every authorization, capture, void and refund at the provider.
    Filter by kind and date in the sidebar; each row links to its order."""

    list_display = (
        "created_at",
        "kind",
        "amount",
        "currency",
        "order_link",
        "provider_reference",
        "reason",
    )
    list_filter = ("kind", ("created_at", admin.DateFieldListFilter), "currency")
    search_fields = ("order__public_id", "provider_reference", "payment__idempotency_key")
    list_select_related = ("order",)
    date_hierarchy = "created_at"
    show_full_result_count = False
    ordering = ("-created_at", "-pk")
    fields = (
        "created_at",
        "kind",
        "amount",
        "currency",
        "order",
        "payment",
        "provider_reference",
        "reason",
    )
    readonly_fields = fields

    @admin.display(description="Order", ordering="order_id")
    def order_link(self, obj: MoneyMovement) -> SafeString:
        url = reverse("admin:orders_order_change", args=[obj.order_id])
        return format_html('<a href="{}">{}</a>', url, obj.order.public_id)


@admin.register(ProviderEvent)
class ProviderEventAdmin(ReadOnlyAdmin):
    """Events the payment providers sent to our webhook endpoint, each stored once, with
    what applying it did (`outcome`): what to read when a payment and its provider disagree."""

    list_display = ("received_at", "provider", "type", "event_id", "outcome", "processed_at")
    list_filter = ("provider", "type", "outcome", ("received_at", admin.DateFieldListFilter))
    search_fields = ("event_id",)
    date_hierarchy = "received_at"
    show_full_result_count = False
    ordering = ("-received_at", "-pk")
    fields = (
        "provider",
        "event_id",
        "type",
        "created_at_provider",
        "received_at",
        "processed_at",
        "outcome",
        "payload_pretty",
    )
    readonly_fields = fields

    @admin.display(description="Payload")
    def payload_pretty(self, obj: ProviderEvent) -> SafeString:
        return format_html("<pre>{}</pre>", json.dumps(obj.payload, indent=2, sort_keys=True))
