"""Categories, product types with their attributes, products and their variants.

A product (what a shopper reads about: name, description, category, shared attribute
values) is sold as one or more variants (what is bought: SKU, price, its own attribute
values such as size M, colour black). Stock is not here: `apps.inventory` keeps it per
variant and warehouse, with its ledger.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models.functions import Upper

from ecommerce.models import TimeStampedModel
from ecommerce.money import amount_error

# A SKU is human-readable and holds at least one letter, so it never reads as a numeric id.
SKU_PATTERN = r"^(?=.*[A-Za-z])[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
sku_validator = RegexValidator(
    SKU_PATTERN,
    "A SKU is 1-64 letters, digits, '.', '_' or '-', starts with a letter or digit, "
    "and holds at least one letter.",
)


def store_currency() -> str:
    return settings.STORE_CURRENCY


class Category(TimeStampedModel):
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=120, unique=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        verbose_name_plural = "categories"
        ordering = ("name",)
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(parent=models.F("pk")), name="catalog_category_not_own_parent"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Attribute(TimeStampedModel):
    """A property products or variants declare (colour, size, material, weight)."""

    class InputType(models.TextChoices):
        CHOICE = "choice", "Choice"
        TEXT = "text", "Text"
        NUMBER = "number", "Number"
        BOOLEAN = "boolean", "Yes / no"

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=120, unique=True)
    input_type = models.CharField(max_length=8, choices=InputType.choices, default=InputType.CHOICE)
    unit = models.CharField(
        max_length=16, blank=True, help_text="For numbers: the unit shown after the value (cm)."
    )
    filterable = models.BooleanField(
        default=True, help_text="Offered as a filter and facet on the product list."
    )

    class Meta:
        ordering = ("name",)
        constraints = [
            models.CheckConstraint(
                condition=models.Q(input_type__in=["choice", "text", "number", "boolean"]),
                name="catalog_attribute_input_type",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class AttributeValue(models.Model):
    """One value of an attribute. Choice values are declared by staff; text, number and
    yes/no values are made as products use them, so every assignment and every facet
    reads the same table."""

    attribute = models.ForeignKey(Attribute, on_delete=models.CASCADE, related_name="values")
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=200)
    number = models.DecimalField(max_digits=18, decimal_places=6, null=True, blank=True)
    sort_order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ("attribute_id", "sort_order", "name")
        constraints = [
            models.UniqueConstraint(
                fields=["attribute", "slug"], name="catalog_attributevalue_slug_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.attribute.name}: {self.name}" if self.attribute_id else self.name


class ProductType(TimeStampedModel):
    """A kind of product, declaring the attributes its products and its variants carry."""

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=120, unique=True)
    # A slug, not a foreign key: pricing depends on the catalog, never the other way round.
    # Pricing reads it to find the tax rate of the type's products in the destination.
    tax_class = models.SlugField(
        max_length=32,
        default="standard",
        help_text="The tax class of this type's products: the slug of a class under "
        "Pricing > Tax classes (standard, reduced, zero, ...). A class without a rate for "
        "the destination country is taxed at 0%.",
    )
    product_attributes = models.ManyToManyField(Attribute, blank=True, related_name="product_types")
    variant_attributes = models.ManyToManyField(
        Attribute, blank=True, related_name="variant_product_types"
    )

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


class Product(TimeStampedModel):
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    category = models.ForeignKey(
        Category, null=True, blank=True, on_delete=models.PROTECT, related_name="products"
    )
    product_type = models.ForeignKey(
        ProductType, null=True, blank=True, on_delete=models.PROTECT, related_name="products"
    )
    is_active = models.BooleanField(default=True)
    # The lowest price of its active variants (of all, when none is active), kept by
    # apps.catalog.services whenever a variant changes: lists sort and filter on it.
    price = models.DecimalField(max_digits=12, decimal_places=2, editable=False)
    currency = models.CharField(max_length=3, default=store_currency, editable=False)

    class Meta:
        ordering = ("name", "pk")
        constraints = [
            models.CheckConstraint(condition=models.Q(price__gt=0), name="catalog_price_gt_0"),
            models.CheckConstraint(
                condition=models.Q(currency__regex=r"^[A-Z]{3}$"),
                name="catalog_currency_iso4217",
            ),
        ]
        indexes = [
            models.Index(fields=["is_active", "price"], name="catalog_active_price_idx"),
            models.Index(fields=["is_active", "name"], name="catalog_active_name_idx"),
            models.Index(fields=["is_active", "-created_at"], name="catalog_active_new_idx"),
            models.Index(fields=["category", "is_active"], name="catalog_category_active_idx"),
        ]

    def __str__(self) -> str:
        return self.name


class ProductVariant(TimeStampedModel):
    """What is bought: a SKU with its price. Never hard-deleted: orders and the stock
    ledger refer to it."""

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="variants")
    # Unique whatever the letter case (see Meta); stored as entered.
    sku = models.CharField(max_length=64, validators=[sku_validator])
    name = models.CharField(
        max_length=200, blank=True, help_text="What tells it from its siblings: `M / Black`."
    )
    price = models.DecimalField(
        max_digits=12, decimal_places=2, validators=[MinValueValidator(Decimal("0.01"))]
    )
    currency = models.CharField(max_length=3, default=store_currency)
    weight_grams = models.PositiveIntegerField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    sort_order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ("product_id", "sort_order", "pk")
        constraints = [
            models.UniqueConstraint(
                Upper("sku"),
                name="catalog_variant_sku_ci_unique",
                violation_error_message="A variant with this SKU exists (in some letter case).",
            ),
            models.CheckConstraint(
                condition=models.Q(price__gt=0), name="catalog_variant_price_gt_0"
            ),
            models.CheckConstraint(
                condition=models.Q(currency__regex=r"^[A-Z]{3}$"),
                name="catalog_variant_currency_iso4217",
            ),
        ]
        indexes = [
            models.Index(fields=["product", "is_active"], name="catalog_variant_product_idx"),
            models.Index(fields=["price"], name="catalog_variant_price_idx"),
        ]

    def __str__(self) -> str:
        return self.sku

    def clean(self) -> None:
        """A price exact to its currency's minor unit (the services refuse the rest too;
        here a form shows it beside the field). A new variant takes its product's currency."""
        super().clean()
        if self.price is None:
            return
        currency = self.currency
        if self._state.adding and self.product_id is not None:
            currency = self.product.currency
        reason = amount_error(self.price, currency)
        if reason is not None:
            raise ValidationError({"price": reason})

    @property
    def display_name(self) -> str:
        """The product's name, with the variant's when it has one: `Tee (M / Black)`."""
        product_name = self.product.name
        return f"{product_name} ({self.name})" if self.name else product_name


class AssignedProductAttribute(models.Model):
    """A product's value of one of its type's product attributes (one per attribute)."""

    product = models.ForeignKey(
        Product, on_delete=models.CASCADE, related_name="attribute_assignments"
    )
    attribute = models.ForeignKey(Attribute, on_delete=models.PROTECT, related_name="+")
    value = models.ForeignKey(AttributeValue, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["product", "attribute"], name="catalog_product_attribute_once"
            ),
        ]
        indexes = [models.Index(fields=["value", "product"], name="catalog_prodattr_value_idx")]

    def __str__(self) -> str:
        return f"{self.attribute.name}: {self.value.name}"


class AssignedVariantAttribute(models.Model):
    """A variant's value of one of its type's variant attributes (one per attribute)."""

    variant = models.ForeignKey(
        ProductVariant, on_delete=models.CASCADE, related_name="attribute_assignments"
    )
    attribute = models.ForeignKey(Attribute, on_delete=models.PROTECT, related_name="+")
    value = models.ForeignKey(AttributeValue, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["variant", "attribute"], name="catalog_variant_attribute_once"
            ),
        ]
        indexes = [models.Index(fields=["value", "variant"], name="catalog_varattr_value_idx")]

    def __str__(self) -> str:
        return f"{self.attribute.name}: {self.value.name}"


def media_upload_to(instance: ProductMedia, filename: str) -> str:
    """Uploads are stored under a random name: the client's file name is never a path."""
    import uuid
    from pathlib import PurePosixPath

    suffix = PurePosixPath(filename).suffix.lower()[:8]
    return f"products/{instance.product_id}/{uuid.uuid4().hex}{suffix}"


class ProductMedia(TimeStampedModel):
    """An image of a product, validated by content on upload; thumbnails are made by a
    Celery task and recorded in `thumbnails` (size name -> storage name)."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="media")
    image = models.FileField(upload_to=media_upload_to, max_length=255)
    alt = models.CharField(max_length=255, blank=True)
    sort_order = models.PositiveIntegerField(default=0)
    content_type = models.CharField(max_length=32, editable=False)
    width = models.PositiveIntegerField(editable=False)
    height = models.PositiveIntegerField(editable=False)
    size_bytes = models.PositiveIntegerField(editable=False)
    thumbnails = models.JSONField(default=dict, blank=True, editable=False)

    class Meta:
        verbose_name_plural = "product media"
        ordering = ("product_id", "sort_order", "pk")
        indexes = [models.Index(fields=["product", "sort_order"], name="catalog_media_product_idx")]

    def __str__(self) -> str:
        return self.alt or self.image.name
