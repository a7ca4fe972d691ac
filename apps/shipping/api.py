"""Shipping endpoints: zones and their methods for catalog managers, and the quotes
anyone may ask for a cart's destination."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from apps.shipping import selectors, services
from apps.shipping.exceptions import (
    ShippingMethodNameTaken,
    ShippingMethodNotFound,
    ShippingZoneNotFound,
    ShippingZoneSlugTaken,
)
from apps.shipping.models import ShippingMethod, ShippingZone
from apps.shipping.serializers import (
    FLAT_METHOD_EXAMPLE,
    METHOD_EXAMPLE,
    ZONE_EXAMPLE,
    QuoteQuerySerializer,
    ShippingMethodInputSerializer,
    ShippingMethodOutputSerializer,
    ShippingMethodUpdateInputSerializer,
    ShippingQuoteOutputSerializer,
    ShippingZoneInputSerializer,
    ShippingZoneOutputSerializer,
    ShippingZoneUpdateInputSerializer,
)
from ecommerce.api import identifiers
from ecommerce.api.filters import OrderingFilter
from ecommerce.api.locations import location, location_parameter
from ecommerce.api.permissions import HasRole, Role
from ecommerce.api.schema import problems

LOCATION = location_parameter("The method.")


class ShippingZoneViewSet(viewsets.GenericViewSet):
    """`/api/shipping-zones`: zones by name; a warehouse serves the countries of the zones
    it links (PATCH /api/warehouses/{slug} with `zones`)."""

    lookup_field = "slug"
    lookup_value_regex = r"[-a-zA-Z0-9_]{1,120}"
    permission_classes = (HasRole.of(Role.CATALOG_MANAGER),)
    serializer_class = ShippingZoneOutputSerializer
    filter_backends = (OrderingFilter,)  # a fixed order: `?ordering=` is a 400

    def get_queryset(self) -> QuerySet[ShippingZone]:
        return selectors.zones()

    @extend_schema(summary="List shipping zones (catalog managers)")
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
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
        parameters=[location_parameter("The zone.")],
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
            headers=location("shipping-zones", zone.slug),
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

    @extend_schema(
        methods=["GET"],
        summary="A zone's shipping methods, active or not (catalog managers)",
        responses={
            status.HTTP_200_OK: ShippingMethodOutputSerializer(many=True),
            **problems(ShippingZoneNotFound(zone="germany")),
        },
        # Examples of list responses show one item; the schema lists it.
        examples=[
            OpenApiExample("Flat rate", value=FLAT_METHOD_EXAMPLE, response_only=True),
            OpenApiExample("By weight", value=METHOD_EXAMPLE, response_only=True),
        ],
    )
    @extend_schema(
        methods=["POST"],
        summary="Add a shipping method to a zone (catalog managers)",
        description="`flat` charges `price`; `weight` and `price` charge the first band "
        "(by lower bound) covering the cart's grams or subtotal, and are not offered when "
        "none does. Amounts are exact to the currency (none of JPY's have decimals).",
        request=ShippingMethodInputSerializer,
        parameters=[LOCATION],
        examples=[
            OpenApiExample(
                "Created", value=METHOD_EXAMPLE, response_only=True, status_codes=["201"]
            ),
        ],
        responses={
            status.HTTP_201_CREATED: ShippingMethodOutputSerializer,
            **problems(
                ShippingZoneNotFound(zone="germany"),
                ShippingMethodNameTaken(zone="germany", name="Express", currency="EUR"),
            ),
        },
    )
    @action(detail=True, methods=["get", "post"], url_path="methods", pagination_class=None)
    def methods(self, request: Request, slug: str) -> Response:
        if request.method == "GET":
            methods = self.filter_queryset(selectors.methods_of_zone(slug=slug))
            return Response(ShippingMethodOutputSerializer(methods, many=True).data)
        serializer = ShippingMethodInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        method = services.create_method(zone=slug, **serializer.validated_data)
        return Response(
            ShippingMethodOutputSerializer(selectors.get_method(method_id=method.pk)).data,
            status=status.HTTP_201_CREATED,
            headers=location("shipping-methods", method.pk),
        )


class ShippingMethodViewSet(viewsets.GenericViewSet):
    """`/api/shipping-methods`: anyone asks which methods ship a cart and at what price;
    catalog managers read, change and delete one method."""

    lookup_value_regex = identifiers.ID_PATTERN
    serializer_class = ShippingMethodOutputSerializer
    pagination_class = None
    filter_backends = (OrderingFilter,)  # a fixed order: `?ordering=` is a 400

    def get_permissions(self) -> list[BasePermission]:
        if self.action == "list":
            return [AllowAny()]
        return [HasRole.of(Role.CATALOG_MANAGER)()]

    def get_queryset(self) -> QuerySet[ShippingMethod]:
        return ShippingMethod.objects.none()  # the actions read through the selectors

    @extend_schema(
        summary="Quote shipping for a cart (anyone)",
        description="The active methods of every zone listing `country`, in `currency`, "
        "whose rule covers the cart, cheapest first (then by sort order). A subtotal at or "
        "above a method's free-over threshold makes it free. Prices are entered like "
        "catalog prices (gross or net); tax is added when the cart is priced.",
        parameters=[QuoteQuerySerializer],
        responses={status.HTTP_200_OK: ShippingQuoteOutputSerializer(many=True)},
    )
    def list(self, request: Request) -> Response:
        # A plain dict: from a QueryDict DRF reads `weight_grams=` as left out (the default).
        query = QuoteQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        found = self.filter_queryset(selectors.quotes(**query.validated_data))
        return Response(ShippingQuoteOutputSerializer(found, many=True).data)

    @extend_schema(
        summary="A shipping method with its bands (catalog managers)",
        responses={
            status.HTTP_200_OK: ShippingMethodOutputSerializer,
            **problems(ShippingMethodNotFound(method_id=12)),
        },
    )
    def retrieve(self, request: Request, pk: str) -> Response:
        method = selectors.get_method(method_id=identifiers.id_from_path(pk))
        return Response(ShippingMethodOutputSerializer(method).data)

    @extend_schema(
        summary="Change a shipping method (catalog managers)",
        description="Send only what changes; `bands` replaces every band. The method is "
        "checked whole as it will be: a new currency or kind must suit the bands it keeps. "
        "Carts are quoted the new way from the next read on.",
        request=ShippingMethodUpdateInputSerializer,
        responses={
            status.HTTP_200_OK: ShippingMethodOutputSerializer,
            **problems(
                ShippingMethodNotFound(method_id=12),
                ShippingMethodNameTaken(zone="germany", name="Express", currency="EUR"),
            ),
        },
    )
    def partial_update(self, request: Request, pk: str) -> Response:
        method_id = identifiers.id_from_path(pk)
        serializer = ShippingMethodUpdateInputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        services.update_method(method_id=method_id, changes=dict(serializer.validated_data))
        return Response(
            ShippingMethodOutputSerializer(selectors.get_method(method_id=method_id)).data
        )

    @extend_schema(
        summary="Delete a shipping method and its bands (catalog managers)",
        description="Orders keep the method's name and price they were placed with; a cart "
        "that chose it is offered the others.",
        responses={
            status.HTTP_204_NO_CONTENT: None,
            **problems(ShippingMethodNotFound(method_id=12)),
        },
    )
    def destroy(self, request: Request, pk: str) -> Response:
        services.delete_method(method_id=identifiers.id_from_path(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)
