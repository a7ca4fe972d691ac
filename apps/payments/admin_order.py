"""The order page's payment part: the payment (attempts, last error, decline code), its
refunds (amount, status, reason, who, when), the order's movements in the money ledger
(captures, refunds), all read-only, and a "Refund an amount" link to the refund form
(`apps.payments.admin.RefundAdmin.refund_order_view`).

The orders app may not import payments, so this module adds both inlines to the order page
through the orders admin's `add_order_inline`; apps.payments.admin imports it.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from apps.orders.admin import add_order_inline, add_order_section
from apps.orders.models import Order
from apps.payments import services
from apps.payments.models import MoneyMovement, Payment, PaymentStatus, Refund


class _ReadOnlyTabular(admin.TabularInline):
    extra = 0
    max_num = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class OrderPaymentInline(_ReadOnlyTabular):
    """The order's payment: how often it was tried, and why the last try failed."""

    model = Payment
    verbose_name = "payment"
    verbose_name_plural = "payment"
    fields = (
        "payment_link",
        "status",
        "amount",
        "currency",
        "attempts",
        "last_attempt_at",
        "last_error",
        "decline_code",
        "provider_charge_id",
        "provider_refund_id",
    )
    readonly_fields = fields

    @admin.display(description="Payment")
    def payment_link(self, payment: Payment) -> SafeString:
        url = reverse("admin:payments_payment_change", args=[payment.pk])
        return format_html('<a href="{}">{}</a>', url, payment.idempotency_key)


class OrderMoneyMovementInline(_ReadOnlyTabular):
    """The order's lines in the money ledger, oldest first: what was captured and refunded."""

    model = MoneyMovement
    verbose_name = "money movement"
    verbose_name_plural = "money ledger (authorizations, captures, voids, refunds)"
    fields = ("created_at", "kind", "amount", "currency", "provider_reference", "reason")
    readonly_fields = fields
    ordering = ("created_at", "pk")


class OrderRefundInline(_ReadOnlyTabular):
    """The order's refunds, oldest first: each amount, how it went, why, who, when."""

    model = Refund
    verbose_name = "refund"
    verbose_name_plural = "refunds"
    fields = (
        "created_at",
        "amount",
        "currency",
        "status",
        "origin",
        "reason",
        "requested_by",
        "provider_refund_id",
        "last_error",
    )
    readonly_fields = fields
    ordering = ("created_at", "pk")


def refund_section(order: Order) -> SafeString | str:
    """What is left to refund, and the link to the refund form."""
    payment = Payment.objects.filter(order=order).first()
    if payment is None or payment.status not in (PaymentStatus.SUCCEEDED, PaymentStatus.REFUNDED):
        return "Nothing was captured: nothing to refund."
    left = services.refundable_amount(payment)
    if left <= 0:
        return f"Paid {order.amount_paid} {order.currency}; nothing is left to refund."
    url = reverse("admin:payments_refund_order", args=[order.pk])
    return format_html(
        'Paid {} {}; {} {} can be refunded. <a href="{}" class="button">Refund an amount</a>',
        order.amount_paid,
        order.currency,
        left,
        order.currency,
        url,
    )


add_order_inline(OrderPaymentInline)
add_order_inline(OrderRefundInline)
add_order_inline(OrderMoneyMovementInline)
add_order_section("Refund", refund_section)
