"""Catalog admin: a product edited on one page with its variants and attribute values, every
write through apps.catalog.services so prices, caches and logs stay right.

Attribute values are form fields built from the product type (one per attribute it
declares, for the product and for each variant), so staff can only give values the type
allows, in the shape the attribute's input type asks. Stock is not here: the inventory
admin registers a subclass of `ProductAdmin` that adds the per-warehouse stock table and
the restock/adjust form (the catalog may not import the inventory).

The product actions need `catalog.change_product`, which catalog managers and admins hold,
so support, who may view the catalog, changes nothing here. Each change leaves a LogEntry.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.files.uploadedfile import UploadedFile
from django.db.models import Count, QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.html import format_html

from apps.catalog import media, services
from apps.catalog.exceptions import InvalidCategory
from apps.catalog.models import (
    AssignedProductAttribute,
    AssignedVariantAttribute,
    Attribute,
    AttributeValue,
    Category,
    Product,
    ProductMedia,
    ProductType,
    ProductVariant,
)
from ecommerce.errors import DomainError

ATTR_PREFIX = "attr_"
PRODUCT_FIELDS = ("name", "description", "category", "product_type", "is_active")
VARIANT_FIELDS = ("sku", "name", "price", "weight_grams", "is_active")


# --- Attribute values as form fields ---------------------------------------------------------


def attribute_field(attribute: Attribute) -> forms.Field:
    """The form field for a value of `attribute`: blank means "leave as it is"."""
    kind = Attribute.InputType
    label = attribute.name
    if attribute.input_type == kind.CHOICE:
        choices = [("", "---------")] + [
            (value.slug, value.name) for value in attribute.values.all()
        ]
        return forms.ChoiceField(label=label, choices=choices, required=False)
    if attribute.input_type == kind.BOOLEAN:
        choices = [("", "---------"), ("true", "Yes"), ("false", "No")]
        return forms.ChoiceField(label=label, choices=choices, required=False)
    if attribute.input_type == kind.NUMBER:
        return forms.DecimalField(
            label=label,
            required=False,
            max_digits=18,
            decimal_places=6,
            help_text=attribute.unit,
        )
    return forms.CharField(label=label, required=False, max_length=200, strip=True)


def value_initial(attribute: Attribute, value: AttributeValue) -> Any:
    """What the attribute's field shows for an assigned value."""
    kind = Attribute.InputType
    if attribute.input_type in (kind.CHOICE, kind.BOOLEAN):
        return value.slug
    if attribute.input_type == kind.NUMBER:
        return value.number
    return value.name


def given_values(
    form: forms.BaseForm, attributes: Sequence[Attribute], *, changed_only: bool
) -> dict[str, str]:
    """`{slug: value}` for the service, from the attribute fields the form filled in."""
    values: dict[str, str] = {}
    for attribute in attributes:
        name = ATTR_PREFIX + attribute.slug
        raw = form.cleaned_data.get(name)
        if raw in (None, "") or (changed_only and name not in form.changed_data):
            continue
        values[attribute.slug] = format(raw.normalize(), "f") if isinstance(raw, Decimal) else raw
    return values


def type_from_request(request: HttpRequest, obj: Product | None) -> ProductType | None:
    """The product type whose attributes the page offers: the one posted (so values are
    read for the type being saved), else the product's, else `?product_type=` on add."""
    raw = request.POST.get("product_type") if request.method == "POST" else None
    if raw is None and obj is not None:
        return obj.product_type
    raw = raw if raw is not None else request.GET.get("product_type")
    if not raw or not str(raw).isdigit():
        return None
    return ProductType.objects.filter(pk=int(raw)).first()


def type_attributes(product_type: ProductType | None, *, variant: bool) -> list[Attribute]:
    if product_type is None:
        return []
    related = product_type.variant_attributes if variant else product_type.product_attributes
    return list(related.prefetch_related("values").order_by("name"))


# --- Product form and variant inline -----------------------------------------------------------


class ProductAdminForm(forms.ModelForm):
    """Descriptive fields; the attribute fields are added per product type by the admin."""

    attributes: list[Attribute] = []

    class Meta:
        model = Product
        fields = PRODUCT_FIELDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None and self.attributes:
            assigned = {
                row.attribute_id: row.value
                for row in AssignedProductAttribute.objects.filter(
                    product=self.instance
                ).select_related("value")
            }
            for attribute in self.attributes:
                if attribute.pk in assigned:
                    self.initial[ATTR_PREFIX + attribute.slug] = value_initial(
                        attribute, assigned[attribute.pk]
                    )


class VariantInlineForm(forms.ModelForm):
    """A variant row; its SKU is fixed once created (orders and the ledger name it)."""

    attributes: list[Attribute] = []

    class Meta:
        model = ProductVariant
        fields = VARIANT_FIELDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.fields["sku"].disabled = True
            if self.attributes:
                assigned = {
                    row.attribute_id: row.value
                    for row in AssignedVariantAttribute.objects.filter(
                        variant=self.instance
                    ).select_related("value")
                }
                for attribute in self.attributes:
                    if attribute.pk in assigned:
                        self.initial[ATTR_PREFIX + attribute.slug] = value_initial(
                            attribute, assigned[attribute.pk]
                        )


class VariantFormSet(BaseInlineFormSet):
    def clean(self) -> None:
        """Two new rows may not share a SKU in any letter case (the database would refuse
        the second; the model form checks only against saved variants)."""
        super().clean()
        seen: set[str] = set()
        for form in self.forms:
            sku = getattr(form, "cleaned_data", {}).get("sku")
            if not sku or form.instance.pk is not None:
                continue
            if sku.upper() in seen:
                raise forms.ValidationError(f"Two variants share the SKU {sku}.")
            seen.add(sku.upper())


class VariantInline(admin.TabularInline):
    """A product's variants: added and changed through the services, never deleted
    (deactivate one instead: orders and the ledger refer to it)."""

    model = ProductVariant
    form = VariantInlineForm
    formset = VariantFormSet
    extra = 0
    min_num = 1
    validate_min = True
    can_delete = False
    show_change_link = False

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        attributes = type_attributes(type_from_request(request, obj), variant=True)
        declared = {ATTR_PREFIX + a.slug: attribute_field(a) for a in attributes}
        form = type("VariantForm", (VariantInlineForm,), {**declared, "attributes": attributes})
        kwargs["form"] = form
        kwargs["validate_min"] = True  # the admin passes min_num but not this
        if kwargs.get("fields") is None:
            kwargs["fields"] = [*VARIANT_FIELDS, *declared]
        return super().get_formset(request, obj, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        attributes = type_attributes(type_from_request(request, obj), variant=True)
        return [*VARIANT_FIELDS, *(ATTR_PREFIX + a.slug for a in attributes)]


class MediaInlineForm(forms.ModelForm):
    """An image: judged by its bytes before anything is saved, stored by add_media."""

    class Meta:
        model = ProductMedia
        fields = ("image", "alt", "sort_order")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["sort_order"].required = False
        if self.instance.pk is not None:
            self.fields["image"].disabled = True
        else:
            self.fields["sort_order"].disabled = True  # added at the end of the gallery

    def clean_image(self) -> Any:
        upload = self.cleaned_data.get("image")
        if self.instance.pk is not None or not isinstance(upload, UploadedFile):
            return upload
        try:
            with media.spool(upload) as copy:
                media.inspect_image(copy, size_bytes=copy.seek(0, 2))
        except DomainError as exc:
            raise forms.ValidationError(exc.detail) from None
        return upload


class MediaInline(admin.TabularInline):
    """A product's images; added through apps.catalog.media (validated, thumbnailed)."""

    model = ProductMedia
    form = MediaInlineForm
    fields = ("preview", "image", "alt", "sort_order", "size")
    readonly_fields = ("preview", "size")
    extra = 0

    @admin.display(description="")
    def preview(self, obj: ProductMedia) -> str:
        if obj.pk is None or not obj.image:
            return ""
        return format_html(
            '<img src="{}" alt="{}" style="max-height:60px">', obj.image.url, obj.alt
        )

    @admin.display(description="size")
    def size(self, obj: ProductMedia) -> str:
        if obj.pk is None:
            return ""
        return f"{obj.width}x{obj.height} {obj.content_type}, {obj.size_bytes} bytes"


class ServiceSaveMixin:
    """A save the forms allowed but a service refused (a slug taken meanwhile) rolls back
    whole and says why, instead of a 500."""

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        try:
            return super().changeform_view(  # type: ignore[misc]
                request, object_id, form_url, extra_context
            )
        except DomainError as exc:
            self.message_user(  # type: ignore[attr-defined]
                request, f"Nothing was saved: {exc.detail}", messages.ERROR
            )
            return HttpResponseRedirect(request.get_full_path())


def _record(formset: Any, new: list[Any], changed: list[tuple[Any, list[str]]]) -> None:
    """What the admin's change message reads from a saved formset."""
    formset.new_objects, formset.changed_objects, formset.deleted_objects = new, changed, []


@admin.register(Product)
class ProductAdmin(ServiceSaveMixin, admin.ModelAdmin):
    form = ProductAdminForm
    inlines: Sequence[type[admin.options.InlineModelAdmin]] = (VariantInline, MediaInline)
    list_display = ("name", "price", "currency", "category", "product_type", "is_active")
    list_filter = ("is_active", "category", "product_type", "currency")
    search_fields = ("name", "variants__sku")
    list_select_related = ("category", "product_type")
    readonly_fields: Sequence[str] = ("price", "currency", "created_at", "updated_at")
    actions = ("activate", "deactivate")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # products are deactivated, never deleted

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Product], search_term: str
    ) -> tuple[QuerySet[Product], bool]:
        queryset, _ = super().get_search_results(request, queryset, search_term)
        return queryset.distinct() if search_term else queryset, False

    # --- The form: descriptive fields, then one field per attribute of the type ------------

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):
        attributes = type_attributes(type_from_request(request, obj), variant=False)
        declared = {ATTR_PREFIX + a.slug: attribute_field(a) for a in attributes}
        kwargs["form"] = type("ProductForm", (self.form,), {**declared, "attributes": attributes})
        if kwargs.get("fields") is None:
            kwargs["fields"] = [*PRODUCT_FIELDS, *declared]
        return super().get_form(request, obj, change, **kwargs)

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> list[tuple[Any, Any]]:
        attributes = type_attributes(type_from_request(request, obj), variant=False)
        fieldsets: list[tuple[Any, Any]] = [
            (None, {"fields": [*PRODUCT_FIELDS, *self.get_readonly_fields(request, obj)]})
        ]
        if attributes:
            fieldsets.append(
                (
                    "Attributes",
                    {
                        "fields": [ATTR_PREFIX + a.slug for a in attributes],
                        "description": "Blank leaves a value as it is.",
                    },
                )
            )
        elif obj is None:
            fieldsets[0][1]["description"] = (
                "Pick a product type and save, or open this page with ?product_type=<id>, "
                "to fill in its attributes."
            )
        return fieldsets

    # --- Saving through the services ------------------------------------------------------------

    def save_model(self, request: HttpRequest, obj: Product, form: Any, change: bool) -> None:
        if not change:
            return  # created with its variants in save_related: a product needs one
        fields: dict[str, Any] = {
            name: form.cleaned_data[name] for name in PRODUCT_FIELDS if name in form.changed_data
        }
        attributes = given_values(form, form.attributes, changed_only=True)
        if attributes:
            fields["attributes"] = attributes
        if fields:
            obj.refresh_from_db()  # the service saves from the stored row
            services.update_product(product=obj, **fields)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        for formset in formsets:
            if formset.model is ProductVariant:
                self.save_variants(request, form, formset, change)
            else:
                self.save_other_formset(request, form, formset, change)

    def save_other_formset(
        self, request: HttpRequest, form: Any, formset: Any, change: bool
    ) -> None:
        """The media inline through apps.catalog.media; others (a subclass's) as Django
        saves them."""
        if formset.model is not ProductMedia:
            self.save_formset(request, form, formset, change)
            return
        product = form.instance
        new, changed, deleted = [], [], []
        for row in formset.forms:
            if row in formset.deleted_forms:
                if row.instance.pk is not None:
                    media.delete_media(media=row.instance)
                    deleted.append(row.instance)
            elif row.instance.pk is None:
                if row.has_changed() and row.cleaned_data.get("image"):
                    new.append(
                        media.add_media(
                            product=product,
                            upload=row.cleaned_data["image"],
                            alt=row.cleaned_data.get("alt") or "",
                            actor=request.user,
                        )
                    )
            elif row.has_changed():
                media.update_media(
                    media=row.instance,
                    alt=row.cleaned_data.get("alt"),
                    sort_order=row.cleaned_data.get("sort_order"),
                )
                changed.append((row.instance, row.changed_data))
        _record(formset, new, changed)
        formset.deleted_objects = deleted

    def save_variants(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        rows = [row for row in formset.forms if row.has_changed()]
        if not change:
            self._create_product(request, form, formset, rows)
            return
        product = form.instance
        new, changed = [], []
        for row in rows:
            attributes = given_values(row, row.attributes, changed_only=row.instance.pk is not None)
            if row.instance.pk is None:
                spec = self._spec(row, attributes)
                new.append(services.add_variant(product=product, spec=spec, actor=request.user))
                continue
            fields = {
                name: row.cleaned_data[name]
                for name in VARIANT_FIELDS[1:]
                if name in row.changed_data
            }
            if attributes:
                fields["attributes"] = attributes
            if fields:
                variant = ProductVariant.objects.select_related("product").get(pk=row.instance.pk)
                services.update_variant(variant=variant, **fields)
                changed.append((variant, sorted(fields)))
        _record(formset, new, changed)

    @staticmethod
    def _spec(row: forms.ModelForm, attributes: dict[str, str]) -> services.VariantSpec:
        data = row.cleaned_data
        return services.VariantSpec(
            sku=data["sku"],
            name=data.get("name") or "",
            price=data["price"],
            weight_grams=data.get("weight_grams"),
            is_active=data.get("is_active", True),
            attributes=attributes,
        )

    def _create_product(
        self, request: HttpRequest, form: Any, formset: Any, rows: list[Any]
    ) -> None:
        specs = [
            self._spec(row, given_values(row, row.attributes, changed_only=False)) for row in rows
        ]
        data = form.cleaned_data
        product = services.create_product(
            name=data["name"],
            description=data.get("description") or "",
            category=data.get("category"),
            product_type=data.get("product_type"),
            is_active=data.get("is_active", False),
            attributes=given_values(form, form.attributes, changed_only=False),
            variants=specs,
            actor=request.user,
        )
        # The admin logs and redirects with the form's instance: make it the product.
        for name in ("pk", "price", "currency", "created_at", "updated_at"):
            setattr(form.instance, name, getattr(product, name))
        form.instance._state.adding, form.instance._state.db = False, product._state.db
        _record(formset, list(ProductVariant.objects.filter(product=product)), [])

    # --- Actions -------------------------------------------------------------------------------

    @admin.action(description="Activate selected products", permissions=["change"])
    def activate(self, request: HttpRequest, queryset: QuerySet[Product]) -> None:
        self._set_active(request, queryset, active=True)

    @admin.action(description="Deactivate selected products", permissions=["change"])
    def deactivate(self, request: HttpRequest, queryset: QuerySet[Product]) -> None:
        self._set_active(request, queryset, active=False)

    def _set_active(
        self, request: HttpRequest, queryset: QuerySet[Product], *, active: bool
    ) -> None:
        verb = "Activated" if active else "Deactivated"
        already = [product for product in queryset if product.is_active == active]
        todo = [product for product in queryset if product.is_active != active]
        for product in todo:
            services.update_product(product=product, is_active=active)
            self.log_change(request, product, verb)
        if todo:
            names = ", ".join(product.name for product in todo)
            self.message_user(request, f"{verb} {len(todo)} product(s): {names}.", messages.SUCCESS)
        elif already:
            self.message_user(
                request, f"Nothing changed: no product was {verb.lower()}.", messages.WARNING
            )
        state = "active" if active else "inactive"
        for product in already:
            self.message_user(
                request,
                f"Product {product.name}: already {state}, left as it was.",
                messages.INFO if todo else messages.ERROR,
            )


# --- Categories --------------------------------------------------------------------------------


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


# --- Attributes and product types ---------------------------------------------------------------


class AttributeValueForm(forms.ModelForm):
    """A choice value: declared here, never renamed or deleted (products show it)."""

    class Meta:
        model = AttributeValue
        fields = ("name", "slug", "sort_order")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["sort_order"].required = False  # blank: after the others
        if self.instance.pk is not None:
            for field in self.fields.values():
                field.disabled = True


class AttributeValueInline(admin.TabularInline):
    model = AttributeValue
    form = AttributeValueForm
    fields = ("name", "slug", "sort_order")
    prepopulated_fields = {"slug": ("name",)}
    extra = 0
    can_delete = False


@admin.register(Attribute)
class AttributeAdmin(ServiceSaveMixin, admin.ModelAdmin):
    """Attributes with their choice values, through the services. Text, number and yes/no
    values are made as products use them; choice values are declared here."""

    list_display = ("name", "slug", "input_type", "unit", "filterable", "value_count")
    list_filter = ("input_type", "filterable")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    inlines = (AttributeValueInline,)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Attribute]:
        return super().get_queryset(request).annotate(_values=Count("values"))

    @admin.display(description="values", ordering="_values")
    def value_count(self, obj: Attribute) -> int:
        return obj._values  # type: ignore[attr-defined]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Sequence[str]:
        # The slug names it in URLs, filters and imports; values were made for the type.
        return ("slug", "input_type") if obj is not None else ()

    def get_prepopulated_fields(self, request: HttpRequest, obj: Any = None) -> dict[str, Any]:
        return {} if obj is not None else dict(self.prepopulated_fields)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # products and filters name it

    def save_model(self, request: HttpRequest, obj: Attribute, form: Any, change: bool) -> None:
        if not change:
            return  # created with its values in save_related
        fields = {
            name: form.cleaned_data[name]
            for name in ("name", "unit", "filterable")
            if name in form.changed_data
        }
        services.update_attribute(attribute=Attribute.objects.get(pk=obj.pk), **fields)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        (formset,) = formsets
        new = [row for row in formset.forms if row.instance.pk is None and row.has_changed()]
        specs = [
            services.ValueSpec(
                name=row.cleaned_data["name"],
                slug=row.cleaned_data["slug"],
                sort_order=row.cleaned_data.get("sort_order"),
            )
            for row in new
        ]
        if not change:
            data = form.cleaned_data
            attribute = services.create_attribute(
                name=data["name"],
                slug=data["slug"],
                input_type=data["input_type"],
                unit=data.get("unit") or "",
                filterable=data.get("filterable", False),
                values=specs,
            )
            form.instance.pk = attribute.pk
            form.instance._state.adding = False
            form.instance._state.db = attribute._state.db
            created = list(attribute.values.all())
        else:
            created = (
                services.add_attribute_values(attribute=form.instance, values=specs)
                if specs
                else []
            )
        _record(formset, created, [])


class ProductTypeForm(forms.ModelForm):
    class Meta:
        model = ProductType
        fields = ("name", "slug", "tax_class", "product_attributes", "variant_attributes")

    def clean(self) -> dict[str, Any]:
        """An attribute is either the product's or each variant's (the service refuses
        both; refused here it is a form error)."""
        data = super().clean()
        both = set(data.get("product_attributes") or ()) & set(data.get("variant_attributes") or ())
        if both:
            names = ", ".join(sorted(attribute.name for attribute in both))
            raise forms.ValidationError(
                f"An attribute is for products or for variants, not both: {names}."
            )
        return data


@admin.register(ProductType)
class ProductTypeAdmin(ServiceSaveMixin, admin.ModelAdmin):
    """Product types, through the services: an attribute the type stops declaring loses
    its values on the type's products."""

    form = ProductTypeForm
    list_display = ("name", "slug", "tax_class")
    list_filter = ("tax_class",)
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    filter_horizontal = ("product_attributes", "variant_attributes")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Sequence[str]:
        return ("slug",) if obj is not None else ()

    def get_prepopulated_fields(self, request: HttpRequest, obj: Any = None) -> dict[str, Any]:
        return {} if obj is not None else dict(self.prepopulated_fields)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # its products refer to it

    def save_model(self, request: HttpRequest, obj: ProductType, form: Any, change: bool) -> None:
        data = form.cleaned_data
        if not change:
            created = services.create_product_type(
                name=data["name"],
                slug=data["slug"],
                tax_class=data["tax_class"],
                product_attributes=list(data["product_attributes"]),
                variant_attributes=list(data["variant_attributes"]),
            )
            obj.pk = created.pk
            obj._state.adding, obj._state.db = False, created._state.db
            return
        fields = {
            name: list(data[name]) if name.endswith("_attributes") else data[name]
            for name in ("name", "tax_class", "product_attributes", "variant_attributes")
            if name in form.changed_data
        }
        services.update_product_type(product_type=ProductType.objects.get(pk=obj.pk), **fields)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        pass  # the service set the attributes; the form's save_m2m would set them again
