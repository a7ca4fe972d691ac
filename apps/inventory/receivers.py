"""What the inventory does when the catalog says so (apps.catalog.signals)."""

from __future__ import annotations

from typing import Any

from apps.inventory import services


def receive_initial_stock(sender: Any, *, quantities: dict[int, int], actor: Any, **_: Any) -> None:
    """A new variant's opening stock goes into the default warehouse, through the ledger."""
    for variant_id, quantity in sorted(quantities.items()):
        services.restock(
            variant_id=variant_id, quantity=quantity, note="initial stock", actor=actor
        )
