"""Returns in the admin: a section of the order page and a Return page whose actions
approve, reject and receive (through apps.orders.returns, never a model form).

Each action needs its permission (`orders.approve_return` for approve and reject,
`orders.receive_return` for receive; migration orders.0011 grants them to support and
admins), reports by public id what it changed and, one message each, why it left any other
return alone, and leaves a LogEntry on the return's History page. Rejecting asks for the
reason the customer is told and receiving asks where the goods go (a warehouse, or a
write-off reason), on an intermediate page. The refund is the payments app's: it hands its
handler to the refund action here (`set_return_refund`), since orders never imports
payments.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from apps.inventory.models import Warehouse
from apps.orders import returns
from apps.orders.admin import ReadOnlyInline, ViewOnlyPage, add_order_inline, order_admin_url
from apps.orders.exceptions import IllegalReturnTransition
from apps.orders.models import Return, ReturnLine, ReturnStatus
from ecommerce.errors import DomainError

ReturnAction = Callable[[admin.ModelAdmin, HttpRequest, QuerySet[Return]], HttpResponse | None]
_refund_handler: list[ReturnAction] = []


def set_return_refund(handler: ReturnAction) -> None:
    """Run `handler(model_admin, request, queryset)` for the Return page's refund action:
    how the payments app refunds returns without orders importing it."""
    _refund_handler[:] = [handler]


def return_admin_url(return_id: int) -> str:
    return reverse("admin:orders_return_change", args=[return_id])


def why_not(exc: DomainError) -> str:
    """Why an action left a return as it was, in the staff's words."""
    if isinstance(exc, IllegalReturnTransition):
        now = ReturnStatus(exc.extra["from_status"]).label.lower()
        to = ReturnStatus(exc.extra["to_status"]).label.lower()
        return f"{now}, and a {now} return cannot be {to}."
    return str(exc.detail)


def report(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    changed: list[Return],
    skipped: list[str],
    done: str,
) -> None:
    """Say which returns changed, then, one message each, why every other one did not."""
    if changed:
        ids = ", ".join(str(r.public_id) for r in changed)
        model_admin.message_user(
            request, f"{done} {len(changed)} return(s): {ids}.", messages.SUCCESS
        )
    elif skipped:
        model_admin.message_user(
            request, "Nothing changed: no selected return could be.", messages.WARNING
        )
    for reason in skipped:
        model_admin.message_user(request, reason, messages.ERROR)


def apply_each(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet[Return],
    change: Callable[[Return], Any],
    done: str,
) -> None:
    changed: list[Return] = []
    skipped: list[str] = []
    for order_return in queryset.order_by("created_at", "pk"):
        try:
            change(order_return)
        except DomainError as exc:
            skipped.append(f"Return {order_return.public_id}: {why_not(exc)}")
            continue
        changed.append(order_return)
        model_admin.log_change(request, order_return, done)
    report(model_admin, request, changed, skipped, done)


class RejectForm(forms.Form):
    note = forms.CharField(
        label="Reason", max_length=500, help_text="Emailed to the customer with the rejection."
    )


class ReceiveForm(forms.Form):
    RESTOCK, WRITE_OFF = "restock", "write_off"

    disposition = forms.ChoiceField(
        label="The goods",
        choices=[(RESTOCK, "Go back into stock"), (WRITE_OFF, "Are written off")],
        initial=RESTOCK,
        widget=forms.RadioSelect,
    )
    warehouse = forms.ModelChoiceField(
        queryset=Warehouse.objects.filter(is_active=True),
        required=False,
        help_text="Where restocked units go (a stock ledger row with reason `return`).",
    )
    write_off_reason = forms.CharField(
        max_length=255, required=False, help_text="Why they are written off (no stock moves)."
    )
    note = forms.CharField(max_length=500, required=False, label="Note for staff")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("disposition") == self.RESTOCK and not data.get("warehouse"):
            self.add_error("warehouse", "Choose the warehouse the goods go back into.")
        if (
            data.get("disposition") == self.WRITE_OFF
            and not (data.get("write_off_reason") or "").strip()
        ):
            self.add_error("write_off_reason", "Say why the goods are written off.")
        return data


def intermediate_page(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet[Return],
    *,
    action: str,
    title: str,
    form: forms.Form,
    explanation: str,
) -> TemplateResponse:
    context = {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "opts": model_admin.opts,
        "form": form,
        "returns": list(queryset.order_by("created_at", "pk")),
        "action": action,
        "explanation": explanation,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, "admin/orders/return_action.html", context)


class ReturnLineInline(ReadOnlyInline):
    model = ReturnLine
    fields = ("item", "quantity", "disposition", "warehouse", "write_off_reason")
    readonly_fields = fields


class ReturnsOfOrderInline(ReadOnlyInline):
    """The order's returns on its page, each linking to its own."""

    model = Return
    fields = ("link", "status", "units", "reason", "refunded_amount", "created_at")
    readonly_fields = fields
    verbose_name_plural = "Returns"

    @admin.display(description="Return")
    def link(self, order_return: Return) -> SafeString:
        return format_html(
            '<a href="{}">{}</a>', return_admin_url(order_return.pk), order_return.public_id
        )

    @admin.display(description="Units")
    def units(self, order_return: Return) -> str:
        return ", ".join(f"{line.quantity} x {line.item.sku}" for line in order_return.lines.all())

    def get_queryset(self, request: HttpRequest) -> QuerySet[Return]:
        return super().get_queryset(request).prefetch_related("lines__item")


add_order_inline(ReturnsOfOrderInline)


@admin.register(Return)
class ReturnAdmin(ViewOnlyPage):
    list_display = ("public_id", "order_link", "status", "units", "created_at")
    list_filter = ("status", "created_at")
    search_fields = ("public_id", "order__public_id", "order__user__email")
    list_select_related = ("order",)
    inlines = (ReturnLineInline,)
    fields = (
        "public_id",
        "order_link",
        "status",
        "reason",
        "staff_note",
        "requested_by",
        "decided_by",
        "decided_at",
        "received_by",
        "received_at",
        "refund_due",
        "refunded_amount",
        "refunded_at",
        "stock_ledger",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields
    actions = ("approve", "reject", "receive", "refund")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Return]:
        return super().get_queryset(request).prefetch_related("lines__item")

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        found = super().get_actions(request)
        if not _refund_handler:  # payments is not installed
            found.pop("refund", None)
        return found

    # --- What the page shows ----------------------------------------------------------------

    @admin.display(description="Order", ordering="order__created_at")
    def order_link(self, order_return: Return) -> SafeString:
        return format_html(
            '<a href="{}">{}</a>', order_admin_url(order_return.order_id), order_return.order
        )

    @admin.display(description="Units")
    def units(self, order_return: Return) -> SafeString:
        return format_html_join(
            ", ", "{} x {}", ((line.quantity, line.item.sku) for line in order_return.lines.all())
        )

    @admin.display(description="Refund due")
    def refund_due(self, order_return: Return) -> str:
        amount = returns.default_refund_amount(order_return)
        return f"{amount} {order_return.order.currency} (the lines' share; shipping excluded)"

    @admin.display(description="Stock ledger")
    def stock_ledger(self, order_return: Return) -> SafeString:
        url = reverse("admin:inventory_stockmovement_changelist")
        return format_html(
            '<a href="{}?reference={}">Units restocked by this return</a>',
            url,
            returns.return_reference(order_return),
        )

    # --- Who may run each action --------------------------------------------------------------

    def has_approve_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("orders.approve_return")

    def has_receive_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("orders.receive_return")

    def has_refund_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("orders.refund_return")

    # --- Actions ----------------------------------------------------------------------------

    @admin.action(description="Refund selected received returns", permissions=["refund"])
    def refund(self, request: HttpRequest, queryset: QuerySet[Return]) -> HttpResponse | None:
        (handler,) = _refund_handler
        return handler(self, request, queryset)

    @admin.action(description="Approve selected requested returns", permissions=["approve"])
    def approve(self, request: HttpRequest, queryset: QuerySet[Return]) -> None:
        apply_each(
            self,
            request,
            queryset,
            lambda r: returns.approve_return(return_id=r.pk, by=request.user),
            "Approved",
        )

    @admin.action(description="Reject selected returns (asks the reason)", permissions=["approve"])
    def reject(self, request: HttpRequest, queryset: QuerySet[Return]) -> HttpResponse | None:
        form = RejectForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            note = form.cleaned_data["note"]
            apply_each(
                self,
                request,
                queryset,
                lambda r: returns.reject_return(return_id=r.pk, by=request.user, note=note),
                "Rejected",
            )
            return None
        return intermediate_page(
            self,
            request,
            queryset,
            action="reject",
            title="Reject returns",
            form=form,
            explanation="The customer is emailed the reason; the units may be returned again.",
        )

    @admin.action(
        description="Receive selected approved returns (restock or write off)",
        permissions=["receive"],
    )
    def receive(self, request: HttpRequest, queryset: QuerySet[Return]) -> HttpResponse | None:
        form = ReceiveForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            data = form.cleaned_data
            warehouse = data["warehouse"] if data["disposition"] == ReceiveForm.RESTOCK else None

            def receive_one(order_return: Return) -> None:
                receipts = [
                    returns.LineReceipt(
                        line.item.sku,
                        warehouse=warehouse.slug if warehouse is not None else "",
                        write_off_reason="" if warehouse is not None else data["write_off_reason"],
                    )
                    for line in order_return.lines.all()
                ]
                returns.receive_return(
                    return_id=order_return.pk, receipts=receipts, by=request.user, note=data["note"]
                )

            where = (
                f"Received into {warehouse.name}"
                if warehouse is not None
                else f"Received and wrote off ({data['write_off_reason'].strip()})"
            )
            apply_each(self, request, queryset, receive_one, where)
            return None
        return intermediate_page(
            self,
            request,
            queryset,
            action="receive",
            title="Receive returns",
            form=form,
            explanation="Every line of each return goes the same way: back into the warehouse "
            "you choose, or written off with your reason.",
        )
