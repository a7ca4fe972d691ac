"""Inventory endpoints for catalog managers: stock changes per variant and warehouse, the
ledger, and the warehouses."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.catalog import selectors as catalog_selectors
from apps.catalog.exceptions import ProductNotFound
from apps.catalog.models import ProductVariant
from apps.inventory import selectors, services
from apps.inventory.exceptions import (
    OutOfStock,
    UnknownShippingZone,
    UnknownWarehouse,
    WarehouseNotFound,
    WarehouseSlugTaken,
)
from apps.inventory.models import StockReason, Warehouse
from apps.inventory.serializers import (
    WAREHOUSE_EXAMPLE,
    StockChangeInputSerializer,
    StockChangeOutputSerializer,
    StockMovementOutputSerializer,
    WarehouseInputSerializer,
    WarehouseSerializer,
)
from ecommerce.api import identifiers
from ecommerce.api.filters import OrderingFilter
from ecommerce.api.locations import location, location_parameter
from ecommerce.api.permissions import HasRole, Role
from ecommerce.api.schema import problems
from ecommerce.errors import InvalidInput


def _variant(lookup: str) -> ProductVariant:
    """The variant a stock change addresses: its SKU, or the id of a product with exactly
    one variant."""
    if lookup.isdigit():
        if not identifiers.is_id(lookup):
            raise ProductNotFound(lookups=[lookup])
        variants = list(ProductVariant.objects.filter(product_id=int(lookup))[:2])
        if not variants:
            raise ProductNotFound(lookups=[lookup])
        if len(variants) > 1:
            raise InvalidInput(
                f"Product {lookup} has several variants: name the variant by its SKU."
            )
        return variants[0]
    return catalog_selectors.get_variant(sku=lookup, include_inactive=True)


class StockViewSet(viewsets.GenericViewSet):
    """`/api/products/{sku}/stock`: a variant's stock, changed and read per warehouse."""

    lookup_field = "sku"
    lookup_value_regex = r"[A-Za-z0-9._-]{1,64}"
    permission_classes = (HasRole.of(Role.CATALOG_MANAGER),)
    serializer_class = StockMovementOutputSerializer
    filter_backends = (OrderingFilter,)  # a fixed order: `?ordering=` is a 400

    def get_queryset(self) -> QuerySet[ProductVariant]:
        return ProductVariant.objects.all()

    @extend_schema(
        summary="Restock or adjust a variant's stock in a warehouse (catalog managers)",
        request=StockChangeInputSerializer,
        responses={
            status.HTTP_200_OK: StockChangeOutputSerializer,
            **problems(
                OutOfStock(shortfalls={"TEE-BLK-M": {"requested": 5, "available": 2}}),
                UnknownWarehouse(warehouse="north"),
            ),
        },
    )
    @action(detail=True, methods=["post"], url_path="stock")
    def stock(self, request: Request, sku: str) -> Response:
        variant = _variant(sku)
        serializer = StockChangeInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        change = serializer.validated_data
        warehouse = selectors.warehouse_by_slug(change["warehouse"])
        operation = (
            services.restock if change["reason"] == StockReason.RESTOCK else services.adjust_stock
        )
        amount = {"quantity" if operation is services.restock else "delta": change["delta"]}
        movement = operation(  # type: ignore[operator]
            variant_id=variant.pk,
            warehouse=warehouse,
            note=change["note"],
            actor=request.user,
            **amount,
        )
        total = selectors.stock_by_variant([variant.pk]).get(variant.pk, 0)
        return Response(
            {
                "sku": variant.sku,
                "warehouse": warehouse.slug,
                "stock": movement.balance,
                "total_stock": total,
                "movement": StockMovementOutputSerializer(movement).data,
            }
        )

    @extend_schema(
        summary="A variant's stock ledger, newest first (catalog managers)",
        responses=StockMovementOutputSerializer(many=True),
    )
    @action(detail=True, methods=["get"], url_path="stock/movements")
    def movements(self, request: Request, sku: str) -> Response:
        if sku.isdigit():  # a product id: the ledger of all its variants
            if (
                not identifiers.is_id(sku)
                or not catalog_selectors.products(include_inactive=True)
                .filter(pk=int(sku))
                .exists()
            ):
                raise ProductNotFound(lookups=[sku])
            queryset = selectors.movements_of(product_id=int(sku))
        else:
            queryset = selectors.movements_of(
                variant=catalog_selectors.get_variant(sku=sku, include_inactive=True)
            )
        page = self.paginate_queryset(self.filter_queryset(queryset))
        return self.get_paginated_response(StockMovementOutputSerializer(page, many=True).data)


class WarehouseViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The warehouses, in allocation order, with the shipping zones (and so the countries)
    each serves; catalog managers create and change them."""

    lookup_field = "slug"
    lookup_value_regex = r"[-a-zA-Z0-9_]{1,120}"
    permission_classes = (HasRole.of(Role.CATALOG_MANAGER),)
    serializer_class = WarehouseSerializer
    pagination_class = None
    filter_backends = (OrderingFilter,)  # a fixed order: `?ordering=` is a 400

    def get_queryset(self) -> QuerySet[Warehouse]:
        return selectors.warehouses()

    def get_object(self) -> Warehouse:
        slug = self.kwargs["slug"]
        warehouse = self.get_queryset().filter(slug=slug).first()
        if warehouse is None:
            raise WarehouseNotFound(warehouse=slug)
        return warehouse

    @extend_schema(summary="List warehouses (catalog managers)")
    def list(self, request: Request) -> Response:
        return super().list(request)

    @extend_schema(
        summary="A warehouse (catalog managers)",
        responses={
            status.HTTP_200_OK: WarehouseSerializer,
            **problems(WarehouseNotFound(warehouse="north")),
        },
    )
    def retrieve(self, request: Request, slug: str) -> Response:
        return Response(WarehouseSerializer(self.get_object()).data)

    @extend_schema(
        summary="Create a warehouse (catalog managers)",
        request=WarehouseInputSerializer,
        examples=[
            OpenApiExample(
                "A warehouse serving one zone",
                value={"name": "North", "slug": "north", "priority": 20, "zones": ["nordics"]},
                request_only=True,
            ),
            OpenApiExample(
                "Created", value=WAREHOUSE_EXAMPLE, response_only=True, status_codes=["201"]
            ),
        ],
        parameters=[location_parameter("The warehouse.")],
        responses={
            status.HTTP_201_CREATED: WarehouseSerializer,
            **problems(WarehouseSlugTaken(slug="north"), UnknownShippingZone(zones=["nordics"])),
        },
    )
    def create(self, request: Request) -> Response:
        serializer = WarehouseInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        warehouse = services.create_warehouse(**serializer.validated_data, actor=request.user)
        return Response(
            WarehouseSerializer(selectors.warehouses().get(pk=warehouse.pk)).data,
            status=status.HTTP_201_CREATED,
            headers=location("warehouses", warehouse.slug),
        )

    @extend_schema(
        summary="Change a warehouse (catalog managers)",
        description="Send only what changes. `zones` replaces the shipping zones it serves "
        "(their slugs); an empty list makes it serve every destination. The next order "
        "follows the change.",
        request=WarehouseInputSerializer(partial=True),
        examples=[
            OpenApiExample(
                "Serve the Nordics only",
                value={"zones": ["nordics"]},
                request_only=True,
            ),
            OpenApiExample("Serve every destination", value={"zones": []}, request_only=True),
            OpenApiExample("Close it", value={"is_active": False}, request_only=True),
        ],
        responses={
            status.HTTP_200_OK: WarehouseSerializer,
            **problems(
                WarehouseNotFound(warehouse="north"),
                WarehouseSlugTaken(slug="north"),
                UnknownShippingZone(zones=["nordics"]),
            ),
        },
    )
    def partial_update(self, request: Request, slug: str) -> Response:
        serializer = WarehouseInputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        warehouse = services.update_warehouse(
            slug=slug, changes=dict(serializer.validated_data), actor=request.user
        )
        return Response(WarehouseSerializer(selectors.warehouses().get(pk=warehouse.pk)).data)
