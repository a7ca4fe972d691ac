"""Orders admin: history inline, money read-only, state changes only through services."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.orders import services
from apps.orders.models import Order, OrderEvent, OrderItem, OrderStatus
from apps.payments import services as payments_services
from ecommerce import outbox
from ecommerce.errors import DomainError


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    max_num = 0

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class OrderItemInline(ReadOnlyInline):
    model = OrderItem
    fields = ("sku", "name", "unit_price", "quantity", "line_total")
    readonly_fields = fields


class OrderEventInline(ReadOnlyInline):
    model = OrderEvent
    fields = ("created_at", "from_status", "to_status", "actor", "reason")
    readonly_fields = fields


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ("public_id", "user", "status", "total", "currency", "created_at")
    list_filter = ("status", "created_at")
    search_fields = ("public_id", "user__email")
    date_hierarchy = "created_at"
    list_select_related = ("user",)
    inlines = (OrderItemInline, OrderEventInline)
    fields = (
        "public_id",
        "user",
        "placed_by",
        "status",
        "currency",
        "subtotal",
        "total",
        "idempotency_key",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields
    actions = ("mark_fulfilled", "refund", "retry_payment")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def _each(
        self, request: HttpRequest, queryset: QuerySet[Order], change: Any, done: str
    ) -> None:
        succeeded, failed = 0, []
        for order in queryset:
            try:
                change(order)
                succeeded += 1
            except DomainError as exc:
                failed.append(f"{order.public_id}: {exc.detail}")
        if succeeded:
            self.message_user(request, f"{done} {succeeded} order(s).", messages.SUCCESS)
        for failure in failed:
            self.message_user(request, failure, messages.ERROR)

    @admin.action(description="Mark selected orders fulfilled")
    def mark_fulfilled(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        self._each(
            request,
            queryset,
            lambda order: services.fulfil_order(order_id=order.pk, by=request.user),
            "Fulfilled",
        )

    @admin.action(description="Refund selected paid orders")
    def refund(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        self._each(
            request,
            queryset,
            lambda order: services.refund_order(
                order_id=order.pk, by=request.user, reason="refunded by staff"
            ),
            "Refunded",
        )

    @admin.action(description="Retry payment of selected pending orders")
    def retry_payment(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        pending = [o.pk for o in queryset if o.status == OrderStatus.PENDING_PAYMENT]
        for order_id in pending:
            outbox.publish(payments_services.CHARGE_REQUESTED, {"order_id": order_id})
        self.message_user(request, f"Requested payment of {len(pending)} order(s).")
