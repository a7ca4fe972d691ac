"""Typed errors of the inventory."""

from __future__ import annotations

from ecommerce.errors import Conflict, InvalidInput, NotFound


class OutOfStock(Conflict):
    """Some lines ask for more than the serving warehouses hold; nothing was taken."""

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


class UnknownWarehouse(InvalidInput):
    code = "unknown_warehouse"
    title = "Unknown warehouse"

    def __init__(self, *, warehouse: str) -> None:
        super().__init__(f"No active warehouse {warehouse}.", warehouse=warehouse)


class WarehouseNotFound(NotFound):
    code = "warehouse_not_found"
    title = "Warehouse not found"

    def __init__(self, *, warehouse: str) -> None:
        super().__init__(f"No warehouse {warehouse}.", warehouse=warehouse)


class WarehouseSlugTaken(Conflict):
    code = "warehouse_slug_taken"
    title = "Warehouse slug taken"

    def __init__(self, *, slug: str) -> None:
        super().__init__(f"A warehouse is already called {slug}.", slug=slug)


class UnknownShippingZone(InvalidInput):
    """A warehouse was asked to serve zones that do not exist; nothing was changed."""

    code = "unknown_shipping_zone"
    title = "Unknown shipping zone"

    def __init__(self, *, zones: list[str]) -> None:
        super().__init__(f"No shipping zone {', '.join(zones)}.", zones=zones)
