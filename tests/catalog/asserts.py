"""Assertions shared by the catalog API, admin and command tests."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpResponse

from apps.catalog.models import Category, Product, StockMovement

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
    """Every column a write could touch, to prove that a refusal changed nothing."""
    return {
        "products": list(
            Product.objects.order_by("pk").values_list(
                "pk",
                "sku",
                "name",
                "description",
                "price",
                "currency",
                "category_id",
                "is_active",
                "stock",
                "updated_at",
            )
        ),
        "movements": list(
            StockMovement.objects.order_by("pk").values_list(
                "pk", "product_id", "delta", "balance", "reason", "note", "actor_id"
            )
        ),
        "categories": list(
            Category.objects.order_by("pk").values_list(
                "pk", "name", "slug", "parent_id", "is_active", "updated_at"
            )
        ),
    }


def ledger_rows(product: Product) -> list[tuple[int, int, str, str]]:
    """`(delta, balance, reason, note)` of a product's movements, oldest first."""
    return list(
        StockMovement.objects.filter(product=product)
        .order_by("pk")
        .values_list("delta", "balance", "reason", "note")
    )
