"""Typed errors of the shipping app."""

from __future__ import annotations

from ecommerce.errors import Conflict, NotFound


class ShippingZoneNotFound(NotFound):
    code = "shipping_zone_not_found"
    title = "Shipping zone not found"

    def __init__(self, *, zone: str) -> None:
        super().__init__(f"No shipping zone {zone}.", zone=zone)


class ShippingZoneSlugTaken(Conflict):
    code = "shipping_zone_slug_taken"
    title = "Shipping zone slug taken"

    def __init__(self, *, slug: str) -> None:
        super().__init__(f"A shipping zone is already called {slug}.", slug=slug)
