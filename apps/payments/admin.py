"""Payments admin: read-only; money moves only through the payment services.

The one form that moves money is the refund form of an order (`Refund an amount` on the
order page, for staff holding `payments.refund_payment`: support and admin): an amount
and a reason, refunded through `services.refund`, with a message that says what happened.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from apps.orders.models import Order
from apps.payments import (
    admin_order,  # noqa: F401  (the order page's payment inlines)
    admin_return,  # noqa: F401  (the Return page's refund action)
    services,
)
from apps.payments.models import (
    MoneyMovement,
    Payment,
    ProviderEvent,
    Refund,
    RefundOrigin,
    RefundStatus,
)
from ecommerce.errors import DomainError

REFUND = "payments.refund_payment"


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


class RefundForm(forms.Form):
    amount = forms.DecimalField(
        label="Amount to refund",
        min_value=0,
        max_digits=14,
        help_text="In the order's currency; at most what is left to refund.",
    )
    reason = forms.CharField(
        label="Reason", max_length=255, help_text="Kept with the refund; shown to staff."
    )


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdmin):
    """Every refund: staff refunds, cancellations, compensations, refunds made at the
    provider. Refunds are made from the order's page (Refund an amount)."""

    list_display = (
        "created_at",
        "order_link",
        "amount",
        "currency",
        "status",
        "origin",
        "reason",
        "requested_by",
    )
    list_filter = ("status", "origin", ("created_at", admin.DateFieldListFilter))
    search_fields = ("order__public_id", "order__user__email", "provider_refund_id")
    list_select_related = ("order", "requested_by")
    ordering = ("-created_at", "-pk")
    fields = (
        "public_id",
        "order",
        "payment",
        "amount",
        "currency",
        "status",
        "origin",
        "reason",
        "requested_by",
        "idempotency_key",
        "provider_refund_id",
        "last_error",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields

    @admin.display(description="Order", ordering="order_id")
    def order_link(self, obj: Refund) -> SafeString:
        url = reverse("admin:orders_order_change", args=[obj.order_id])
        return format_html('<a href="{}">{}</a>', url, obj.order.public_id)

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "order/<int:order_id>/",
                self.admin_site.admin_view(self.refund_order_view),
                name="payments_refund_order",
            ),
            *super().get_urls(),
        ]

    def refund_order_view(self, request: HttpRequest, order_id: int) -> HttpResponse:
        """Refund an amount of one order, with a reason; a refusal (more than is left, an
        amount the currency cannot hold) is a form error and changes nothing."""
        if not request.user.has_perm(REFUND):
            raise PermissionDenied
        order = Order.objects.filter(pk=order_id).select_related("user").first()
        if order is None:
            raise Http404("No such order.")
        payment = Payment.objects.filter(order=order).first()
        refundable = services.refundable_amount(payment) if payment is not None else None
        form = RefundForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                refund = services.refund(
                    order_id=order.pk,
                    amount=form.cleaned_data["amount"],
                    by=request.user,
                    reason=form.cleaned_data["reason"],
                    origin=RefundOrigin.STAFF,
                )
            except DomainError as exc:
                form.add_error("amount", str(exc.detail))
            else:
                message, level = _refund_message(order, refund)
                # On the order's History page, with the order actions' lines.
                self.log_change(request, order, message)
                self.message_user(request, message, level)
                return HttpResponseRedirect(reverse("admin:orders_order_change", args=[order.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Refund order {order.public_id}",
            "opts": Order._meta,
            "original": order,
            "order": order,
            "refundable": refundable,
            "form": form,
        }
        return TemplateResponse(request, "admin/payments/refund_form.html", context)


def _refund_message(order: Order, refund: Refund) -> tuple[str, int]:
    """What the refund did, in the staff's words."""
    order.refresh_from_db(fields=["status", "amount_paid"])
    amount = f"{refund.amount} {refund.currency}"
    if refund.status == RefundStatus.SUCCEEDED:
        return (
            f"Refunded {amount} of order {order.public_id} ({refund.reason}); "
            f"{order.amount_paid} {order.currency} stays paid, the order is "
            f"{order.get_status_display().lower()}.",
            messages.SUCCESS,
        )
    if refund.status == RefundStatus.FAILED:
        return (
            f"The payment provider refused to refund {amount} of order {order.public_id} "
            f"({refund.last_error}); nothing was refunded.",
            messages.ERROR,
        )
    return (
        f"Refund of {amount} of order {order.public_id} is reserved, but the payment provider "
        "cannot be reached now; it will be sent again until the provider answers.",
        messages.WARNING,
    )
