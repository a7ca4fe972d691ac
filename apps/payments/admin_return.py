"""The Return page's refund action: refunds each selected received return its lines' share
of what was paid (the API refunds less when asked: `POST .../returns/{id}/refund`).

The orders app may not import payments, so this module hands the returns admin's refund
action (which needs `orders.refund_return`) its handler through `set_return_refund`;
apps.payments.admin imports it. It says, per return, what was refunded or why not.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.orders.models import Return
from apps.orders.return_admin import set_return_refund, why_not
from apps.payments import return_refunds
from apps.payments.models import RefundStatus
from ecommerce.errors import DomainError
from ecommerce.money import format_amount


def refund(model_admin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Return]) -> None:
    done: list[str] = []
    problems: list[str] = []
    for order_return in queryset.select_related("order").order_by("created_at", "pk"):
        label = f"Return {order_return.public_id}"
        try:
            made = return_refunds.refund_return(return_id=order_return.pk, by=request.user)
        except DomainError as exc:
            problems.append(f"{label}: {why_not(exc)}")
            continue
        amount = f"{format_amount(made.amount, made.currency)} {made.currency}"
        if made.status == RefundStatus.SUCCEEDED:
            done.append(f"{label}: refunded {amount}")
            model_admin.log_change(request, order_return, f"Refunded {amount}")
        elif made.status == RefundStatus.PENDING:
            done.append(f"{label}: refund of {amount} sent; the provider has not answered yet")
            model_admin.log_change(request, order_return, f"Refund of {amount} pending")
        else:
            problems.append(
                f"{label}: the provider refused the refund of {amount} ({made.last_error}); "
                "the return stays received"
            )
    if done:
        model_admin.message_user(request, "; ".join(done) + ".", messages.SUCCESS)
    elif problems:
        model_admin.message_user(request, "Nothing refunded.", messages.WARNING)
    for problem in problems:
        model_admin.message_user(request, problem, messages.ERROR)


set_return_refund(refund)
