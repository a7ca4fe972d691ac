"""Catalog admin: stock changes only through the services, the ledger read-only.

The product actions need `catalog.change_product`, the right the API's catalog-manager rule
maps to (catalog managers and admins hold it), so support, who may view the catalog, cannot
activate, deactivate or restock here. Each change leaves a LogEntry for the History page.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from apps.catalog import services
from apps.catalog.exceptions import InvalidCategory
from apps.catalog.models import Category, Product, StockMovement


class StockMovementInline(admin.TabularInline):
    model = StockMovement
    extra = 0
    can_delete = False
    ordering = ("-created_at", "-pk")
    fields = ("created_at", "delta", "balance", "reason", "reference", "note", "actor")
    readonly_fields = fields
    max_num = 0
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class RestockForm(forms.Form):
    quantity = forms.IntegerField(min_value=1, max_value=1_000_000)
    note = forms.CharField(max_length=255, help_text="Why: delivery number, supplier, ...")


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("sku", "name", "price", "currency", "category", "stock", "is_active")
    list_filter = ("is_active", "category", "currency")
    search_fields = ("sku", "name")
    list_select_related = ("category",)
    readonly_fields = ("currency", "stock", "created_at", "updated_at")
    inlines = (StockMovementInline,)
    actions = ("activate", "deactivate", "restock")

    def get_readonly_fields(self, request: HttpRequest, obj: Product | None = None) -> Any:
        # The SKU is the product's identity once created.
        return (*self.readonly_fields, "sku") if obj else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: Product, form: Any, change: bool) -> None:
        data = {name: form.cleaned_data[name] for name in services.UPDATABLE_PRODUCT_FIELDS}
        if change:
            services.update_product(product=obj, **data)
        else:
            created = services.create_product(
                sku=form.cleaned_data["sku"], actor=request.user, **data
            )
            obj.pk = created.pk

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # products are deactivated, never deleted

    @admin.action(description="Activate selected products", permissions=["change"])
    def activate(self, request: HttpRequest, queryset: QuerySet[Product]) -> None:
        for product in queryset:
            services.update_product(product=product, is_active=True)
            self.log_change(request, product, "Activated")
        self.message_user(request, f"Activated {queryset.count()} product(s).")

    @admin.action(description="Deactivate selected products", permissions=["change"])
    def deactivate(self, request: HttpRequest, queryset: QuerySet[Product]) -> None:
        for product in queryset:
            services.deactivate_product(product=product)
            self.log_change(request, product, "Deactivated")
        self.message_user(request, f"Deactivated {queryset.count()} product(s).")

    @admin.action(description="Restock selected products", permissions=["change"])
    def restock(self, request: HttpRequest, queryset: QuerySet[Product]) -> HttpResponse | None:
        form = RestockForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            quantity, note = form.cleaned_data["quantity"], form.cleaned_data["note"]
            for product in queryset:
                services.restock(
                    product_id=product.pk, quantity=quantity, note=note, actor=request.user
                )
                self.log_change(request, product, f"Restocked {quantity}: {note}")
            self.message_user(
                request, f"Restocked {queryset.count()} product(s).", level=messages.SUCCESS
            )
            return None
        return render(
            request,
            "admin/catalog/product/restock.html",
            {
                **self.admin_site.each_context(request),
                "title": "Restock products",
                "form": form,
                "products": queryset,
                "action": "restock",
                "opts": self.model._meta,
            },
        )


class CategoryAdminForm(forms.ModelForm):
    class Meta:
        model = Category
        fields = ("name", "slug", "parent", "is_active")

    def clean_parent(self) -> Category | None:
        """Refuse a descendant as parent here: raised later by the service, in save_model,
        the same refusal would be a 500."""
        parent: Category | None = self.cleaned_data["parent"]
        try:
            services.check_category_parent(self.instance, parent)
        except InvalidCategory as exc:
            raise forms.ValidationError(exc.detail) from None
        return parent


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    form = CategoryAdminForm
    list_display = ("name", "slug", "parent", "is_active")
    list_filter = ("is_active",)
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    list_select_related = ("parent",)

    def save_model(self, request: HttpRequest, obj: Category, form: Any, change: bool) -> None:
        fields = {name: form.cleaned_data[name] for name in ("name", "slug", "parent", "is_active")}
        if change:
            services.update_category(category=obj, **fields)
        else:
            obj.pk = services.create_category(**fields).pk

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # deactivate instead; products keep pointing at their category
