from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from rest_framework.test import APIClient

from apps.catalog import services
from apps.catalog.models import Attribute, ProductType
from apps.users.models import User
from ecommerce import caching
from ecommerce.api.permissions import Role
from tests.catalog.factories import make_product
from tests.users.factories import UserFactory

MANAGER_EMAIL = "manager@example.com"


@pytest.fixture(autouse=True)
def _cache_not_bypassed() -> Iterator[None]:
    """A failure simulated by one test must not make the next one skip the cache."""
    caching.reset_bypass()
    yield
    caching.reset_bypass()


@pytest.fixture
def manager() -> User:
    return UserFactory(email=MANAGER_EMAIL, roles=[Role.CATALOG_MANAGER])


@pytest.fixture
def manager_client(client_for: Callable[[Any], APIClient], manager: User) -> APIClient:
    return client_for(manager)


@pytest.fixture
def client_of(
    api_client: APIClient, client_for: Callable[[Any], APIClient]
) -> Callable[[str], APIClient]:
    """A client for a caller kind: "anonymous" or a role name."""

    def make(kind: str) -> APIClient:
        return api_client if kind == "anonymous" else client_for(UserFactory(roles=[Role(kind)]))

    return make


@pytest.fixture
def tee_type() -> ProductType:
    """T-shirts: material, width (cm) and organic per product; colour and size per variant."""
    choice = Attribute.InputType.CHOICE
    colour = services.create_attribute(
        name="Colour",
        slug="colour",
        input_type=choice,
        values=[services.ValueSpec("Black"), services.ValueSpec("White")],
    )
    size = services.create_attribute(
        name="Size",
        slug="size",
        input_type=choice,
        values=[services.ValueSpec(name) for name in ("S", "M", "L")],
    )
    material = services.create_attribute(
        name="Material", slug="material", input_type=Attribute.InputType.TEXT
    )
    width = services.create_attribute(
        name="Width", slug="width", input_type=Attribute.InputType.NUMBER, unit="cm"
    )
    organic = services.create_attribute(
        name="Organic", slug="organic", input_type=Attribute.InputType.BOOLEAN
    )
    return services.create_product_type(
        name="T-shirt",
        slug="t-shirt",
        product_attributes=[material, width, organic],
        variant_attributes=[colour, size],
    )


@pytest.fixture
def two_products(tee_type: Any) -> tuple[Any, Any]:
    """A tee in two variants (black M with 4 units, white L with none) and a mug."""
    tee = services.create_product(
        name="Tee",
        product_type=tee_type,
        attributes={"material": "Cotton"},
        variants=[
            services.VariantSpec(
                sku="TEE-BLK-M",
                price=Decimal("19.90"),
                attributes={"colour": "black", "size": "m"},
                initial_stock=4,
            ),
            services.VariantSpec(
                sku="TEE-WHT-L", price=Decimal("17.50"), attributes={"colour": "white", "size": "l"}
            ),
        ],
    )
    mug = make_product(sku="MUG", stock=3, price="9.00")
    return tee, mug
