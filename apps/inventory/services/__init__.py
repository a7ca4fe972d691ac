"""The only code that writes the inventory: stock (allocation, release, restock,
adjustment, counts) and warehouses. Callers import this package, not its modules."""

from apps.inventory.services.stock import (
    MAX_STOCK,
    RELEASE_REASONS,
    StockLine,
    adjust_stock,
    allocate,
    merge_lines,
    receive_returned,
    release,
    restock,
    set_stock_level,
)
from apps.inventory.services.warehouses import create_warehouse, update_warehouse

__all__ = [
    "MAX_STOCK",
    "RELEASE_REASONS",
    "StockLine",
    "adjust_stock",
    "allocate",
    "create_warehouse",
    "merge_lines",
    "receive_returned",
    "release",
    "restock",
    "set_stock_level",
    "update_warehouse",
]
