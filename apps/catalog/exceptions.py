"""Typed errors of the catalog."""

from __future__ import annotations

from ecommerce.errors import Conflict, InvalidInput, NotFound


class OutOfStock(Conflict):
    """Some lines ask for more than is on hand; nothing was reserved."""

    code = "out_of_stock"
    title = "Insufficient stock"

    def __init__(self, *, shortfalls: dict[str, dict[str, int]]) -> None:
        skus = ", ".join(sorted(shortfalls))
        super().__init__(
            f"Not enough stock for: {skus}.",
            shortfalls=[
                {"sku": sku, "requested": v["requested"], "available": v["available"]}
                for sku, v in sorted(shortfalls.items())
            ],
        )
        self.shortfalls = shortfalls


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


class InvalidCategory(InvalidInput):
    code = "invalid_category"
    title = "Invalid category"


class InvalidAttributes(InvalidInput):
    """Attribute values a product type does not declare, or that its attributes refuse."""

    code = "invalid_attributes"
    title = "Invalid attribute values"
