"""Shipping-zone endpoints for catalog managers: the sets of countries warehouses serve."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from apps.shipping import selectors, services
from apps.shipping.exceptions import ShippingZoneNotFound, ShippingZoneSlugTaken
from apps.shipping.models import ShippingZone
from apps.shipping.serializers import (
    ZONE_EXAMPLE,
    ShippingZoneInputSerializer,
    ShippingZoneOutputSerializer,
    ShippingZoneUpdateInputSerializer,
)
from ecommerce.api.permissions import HasRole, Role
from ecommerce.api.schema import problems


class ShippingZoneViewSet(viewsets.GenericViewSet):
    """`/api/shipping-zones`: zones by name; a warehouse serves the countries of the zones
    it links (PATCH /api/warehouses/{slug} with `zones`)."""

    lookup_field = "slug"
    lookup_value_regex = r"[-a-zA-Z0-9_]{1,120}"
    permission_classes = (HasRole.of(Role.CATALOG_MANAGER),)
    serializer_class = ShippingZoneOutputSerializer
    filter_backends = ()

    def get_queryset(self) -> QuerySet[ShippingZone]:
        return selectors.zones()

    @extend_schema(summary="List shipping zones (catalog managers)")
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(ShippingZoneOutputSerializer(page, many=True).data)

    @extend_schema(
        summary="A shipping zone (catalog managers)",
        responses={
            status.HTTP_200_OK: ShippingZoneOutputSerializer,
            **problems(ShippingZoneNotFound(zone="nordics")),
        },
    )
    def retrieve(self, request: Request, slug: str) -> Response:
        return Response(ShippingZoneOutputSerializer(selectors.get_zone(slug=slug)).data)

    @extend_schema(
        summary="Create a shipping zone (catalog managers)",
        request=ShippingZoneInputSerializer,
        examples=[
            OpenApiExample("Created", value=ZONE_EXAMPLE, response_only=True, status_codes=["201"]),
        ],
        responses={
            status.HTTP_201_CREATED: ShippingZoneOutputSerializer,
            **problems(ShippingZoneSlugTaken(slug="nordics")),
        },
    )
    def create(self, request: Request) -> Response:
        serializer = ShippingZoneInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        zone = services.create_zone(**serializer.validated_data)
        return Response(
            ShippingZoneOutputSerializer(zone).data,
            status=status.HTTP_201_CREATED,
            headers={"Location": f"/api/shipping-zones/{zone.slug}"},
        )

    @extend_schema(
        summary="Rename a shipping zone or replace its countries (catalog managers)",
        description="Send only what changes; the slug stays. Every warehouse linking the "
        "zone serves its new countries from the next order on.",
        request=ShippingZoneUpdateInputSerializer,
        responses={
            status.HTTP_200_OK: ShippingZoneOutputSerializer,
            **problems(ShippingZoneNotFound(zone="nordics")),
        },
    )
    def partial_update(self, request: Request, slug: str) -> Response:
        serializer = ShippingZoneUpdateInputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        zone = services.update_zone(slug=slug, changes=dict(serializer.validated_data))
        return Response(ShippingZoneOutputSerializer(zone).data)
