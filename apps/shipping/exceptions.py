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


class ShippingMethodNotFound(NotFound):
    code = "shipping_method_not_found"
    title = "Shipping method not found"

    def __init__(self, *, method_id: int | str) -> None:
        super().__init__(f"No shipping method {method_id}.", method_id=method_id)


class ShippingMethodNameTaken(Conflict):
    code = "shipping_method_name_taken"
    title = "Shipping method name taken"

    def __init__(self, *, zone: str, name: str, currency: str) -> None:
        super().__init__(
            f"Zone {zone} has a method called {name} in {currency}.",
            zone=zone,
            name=name,
            currency=currency,
        )
