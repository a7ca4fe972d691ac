"""The `Location` header of a 201: the new resource's path, written as the schema writes it.

The router matches paths with and without a trailing slash; the OpenAPI schema documents
them with one (`/api/orders/{public_id}/`), and so does every `Location` header, so that a
client can match the header against the schema's path templates (and a generated client
calls the very path it was given). tests/ecommerce/test_api_conventions.py walks every 201
of the schema to keep the two in step.
"""

from __future__ import annotations

from urllib.parse import quote

from drf_spectacular.utils import OpenApiParameter

HEADER = "Location"


def location(*segments: object) -> dict[str, str]:
    """`{"Location": "/api/<segment>/.../"}`, each segment percent-encoded (a SKU or slug
    with a reserved character stays one segment)."""
    path = "/".join(quote(str(segment), safe="") for segment in segments)
    return {HEADER: f"/api/{path}/"}


def location_parameter(description: str) -> OpenApiParameter:
    """The schema's documentation of the header on the 201 response."""
    return OpenApiParameter(
        HEADER,
        str,
        OpenApiParameter.HEADER,
        response=[201],
        description=f"{description} Its path, with a trailing slash as in this schema.",
    )
