"""Orders admin: history inline, money read-only, state changes only through services.

Each action needs its own permission (`orders.fulfil_order`, `refund_order`, `cancel_order`,
`retry_order_payment`; migration orders.0003 grants them to the admin role), so support,
who may view orders, changes none of them here. Cancelling also follows the API's rule that
only staff who see every order may cancel someone else's. Every action that changes an
order leaves a LogEntry, shown on the order's History page, and reports by public id what
it changed and, for each order it left alone, why.

Payments and notifications sit above orders in the app graph, so the order page cannot
import them: their admin modules add their inlines (`add_order_inline`) and read-only
sections (`add_order_section`) to this page instead. Nothing here is edited on the page,
so it shows no Save button, only Close.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.options import InlineModelAdmin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.defaultfilters import linebreaksbr
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from apps.orders import selectors, services
from apps.orders.exceptions import IllegalTransition
from apps.orders.models import Order, OrderEvent, OrderItem, OrderStatus
from apps.orders.serializers import percent
from ecommerce.errors import DomainError


def address_lines(address: Mapping[str, Any]) -> list[str]:
    """A postal address as the lines of a label; [] when none was given."""
    if not address:
        return []
    name = " ".join(filter(None, (address.get("first_name"), address.get("last_name"))))
    place = " ".join(filter(None, (address.get("postal_code"), address.get("city"))))
    if address.get("country_area"):
        place = f"{place}, {address['country_area']}"
    lines = (
        name,
        address.get("company"),
        address.get("street_address_1"),
        address.get("street_address_2"),
        place,
        address.get("country"),
        address.get("phone"),
    )
    return [str(line) for line in lines if line]


# --- What other apps add to the order page ----------------------------------------------------


@dataclass(frozen=True)
class OrderSection:
    """A read-only part of the order page that another app renders (its notifications)."""

    title: str
    render: Callable[[Order], SafeString | str]


_extra_inlines: list[type[InlineModelAdmin]] = []
_extra_sections: list[OrderSection] = []


def add_order_inline(inline: type[InlineModelAdmin]) -> None:
    """Show `inline` (a model with a foreign key to Order) on every order page."""
    if inline not in _extra_inlines:
        _extra_inlines.append(inline)


def add_order_section(title: str, render: Callable[[Order], SafeString | str]) -> None:
    """Show `render(order)` under `title` on every order page, after the addresses."""
    if all(section.title != title for section in _extra_sections):
        _extra_sections.append(OrderSection(title, render))


def order_admin_url(order_id: int) -> str:
    return reverse("admin:orders_order_change", args=[order_id])


class ViewOnlyPage(admin.ModelAdmin):
    """A change page where nothing is edited, even by those who may run its actions (the
    change permission): Close instead of the Save buttons."""

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        extra_context = {
            **(extra_context or {}),
            "show_save": False,
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
        }
        return super().change_view(request, object_id, form_url, extra_context)


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    max_num = 0

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class OrderItemInline(ReadOnlyInline):
    """The lines as priced: `line_total` is after discounts, tax included."""

    model = OrderItem
    fields = (
        "sku",
        "name",
        "variant_name",
        "unit_price",
        "quantity",
        "discount",
        "promotion_name",
        "tax_rate",
        "tax",
        "total_net",
        "line_total",
    )
    readonly_fields = fields


class OrderEventInline(ReadOnlyInline):
    model = OrderEvent
    fields = ("created_at", "from_status", "to_status", "actor", "reason")
    readonly_fields = fields


@admin.register(Order)
class OrderAdmin(ViewOnlyPage):
    list_display = ("public_id", "user", "status", "total", "currency", "created_at")
    list_filter = ("status", "created_at")
    search_fields = ("public_id", "user__email", "email")
    date_hierarchy = "created_at"
    list_select_related = ("user",)
    inlines = (OrderItemInline, OrderEventInline)
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "public_id",
                    "user",
                    "email",
                    "placed_by",
                    "status",
                    "hold_expires",
                    "idempotency_key",
                    "created_at",
                    "updated_at",
                    "stock_ledger",
                )
            },
        ),
        (
            "Price breakdown",
            {
                "description": "As priced at placement. Lines (below) show their discounts "
                "and tax; total = subtotal + shipping - discounts, plus the tax when prices "
                "are net.",
                "fields": (
                    "currency",
                    "price_basis",
                    "subtotal",
                    "shipping",
                    "discount_total",
                    "voucher_code",
                    "tax_by_rate",
                    "tax_total",
                    "total_net",
                    "total",
                ),
            },
        ),
        ("Addresses", {"fields": ("shipping_country", "shipping_to", "billing_to")}),
    )
    readonly_fields = (
        "public_id",
        "user",
        "email",
        "placed_by",
        "status",
        "hold_expires",
        "idempotency_key",
        "created_at",
        "updated_at",
        "stock_ledger",
        "currency",
        "price_basis",
        "subtotal",
        "shipping",
        "discount_total",
        "voucher_code",
        "tax_by_rate",
        "tax_total",
        "total_net",
        "total",
        "shipping_country",
        "shipping_to",
        "billing_to",
    )
    actions = ("mark_fulfilled", "refund", "cancel", "retry_payment")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    # --- The order by its public id (what ledgers and notifications record) ----------------

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "by-public-id/<uuid:public_id>/",
                self.admin_site.admin_view(self.by_public_id_view),
                name="orders_order_by_public_id",
            ),
            *super().get_urls(),
        ]

    def by_public_id_view(self, request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
        """Redirect to the order's page: the stock ledger links here from its
        `order:<public id>` references without importing orders."""
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        order = self.get_queryset(request).filter(public_id=public_id).first()
        if order is None:
            raise Http404("No such order.")
        return HttpResponseRedirect(order_admin_url(order.pk))

    # --- Parts other apps add ----------------------------------------------------------------

    def get_inlines(self, request: HttpRequest, obj: Any) -> list[type[InlineModelAdmin]]:
        return [*super().get_inlines(request, obj), *_extra_inlines]

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> list[tuple[Any, Any]]:
        fieldsets = list(super().get_fieldsets(request, obj))
        if obj is None:
            return fieldsets
        return [*fieldsets, *((s.title, {"fields": [_section_field(s)]}) for s in _extra_sections)]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[Any, ...]:
        fields = tuple(super().get_readonly_fields(request, obj))
        return (*fields, *(_section_field(s) for s in _extra_sections))

    # --- The breakdown, as text ----------------------------------------------------------

    @admin.display(description="Hold expires")
    def hold_expires(self, order: Order) -> str:
        if order.expires_at is not None:
            return str(order.expires_at)
        # Placed before holds were stored: the expiry sweep uses the timeout.
        fallback = order.created_at + timedelta(seconds=settings.ORDER_PAYMENT_TIMEOUT_SECONDS)
        return f"{fallback} (placement + payment timeout)"

    @admin.display(description="Stock ledger")
    def stock_ledger(self, order: Order) -> SafeString:
        url = reverse("admin:inventory_stockmovement_changelist")
        query = urlencode({"reference": f"order:{order.public_id}"})
        return format_html('<a href="{}?{}">Stock moved for this order</a>', url, query)

    @admin.display(description="Prices")
    def price_basis(self, order: Order) -> str:
        return "Tax included (gross)" if order.prices_include_tax else "Before tax (net)"

    @admin.display(description="Shipping")
    def shipping(self, order: Order) -> str:
        if not order.shipping_method_name and not order.shipping_price:
            return "None"
        method = order.shipping_method_name or "Shipping"
        return f"{method}: {order.shipping_price} {order.currency} (tax {order.shipping_tax})"

    @admin.display(description="Tax by rate")
    def tax_by_rate(self, order: Order) -> SafeString | str:
        if not order.tax_breakdown:
            return "None"
        return format_html(
            "<table><thead><tr><th>Rate</th><th>Net</th><th>Tax</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            format_html_join(
                "",
                "<tr><td>{}%</td><td>{}</td><td>{}</td></tr>",
                (
                    (percent(row.get("rate", "0")), row.get("net", ""), row.get("tax", ""))
                    for row in order.tax_breakdown
                ),
            ),
        )

    @admin.display(description="Shipping address")
    def shipping_to(self, order: Order) -> SafeString | str:
        return _address_html(order.shipping_address)

    @admin.display(description="Billing address")
    def billing_to(self, order: Order) -> SafeString | str:
        return _address_html(order.billing_address)

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
        """Apply `change` to each order; log what succeeded, then say which orders changed
        and, one message each, why every other one did not."""
        changed: list[Order] = []
        skipped: list[str] = []
        for order in queryset.order_by("created_at", "pk"):
            try:
                change(order)
            except DomainError as exc:
                skipped.append(f"Order {order.public_id}: {_why_not(exc, done)}")
                continue
            changed.append(order)
            self.log_change(request, order, done)
        _report(self, request, changed, skipped, done, f"no order was {done.lower()}.")

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
        asked: list[Order] = []
        skipped: list[str] = []
        for order in queryset.order_by("created_at", "pk"):
            if services.request_payment_retry(order_id=order.pk):
                asked.append(order)
                self.log_change(request, order, "Requested payment again")
                continue
            order.refresh_from_db(fields=["status"])
            skipped.append(
                f"Order {order.public_id}: {order.get_status_display().lower()}, not pending "
                "payment, so there is no payment to retry."
            )
        _report(
            self,
            request,
            asked,
            skipped,
            "Requested payment again for",
            "no order is pending payment.",
        )


def _section_field(section: OrderSection) -> Callable[[Order], SafeString | str]:
    return admin.display(description=section.title)(section.render)


def _why_not(exc: DomainError, done: str) -> str:
    """Why an action left an order as it was, in the staff's words."""
    if isinstance(exc, IllegalTransition):
        now = OrderStatus(exc.extra["from_status"]).label.lower()
        if exc.extra["from_status"] == exc.extra["to_status"]:
            return f"already {now}."
        return f"{now}, and a {now} order cannot be {done.lower()}."
    return str(exc.detail)


def _report(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    changed: list[Order],
    skipped: list[str],
    done: str,
    nothing: str,
) -> None:
    if changed:
        ids = ", ".join(str(order.public_id) for order in changed)
        model_admin.message_user(
            request, f"{done} {len(changed)} order(s): {ids}.", messages.SUCCESS
        )
    elif skipped:
        model_admin.message_user(request, f"Nothing changed: {nothing}", messages.WARNING)
    for reason in skipped:
        model_admin.message_user(request, reason, messages.ERROR)


def _address_html(address: Mapping[str, Any]) -> SafeString | str:
    lines = address_lines(address or {})
    if not lines:
        return "None"
    return linebreaksbr("\n".join(lines), autoescape=True)


# The Return page and the order page's returns section (a module of its own: this one is long).
from apps.orders import return_admin  # noqa: E402, F401
