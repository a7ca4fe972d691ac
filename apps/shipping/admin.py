"""Shipping in the admin: zones with countries typed as `DE, AT`, saved through
apps.shipping.services (capitals, sorted, each once); methods with their rate bands inline."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from apps.shipping import services
from apps.shipping.models import (
    BANDED_KINDS,
    ShippingMethod,
    ShippingMethodKind,
    ShippingRateBand,
    ShippingZone,
    validate_countries,
)


class CountriesField(forms.CharField):
    """Two-letter country codes separated by commas or spaces; any letter case."""

    def prepare_value(self, value: Any) -> Any:
        return ", ".join(value) if isinstance(value, list) else value

    def to_python(self, value: Any) -> list[str]:
        text = super().to_python(value) or ""
        codes = [code.upper() for code in text.replace(",", " ").split()]
        bad = [code for code in codes if not (len(code) == 2 and code.isascii() and code.isalpha())]
        if bad:
            raise ValidationError(f"Not a two-letter country code: {', '.join(bad[:5])}.")
        validate_countries(codes)
        return codes


class ShippingZoneForm(forms.ModelForm):
    countries = CountriesField(
        required=False,
        help_text="Two-letter ISO country codes, for example: DE, AT, CH.",
        widget=forms.TextInput(attrs={"size": 60}),
    )

    class Meta:
        model = ShippingZone
        fields = ("name", "slug", "countries")


@admin.register(ShippingZone)
class ShippingZoneAdmin(admin.ModelAdmin):
    """Zones; which warehouses serve them is set on each warehouse (inventory admin)."""

    form = ShippingZoneForm
    list_display = ("name", "slug", "country_list")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}

    @admin.display(description="countries")
    def country_list(self, obj: ShippingZone) -> str:
        return ", ".join(obj.countries)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Sequence[str]:
        return ("slug",) if obj is not None else ()  # the service upserts by slug

    def get_prepopulated_fields(self, request: HttpRequest, obj: Any = None) -> dict[str, Any]:
        return {} if obj is not None else dict(self.prepopulated_fields)

    def save_model(self, request: HttpRequest, obj: ShippingZone, form: Any, change: bool) -> None:
        data = form.cleaned_data
        zone = services.save_zone(slug=obj.slug, name=data["name"], countries=data["countries"])
        obj.pk, obj.countries = zone.pk, zone.countries
        obj._state.adding, obj._state.db = False, zone._state.db


class ShippingMethodForm(forms.ModelForm):
    class Meta:
        model = ShippingMethod
        fields = (
            "zone",
            "name",
            "kind",
            "price",
            "currency",
            "free_over",
            "is_active",
            "sort_order",
        )

    def clean_currency(self) -> str:
        # Stored in capitals (the CHECK constraint); typed in any case.
        return str(self.cleaned_data["currency"]).strip().upper()


class ShippingRateBandFormSet(forms.BaseInlineFormSet):
    """A banded method needs a band; a flat rate has none (the service's rule)."""

    def clean(self) -> None:
        super().clean()
        kept = [
            form
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE", False)
        ]
        kind = self.instance.kind
        if kind == ShippingMethodKind.FLAT and kept:
            raise ValidationError(
                "A flat-rate method has no bands: delete them or change the kind."
            )
        if kind in BANDED_KINDS and not kept:
            raise ValidationError("A method priced by bands needs at least one band.")


class ShippingRateBandInline(admin.TabularInline):
    model = ShippingRateBand
    formset = ShippingRateBandFormSet
    fields = ("lower", "upper", "price")
    extra = 0
    ordering = ("lower", "pk")


@admin.register(ShippingMethod)
class ShippingMethodAdmin(admin.ModelAdmin):
    """Methods with their bands. Weight bands are in grams, price bands in the method's
    currency; amounts must be exact to the currency (no decimals for JPY)."""

    form = ShippingMethodForm
    inlines = (ShippingRateBandInline,)
    list_display = ("name", "zone", "kind", "price", "currency", "free_over", "is_active")
    list_filter = ("is_active", "kind", "zone")
    list_select_related = ("zone",)
    search_fields = ("name", "zone__name", "zone__slug")
    ordering = ("zone__name", "sort_order", "name", "pk")
    fields = ("zone", "name", "kind", "price", "currency", "free_over", "is_active", "sort_order")
