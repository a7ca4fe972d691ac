"""Orders admin: history inline, money read-only, state changes only through services.

Each action needs its own permission (`orders.fulfil_order`, `refund_order`, `cancel_order`,
`retry_order_payment`; migration orders.0003 grants them to the admin role), so support,
who may view orders, changes none of them here. Cancelling also follows the API's rule that
only staff who see every order may cancel someone else's. Every action that changes an
order leaves a LogEntry, shown on the order's History page.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.orders import selectors, services
from apps.orders.models import Order, OrderEvent, OrderItem
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
    fields = ("sku", "name", "variant_name", "unit_price", "quantity", "line_total")
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
    actions = ("mark_fulfilled", "refund", "cancel", "retry_payment")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    # --- Who may run each action ----------------------------------------------------------

    def has_fulfil_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("orders.fulfil_order")

    def has_refund_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("orders.refund_order")

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        # The API lets staff cancel others' orders only when they see all orders.
        return request.user.has_perm("orders.cancel_order") and selectors.can_see_all_orders(
            request.user
        )

    def has_retry_payment_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("orders.retry_order_payment")

    # --- Actions ---------------------------------------------------------------------------

    def _each(
        self,
        request: HttpRequest,
        queryset: QuerySet[Order],
        change: Callable[[Order], Any],
        done: str,
    ) -> None:
        """Apply `change` to each order; log and count what succeeded, report what did not."""
        succeeded, failed = 0, []
        for order in queryset:
            try:
                change(order)
            except DomainError as exc:
                failed.append(f"{order.public_id}: {exc.detail}")
                continue
            succeeded += 1
            self.log_change(request, order, done)
        if succeeded:
            self.message_user(request, f"{done} {succeeded} order(s).", messages.SUCCESS)
        for failure in failed:
            self.message_user(request, failure, messages.ERROR)

    @admin.action(description="Mark selected orders fulfilled", permissions=["fulfil"])
    def mark_fulfilled(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        self._each(
            request,
            queryset,
            lambda order: services.fulfil_order(order_id=order.pk, by=request.user),
            "Fulfilled",
        )

    @admin.action(description="Refund selected paid orders", permissions=["refund"])
    def refund(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        self._each(
            request,
            queryset,
            lambda order: services.refund_order(
                order_id=order.pk, by=request.user, reason="refunded by staff"
            ),
            "Refunded",
        )

    @admin.action(
        description="Cancel selected orders (paid ones are refunded)", permissions=["cancel"]
    )
    def cancel(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        self._each(
            request,
            queryset,
            lambda order: services.cancel_order(
                order_id=order.pk, by=request.user, reason="cancelled by staff"
            ),
            "Cancelled",
        )

    @admin.action(
        description="Retry payment of selected pending orders", permissions=["retry_payment"]
    )
    def retry_payment(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        pending = [o for o in queryset if services.request_payment_retry(order_id=o.pk)]
        for order in pending:
            self.log_change(request, order, "Requested payment again")
        self.message_user(request, f"Requested payment of {len(pending)} order(s).")
