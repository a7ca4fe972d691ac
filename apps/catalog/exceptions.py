"""Typed errors of the catalog."""

from __future__ import annotations

from decimal import Decimal

from ecommerce.errors import Conflict, InvalidInput, NotFound


class ProductNotFound(NotFound):
    code = "product_not_found"
    title = "Product not found"

    def __init__(self, *, lookups: list[str]) -> None:
        super().__init__(
            f"Unknown or inactive product: {', '.join(lookups)}.", products=sorted(lookups)
        )


class ProductUnavailable(InvalidInput):
    """A line names a product that does not exist or is not for sale."""

    code = "product_unavailable"
    title = "Product unavailable"

    def __init__(self, *, lookups: list[str]) -> None:
        super().__init__(
            f"Unknown or inactive product: {', '.join(lookups)}.", products=sorted(lookups)
        )


class SkuTaken(Conflict):
    code = "sku_taken"
    title = "SKU already exists"

    def __init__(self, *, sku: str) -> None:
        super().__init__(f"A product with SKU {sku} already exists.", sku=sku)


class InvalidPrice(InvalidInput):
    """A price its currency cannot hold exactly: 12.50 in yen, any price in dinars."""

    code = "invalid_price"
    title = "Invalid price"

    def __init__(self, *, price: Decimal, currency: str, reason: str) -> None:
        super().__init__(reason, price=str(price), currency=currency)


class InvalidCategory(InvalidInput):
    code = "invalid_category"
    title = "Invalid category"


class InvalidAttributes(InvalidInput):
    """Attribute values a product type does not declare, or that its attributes refuse."""

    code = "invalid_attributes"
    title = "Invalid attribute values"


class SlugTaken(Conflict):
    """An attribute, attribute value or product type with this slug exists."""

    code = "slug_taken"
    title = "Slug already exists"

    def __init__(self, *, kind: str, slug: str) -> None:
        super().__init__(f"A {kind} with slug {slug} already exists.", slug=slug)


class InvalidImage(InvalidInput):
    """An upload that is not a whole JPEG, PNG, WebP or GIF image, judged by its bytes."""

    code = "invalid_image"
    title = "Invalid image"


class ImageTooLarge(InvalidInput):
    code = "image_too_large"
    title = "Image too large"

    def __init__(self, *, max_bytes: int) -> None:
        super().__init__(f"An image may hold at most {max_bytes} bytes.", max_bytes=max_bytes)


class ImageTooManyPixels(InvalidInput):
    """Width times height over the cap: refused before decoding (a decompression bomb)."""

    code = "image_too_many_pixels"
    title = "Image has too many pixels"

    def __init__(self, *, max_pixels: int) -> None:
        super().__init__(
            f"An image may have at most {max_pixels} pixels (width x height).",
            max_pixels=max_pixels,
        )


class MediaNotFound(NotFound):
    code = "media_not_found"
    title = "Media not found"

    def __init__(self, *, media_id: int) -> None:
        super().__init__(f"The product has no media {media_id}.", media_id=media_id)


class AttributeNotFound(NotFound):
    code = "attribute_not_found"
    title = "Attribute not found"

    def __init__(self, *, slug: str) -> None:
        super().__init__(f"Unknown attribute: {slug}.", slug=slug)


class ProductTypeNotFound(NotFound):
    code = "product_type_not_found"
    title = "Product type not found"

    def __init__(self, *, slug: str) -> None:
        super().__init__(f"Unknown product type: {slug}.", slug=slug)
