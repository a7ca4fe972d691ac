"""Pricing admin: tax classes with their rates, the store's tax setting, vouchers with their
uses, the uses themselves (read-only) and promotions.

Voucher uses are written and given back by apps.pricing.services as orders are placed and
released; nobody edits them by hand, so they are read-only everywhere, and a voucher's
used count is shown, never entered. Orders are linked by URL (the orders admin's search
by public id), so pricing does not import the orders app.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from apps.pricing.models import Promotion, TaxClass, TaxRate, TaxSettings, Voucher, VoucherUse
from ecommerce.money import format_amount

ORDER_PREFIX = "order:"


def _window(starts_at: datetime | None, ends_at: datetime | None) -> str:
    def at(moment: datetime) -> str:
        return f"{timezone.localtime(moment):%Y-%m-%d %H:%M}"

    if starts_at and ends_at:
        return f"{at(starts_at)} to {at(ends_at)}"
    if starts_at:
        return f"from {at(starts_at)}"
    if ends_at:
        return f"until {at(ends_at)}"
    return "always"


def _order_link(reference: str) -> SafeString | str:
    """A link to the order a use belongs to ("order:<public id>"), or the bare reference."""
    if not reference.startswith(ORDER_PREFIX):
        return reference
    try:
        changelist = reverse("admin:orders_order_changelist")
    except NoReverseMatch:
        return reference
    query = urlencode({"q": reference.removeprefix(ORDER_PREFIX)})
    return format_html('<a href="{}?{}">{}</a>', changelist, query, reference)


def _user_link(use: VoucherUse) -> SafeString | str:
    if use.user_id is None:
        return "-"
    url = reverse("admin:users_user_change", args=[use.user_id])
    return format_html('<a href="{}">{}</a>', url, use.user)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --- Tax --------------------------------------------------------------------------------------


class TaxRateInline(admin.TabularInline):
    model = TaxRate
    extra = 0
    fields = ("country", "rate")
    ordering = ("country",)


@admin.register(TaxClass)
class TaxClassAdmin(admin.ModelAdmin):
    """A class with its rate per country. Product types name the class by slug, so a slug
    in use should not be renamed (its products would be taxed at 0 until it is back)."""

    list_display = ("slug", "name", "countries")
    search_fields = ("slug", "name")
    inlines = (TaxRateInline,)

    def get_queryset(self, request: HttpRequest) -> QuerySet[TaxClass]:
        return super().get_queryset(request).prefetch_related("rates")

    @admin.display(description="Rates")
    def countries(self, obj: TaxClass) -> str:
        rates = sorted(obj.rates.all(), key=lambda rate: rate.country)
        return ", ".join(f"{rate.country} {rate.rate.normalize():f} %" for rate in rates) or "-"


@admin.register(TaxRate)
class TaxRateAdmin(admin.ModelAdmin):
    list_display = ("country", "tax_class", "rate")
    list_filter = ("tax_class", "country")
    search_fields = ("country", "tax_class__slug")
    list_select_related = ("tax_class",)
    ordering = ("country", "tax_class__slug")


@admin.register(TaxSettings)
class TaxSettingsAdmin(admin.ModelAdmin):
    """The one settings row: added once, never deleted; the list goes straight to it."""

    list_display = ("__str__", "prices_include_tax", "shipping_tax_class", "updated_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request) and not TaxSettings.objects.exists()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if TaxSettings.objects.filter(pk=TaxSettings.SINGLETON_PK).exists():
            return HttpResponseRedirect(
                reverse("admin:pricing_taxsettings_change", args=[TaxSettings.SINGLETON_PK])
            )
        return super().changelist_view(request, extra_context)


# --- Vouchers ---------------------------------------------------------------------------------


class VoucherUseInline(admin.TabularInline):
    """The voucher's uses, newest first, read-only, with links to the order and customer."""

    model = VoucherUse
    extra = 0
    can_delete = False
    show_change_link = True
    fields = ("order", "customer", "created_at", "released_at", "release_reason")
    readonly_fields = fields
    ordering = ("-created_at", "-pk")

    def get_queryset(self, request: HttpRequest) -> QuerySet[VoucherUse]:
        return super().get_queryset(request).select_related("user")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Order")
    def order(self, obj: VoucherUse) -> SafeString | str:
        return _order_link(obj.reference)

    @admin.display(description="Customer")
    def customer(self, obj: VoucherUse) -> SafeString | str:
        return _user_link(obj)


class VoucherForm(forms.ModelForm):
    def clean(self) -> dict[str, Any]:
        if self.instance.pk is not None:
            # The admin saves in one transaction: locked here, the row stays locked until
            # the save commits, so no use is claimed between the check of `usage_limit`
            # against `used_count` (Voucher.clean) and the save, which the database's CHECK
            # would otherwise refuse with an error page.
            used = (
                Voucher.objects.select_for_update()
                .filter(pk=self.instance.pk)
                .values_list("used_count", flat=True)
                .first()
            )
            if used is not None:
                self.instance.used_count = used
        return super().clean()


@admin.register(Voucher)
class VoucherAdmin(admin.ModelAdmin):
    form = VoucherForm
    list_display = ("code", "name", "kind", "amount", "uses", "window", "is_active")
    list_filter = ("kind", "is_active", "currency")
    search_fields = ("code", "name")
    readonly_fields = ("used_count", "created_at", "updated_at")
    autocomplete_fields = ("products", "categories")
    inlines = (VoucherUseInline,)
    fieldsets = (
        (None, {"fields": ("code", "name", "is_active")}),
        ("Discount", {"fields": ("kind", "value", "currency", "min_spend")}),
        ("Applies to", {"fields": ("products", "categories")}),
        ("Validity", {"fields": ("starts_at", "ends_at")}),
        ("Limits", {"fields": ("usage_limit", "per_customer_limit", "used_count")}),
        ("History", {"fields": ("created_at", "updated_at")}),
    )

    @admin.display(description="Value", ordering="value")
    def amount(self, obj: Voucher) -> str:
        if obj.kind == Voucher.Kind.PERCENTAGE:
            return f"{obj.value.normalize():f} %"
        if obj.kind == Voucher.Kind.FIXED:
            return f"{format_amount(obj.value, obj.currency)} {obj.currency}"
        return "-"

    @admin.display(description="Used", ordering="used_count")
    def uses(self, obj: Voucher) -> str:
        limit = "∞" if obj.usage_limit is None else str(obj.usage_limit)
        return f"{obj.used_count} / {limit}"

    @admin.display(description="Valid")
    def window(self, obj: Voucher) -> str:
        return _window(obj.starts_at, obj.ends_at)


@admin.register(VoucherUse)
class VoucherUseAdmin(ReadOnlyAdmin):
    """Every use of every voucher: who, for which order, and whether it was given back."""

    list_display = (
        "created_at",
        "voucher_link",
        "order",
        "customer",
        "released_at",
        "release_reason",
    )
    list_filter = (("released_at", admin.EmptyFieldListFilter), "voucher")
    search_fields = ("voucher__code", "reference", "user__email")
    list_select_related = ("voucher", "user")
    show_full_result_count = False
    date_hierarchy = "created_at"
    fields = ("voucher_link", "order", "customer", "created_at", "released_at", "release_reason")
    readonly_fields = fields

    @admin.display(description="Voucher", ordering="voucher__code")
    def voucher_link(self, obj: VoucherUse) -> SafeString:
        url = reverse("admin:pricing_voucher_change", args=[obj.voucher_id])
        return format_html('<a href="{}">{}</a>', url, obj.voucher.code)

    @admin.display(description="Order", ordering="reference")
    def order(self, obj: VoucherUse) -> SafeString | str:
        return _order_link(obj.reference)

    @admin.display(description="Customer", ordering="user__email")
    def customer(self, obj: VoucherUse) -> SafeString | str:
        return _user_link(obj)


# --- Promotions -------------------------------------------------------------------------------


@admin.register(Promotion)
class PromotionAdmin(admin.ModelAdmin):
    """Discounts without a code. Each line gets the one running promotion that takes the
    most off it (docs/pricing.md); empty products and categories mean every product."""

    list_display = ("name", "kind", "terms", "window", "is_active")
    list_filter = ("kind", "is_active")
    search_fields = ("name",)
    autocomplete_fields = ("products", "categories")
    readonly_fields = ("created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "is_active")}),
        ("Discount", {"fields": ("kind", "value", "currency", "buy_quantity", "pay_quantity")}),
        ("Applies to", {"fields": ("products", "categories")}),
        ("Validity", {"fields": ("starts_at", "ends_at")}),
        ("History", {"fields": ("created_at", "updated_at")}),
    )

    @admin.display(description="Terms")
    def terms(self, obj: Promotion) -> str:
        if obj.kind == Promotion.Kind.PERCENTAGE:
            return f"{obj.value.normalize():f} % off"
        if obj.kind == Promotion.Kind.FIXED:
            return f"{format_amount(obj.value, obj.currency)} {obj.currency} off each"
        return f"buy {obj.buy_quantity}, pay {obj.pay_quantity}"

    @admin.display(description="Runs")
    def window(self, obj: Promotion) -> str:
        return _window(obj.starts_at, obj.ends_at)
