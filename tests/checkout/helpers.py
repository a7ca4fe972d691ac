"""Carts built through the API, and the addresses checkout tests use."""

from __future__ import annotations

from typing import Any

from rest_framework.test import APIClient

BERLIN: dict[str, str] = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "street_address_1": "Unter den Linden 1",
    "city": "Berlin",
    "postal_code": "10117",
    "country": "DE",
}


def new_cart(client: APIClient) -> dict[str, Any]:
    response = client.post("/api/carts", format="json")
    assert response.status_code in (200, 201), response.content
    return response.json()


def add(client: APIClient, token: str, sku: str, quantity: int = 1) -> Any:
    return client.post(
        f"/api/carts/{token}/lines", {"sku": sku, "quantity": quantity}, format="json"
    )


def codes(problems: list[dict[str, Any]]) -> list[str]:
    return sorted(problem["code"] for problem in problems)
