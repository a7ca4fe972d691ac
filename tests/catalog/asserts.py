"""Assertions shared by the catalog API, admin and command tests."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpResponse

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
from apps.inventory.models import Stock, StockMovement

PROBLEM_KEYS = {"type", "title", "status", "detail", "instance", "code", "request_id"}


def assert_problem(
    response: HttpResponse, status: int, code: str, *, extra: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Check an application/problem+json response and return its body.

    `extra` names the extension members the problem must carry besides the standard ones.
    """
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert set(body) - {"errors"} == PROBLEM_KEYS | set(extra)
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"{settings.PROBLEM_TYPE_BASE_URI}{code.replace('_', '-')}"
    assert body["instance"] == response.wsgi_request.path
    assert body["request_id"] == response["X-Request-ID"]
    return body


def assert_invalid(response: HttpResponse, pointer: str) -> list[dict[str, str]]:
    """A 400 validation problem whose only field errors point at `pointer`."""
    body = assert_problem(response, 400, "validation_error")
    assert [error["pointer"] for error in body["errors"]] == [pointer]
    return body["errors"]


def catalog_snapshot() -> dict[str, list[tuple[Any, ...]]]:
    """Every column a catalog write could touch, to prove that a refusal changed nothing:
    products, variants, attributes and their values, product types, assignments, media,
    categories, and the stock rows and ledger rows in every warehouse."""
    return {
        "products": list(
            Product.objects.order_by("pk").values_list(
                "pk",
                "name",
                "description",
                "price",
                "currency",
                "category_id",
                "product_type_id",
                "is_active",
                "updated_at",
            )
        ),
        "variants": list(
            ProductVariant.objects.order_by("pk").values_list(
                "pk",
                "product_id",
                "sku",
                "name",
                "price",
                "currency",
                "weight_grams",
                "is_active",
                "sort_order",
                "updated_at",
            )
        ),
        "product_attributes": list(
            AssignedProductAttribute.objects.order_by("pk").values_list(
                "pk", "product_id", "attribute_id", "value_id"
            )
        ),
        "variant_attributes": list(
            AssignedVariantAttribute.objects.order_by("pk").values_list(
                "pk", "variant_id", "attribute_id", "value_id"
            )
        ),
        "attributes": list(
            Attribute.objects.order_by("pk").values_list(
                "pk", "name", "slug", "input_type", "unit", "filterable", "updated_at"
            )
        ),
        "attribute_values": list(
            AttributeValue.objects.order_by("pk").values_list(
                "pk", "attribute_id", "name", "slug", "number", "sort_order"
            )
        ),
        "product_types": list(
            ProductType.objects.order_by("pk").values_list("pk", "name", "slug", "updated_at")
        ),
        "product_type_attributes": sorted(
            [
                *(
                    ("product", *row)
                    for row in ProductType.product_attributes.through.objects.values_list(
                        "producttype_id", "attribute_id"
                    )
                ),
                *(
                    ("variant", *row)
                    for row in ProductType.variant_attributes.through.objects.values_list(
                        "producttype_id", "attribute_id"
                    )
                ),
            ]
        ),
        "media": list(
            ProductMedia.objects.order_by("pk").values_list(
                "pk", "product_id", "image", "alt", "sort_order", "thumbnails"
            )
        ),
        "stock": list(
            Stock.objects.order_by("pk").values_list(
                "pk", "warehouse_id", "variant_id", "quantity", "updated_at"
            )
        ),
        "movements": list(
            StockMovement.objects.order_by("pk").values_list(
                "pk",
                "warehouse_id",
                "variant_id",
                "delta",
                "balance",
                "reason",
                "reference",
                "note",
                "actor_id",
            )
        ),
        "categories": list(
            Category.objects.order_by("pk").values_list(
                "pk", "name", "slug", "parent_id", "is_active", "updated_at"
            )
        ),
    }


def ledger_rows(owner: Product | ProductVariant) -> list[tuple[int, int, str, str]]:
    """`(delta, balance, reason, note)` of the movements of a variant, or of every variant
    of a product, oldest first."""
    movements = (
        StockMovement.objects.filter(variant__product=owner)
        if isinstance(owner, Product)
        else StockMovement.objects.filter(variant=owner)
    )
    return list(movements.order_by("pk").values_list("delta", "balance", "reason", "note"))
