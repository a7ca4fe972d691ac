"""Catalog admin: stock changes only through the services, the ledger read-only.

The product actions need `catalog.change_product`, the right the API's catalog-manager rule
maps to (catalog managers and admins hold it), so support, who may view the catalog, cannot
activate, deactivate or restock here. Each change leaves a LogEntry for the History page.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.catalog import services
from apps.catalog.exceptions import InvalidCategory
from apps.catalog.models import Category, Product


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("name", "price", "currency", "category", "is_active")
    list_filter = ("is_active", "category", "currency")
    search_fields = ("name", "variants__sku")
    list_select_related = ("category",)
    readonly_fields = ("price", "currency", "created_at", "updated_at")
    actions = ("activate", "deactivate")

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
