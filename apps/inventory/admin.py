"""Inventory admin: warehouses, stock (read-only), the ledger (read-only), and the product page
with its stock per warehouse and a form to restock or adjust through apps.inventory.services.

The catalog may not import the inventory, so the product page's stock lives here: this
module replaces the catalog's Product registration with a subclass of its `ProductAdmin`
that adds a read-only table of stock per variant and warehouse, a link to the product's
ledger, and the stock form (`<product>/stock/`). Everything else on that page stays the
catalog's. Stock changes need `inventory.change_stock` (catalog managers and admins).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextvars import ContextVar
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from apps.catalog.admin import ProductAdmin as CatalogProductAdmin
from apps.catalog.admin import ServiceSaveMixin
from apps.catalog.models import Product, ProductVariant
from apps.inventory import services
from apps.inventory.exceptions import OutOfStock
from apps.inventory.models import Stock, StockMovement, Warehouse
from ecommerce.errors import DomainError

# As the stock API: larger single moves are typing mistakes, not deliveries.
MAX_STOCK_CHANGE = 1_000_000
LEDGER_FILTERS = frozenset(
    {
        "variant__id__exact",
        "variant__product__id__exact",
        "reference",
        "reference__exact",
        "warehouse__id__exact",
    }
)
# Whether the user viewing the product page may change stock (shows the form's links).
_may_change_stock: ContextVar[bool] = ContextVar("may_change_stock", default=False)


def can_change_stock(request: HttpRequest) -> bool:
    return request.user.has_perm("inventory.change_stock")


def ledger_url(**filters: Any) -> str:
    return f"{reverse('admin:inventory_stockmovement_changelist')}?{urlencode(filters)}"


# --- Restock and adjust ------------------------------------------------------------------------


class StockChangeForm(forms.Form):
    RESTOCK, ADJUST = "restock", "adjust"

    variant = forms.ModelChoiceField(queryset=ProductVariant.objects.none())
    warehouse = forms.ModelChoiceField(queryset=Warehouse.objects.filter(is_active=True))
    kind = forms.ChoiceField(
        label="Change",
        choices=[(RESTOCK, "Restock (units received)"), (ADJUST, "Adjust (+ found, - lost)")],
        initial=RESTOCK,
    )
    quantity = forms.IntegerField(
        min_value=-MAX_STOCK_CHANGE,
        max_value=MAX_STOCK_CHANGE,
        help_text="Units. A restock adds them; an adjustment adds or, when negative, removes them.",
    )
    note = forms.CharField(
        label="Reason",
        max_length=255,
        help_text="Shown in the ledger: a delivery note, a stock count, breakage.",
    )

    def __init__(self, *args: Any, product: Product, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field: Any = self.fields["variant"]
        field.queryset = ProductVariant.objects.filter(product=product)
        field.label_from_instance = lambda v: f"{v.sku} {v.name}".strip()

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        quantity, kind = data.get("quantity"), data.get("kind")
        if quantity == 0:
            self.add_error("quantity", "Give a non-zero number of units.")
        elif quantity is not None and kind == self.RESTOCK and quantity < 0:
            self.add_error("quantity", "A restock adds units: use an adjustment to remove some.")
        return data


def change_stock(*, form: StockChangeForm, actor: Any) -> StockMovement:
    """Apply a valid form through the services. Raises DomainError."""
    data = form.cleaned_data
    common = {
        "variant_id": data["variant"].pk,
        "warehouse": data["warehouse"],
        "note": data["note"],
        "actor": actor,
    }
    if data["kind"] == StockChangeForm.RESTOCK:
        return services.restock(quantity=data["quantity"], **common)
    return services.adjust_stock(delta=data["quantity"], **common)


def refusal(exc: DomainError, form: StockChangeForm) -> str:
    if isinstance(exc, OutOfStock):
        data = form.cleaned_data
        ((sku, short),) = exc.shortfalls.items()
        return (
            f"Nothing changed: {data['warehouse'].name} holds {short['available']} of {sku}, "
            f"so {short['requested']} cannot be removed."
        )
    return f"Nothing changed: {exc.detail}"


# --- The product page with its stock -------------------------------------------------------------

admin.site.unregister(Product)


@admin.register(Product)
class ProductAdmin(CatalogProductAdmin):
    """The catalog's product page, plus stock per warehouse and the stock form."""

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Sequence[str]:
        fields = tuple(super().get_readonly_fields(request, obj))
        return (*fields, "stock_table") if obj is not None else fields

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> list[tuple[Any, Any]]:
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:
            return fieldsets
        first = [name for name in fieldsets[0][1]["fields"] if name != "stock_table"]
        fieldsets[0] = (fieldsets[0][0], {**fieldsets[0][1], "fields": first})
        return [*fieldsets, ("Stock", {"fields": ["stock_table"]})]

    @admin.display(description="Stock per warehouse")
    def stock_table(self, obj: Product) -> SafeString:
        variants = list(ProductVariant.objects.filter(product=obj))
        rows = Stock.objects.filter(variant__product=obj).values_list(
            "variant_id", "warehouse_id", "quantity"
        )
        held = {(variant, warehouse): quantity for variant, warehouse, quantity in rows}
        used = {warehouse for _v, warehouse in held}
        warehouses = [
            warehouse
            for warehouse in Warehouse.objects.order_by("priority", "pk")
            if warehouse.is_active or warehouse.pk in used
        ]
        stock_url = reverse("admin:catalog_product_stock", args=[obj.pk])
        table = [
            {
                "variant": variant,
                "cells": [
                    {
                        "quantity": held.get((variant.pk, warehouse.pk)),
                        "url": f"{stock_url}?variant={variant.pk}&warehouse={warehouse.pk}",
                    }
                    for warehouse in warehouses
                ],
                "total": sum(held.get((variant.pk, w.pk)) or 0 for w in warehouses),
                "ledger": ledger_url(variant__id__exact=variant.pk),
            }
            for variant in variants
        ]
        return render_to_string(
            "admin/inventory/stock_table.html",
            {
                "warehouses": warehouses,
                "rows": table,
                "stock_url": stock_url,
                "ledger_url": ledger_url(variant__product__id__exact=obj.pk),
                "can_change": _may_change_stock.get(),
            },
        )

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        # The table is rendered by a display method, which does not see the request.
        # A TemplateResponse renders after this returns: render it while the flag is set.
        token = _may_change_stock.set(can_change_stock(request))
        try:
            response = super().change_view(request, object_id, form_url, extra_context)
            if isinstance(response, TemplateResponse):
                response.render()
            return response
        finally:
            _may_change_stock.reset(token)

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<path:object_id>/stock/",
                self.admin_site.admin_view(self.stock_view),
                name="catalog_product_stock",
            ),
            *super().get_urls(),
        ]

    def stock_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Restock or adjust one variant in one warehouse, with a reason, through the
        services; a refusal (stock would go below zero) is a form error."""
        if not can_change_stock(request):
            raise PermissionDenied
        product = self.get_object(request, object_id)
        if product is None:
            raise Http404("No such product.")
        if request.method == "POST":
            form = StockChangeForm(request.POST, product=product)
            if form.is_valid():
                try:
                    movement = change_stock(form=form, actor=request.user)
                except DomainError as exc:
                    form.add_error(None, refusal(exc, form))
                else:
                    done = self._describe(form, movement)
                    self.log_change(request, product, done)
                    self.message_user(request, done, messages.SUCCESS)
                    return HttpResponseRedirect(
                        reverse("admin:catalog_product_change", args=[product.pk])
                    )
        else:
            form = StockChangeForm(
                product=product,
                initial={
                    "variant": request.GET.get("variant", ""),
                    "warehouse": request.GET.get("warehouse", ""),
                },
            )
        context = {
            **self.admin_site.each_context(request),
            "title": f"Stock of {product.name}",
            "opts": self.opts,
            "original": product,
            "form": form,
            "ledger_url": ledger_url(variant__product__id__exact=product.pk),
        }
        return TemplateResponse(request, "admin/inventory/stock_form.html", context)

    @staticmethod
    def _describe(form: StockChangeForm, movement: StockMovement) -> str:
        data = form.cleaned_data
        sku, where = data["variant"].sku, data["warehouse"].name
        if data["kind"] == StockChangeForm.RESTOCK:
            what = f"Restocked {movement.delta} of {sku} in {where}"
        else:
            what = f"Adjusted {sku} in {where} by {movement.delta:+d}"
        return f"{what} ({data['note']}): {movement.balance} on hand."


# --- Warehouses, stock and the ledger ------------------------------------------------------------


@admin.register(Warehouse)
class WarehouseAdmin(ServiceSaveMixin, admin.ModelAdmin):
    """A warehouse with no zone serves every destination; with zones, their countries."""

    list_display = ("name", "slug", "priority", "is_active", "zone_names")
    list_filter = ("is_active", "shipping_zones")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    filter_horizontal = ("shipping_zones",)

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).prefetch_related("shipping_zones")

    @admin.display(description="shipping zones")
    def zone_names(self, obj: Warehouse) -> str:
        return ", ".join(zone.name for zone in obj.shipping_zones.all()) or "all destinations"

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # stock and the ledger refer to it: deactivate instead

    def save_model(self, request: HttpRequest, obj: Warehouse, form: Any, change: bool) -> None:
        """Through the services (they lock the row so allocation sees a whole change);
        the zones chosen are set by the form afterwards, in save_related."""
        data = form.cleaned_data
        if change:
            fields = {
                name: data[name]
                for name in ("name", "slug", "priority", "is_active")
                if name in form.changed_data
            }
            if fields:
                old_slug = Warehouse.objects.values_list("slug", flat=True).get(pk=obj.pk)
                services.update_warehouse(slug=old_slug, changes=fields, actor=request.user)
            return
        created = services.create_warehouse(
            name=data["name"],
            slug=data["slug"],
            priority=data["priority"],
            is_active=data["is_active"],
            actor=request.user,
        )
        obj.pk, obj.created_at, obj.updated_at = created.pk, created.created_at, created.updated_at
        obj._state.adding, obj._state.db = False, created._state.db


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Stock)
class StockAdmin(ReadOnlyAdmin):
    """Units per variant and warehouse. Changed on the product page's stock form only."""

    list_display = ("sku", "product", "warehouse", "quantity", "updated_at")
    list_filter = ("warehouse",)
    search_fields = ("variant__sku", "variant__product__name")
    list_select_related = ("variant__product", "warehouse")
    show_full_result_count = False
    ordering = ("variant__product__name", "variant__sku", "warehouse__priority")

    @admin.display(description="SKU", ordering="variant__sku")
    def sku(self, obj: Stock) -> str:
        return obj.variant.sku

    @admin.display(description="product", ordering="variant__product__name")
    def product(self, obj: Stock) -> str:
        return obj.variant.display_name


@admin.register(StockMovement)
class StockMovementAdmin(ReadOnlyAdmin):
    """The append-only ledger. Filter by warehouse and reason in the sidebar; by variant,
    product or reference through the links on the product page, or
    `?variant__id__exact=`, `?variant__product__id__exact=`, `?reference=`."""

    list_display = (
        "created_at",
        "warehouse",
        "sku",
        "delta",
        "balance",
        "reason",
        "reference_link",
        "note",
        "actor",
    )
    list_filter = ("warehouse", "reason")
    search_fields = ("variant__sku", "reference", "note")
    list_select_related = ("variant", "warehouse", "actor")
    show_full_result_count = False
    date_hierarchy = "created_at"

    @admin.display(description="SKU", ordering="variant__sku")
    def sku(self, obj: StockMovement) -> str:
        return obj.variant.sku

    @admin.display(description="reference", ordering="reference")
    def reference_link(self, obj: StockMovement) -> SafeString | str:
        """An order's reference links to the order's page (by public id: orders sit above
        the inventory, so the URL is reversed by name without importing them)."""
        prefix, _, public_id = obj.reference.partition(":")
        if prefix != "order" or not public_id:
            return obj.reference
        try:
            url = reverse("admin:orders_order_by_public_id", args=[public_id])
        except NoReverseMatch:  # not a UUID: shown as recorded
            return obj.reference
        return format_html('<a href="{}">order {}</a>', url, public_id)

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        return lookup in LEDGER_FILTERS or super().lookup_allowed(lookup, value, request)
