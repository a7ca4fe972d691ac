"""Catalog endpoints. Public reads are served as cached JSON bytes; staff reads and all
writes go through selectors and services."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import HttpResponse
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from apps.catalog import selectors, services
from apps.catalog.exceptions import InvalidCategory, OutOfStock, ProductNotFound, SkuTaken
from apps.catalog.filters import ProductFilter, ProductOrdering
from apps.catalog.models import Category, Product, StockReason
from apps.catalog.search import ProductSearchFilter
from apps.catalog.serializers import (
    CategoryInputSerializer,
    CategoryTreeSerializer,
    ProductCreateInputSerializer,
    ProductDetailOutputSerializer,
    ProductListOutputSerializer,
    ProductUpdateInputSerializer,
    StockChangeInputSerializer,
    StockChangeOutputSerializer,
    StockMovementOutputSerializer,
)
from ecommerce.api import identifiers
from ecommerce.api.permissions import HasRole, Role, has_role
from ecommerce.api.schema import problems
from ecommerce.errors import InvalidInput

JSON = "application/json"


def _is_catalog_staff(request: Request) -> bool:
    return has_role(request.user, Role.CATALOG_MANAGER)


def _checked(lookup: str) -> str:
    """A SKU, or a numeric id the id column can hold (else no product has it: 404)."""
    if lookup.isdigit() and not identifiers.is_id(lookup):  # ASCII: the route's pattern
        raise ProductNotFound(lookups=[lookup])
    return lookup


class ProductViewSet(viewsets.GenericViewSet):
    """Products by SKU (or numeric id). Anyone reads active products; catalog managers and
    admins also see inactive ones, and write."""

    lookup_field = "sku"
    lookup_value_regex = r"[A-Za-z0-9._-]{1,64}"
    filter_backends = (DjangoFilterBackend, ProductSearchFilter, ProductOrdering)
    filterset_class = ProductFilter
    search_fields = ("name", "sku")
    ordering_fields = ("price", "name", "created_at")
    ordering = ("name", "pk")
    serializer_class = ProductDetailOutputSerializer
    # Public pages are cached by these parameters; links carry nothing else.
    link_query_params = selectors.LIST_PARAMS

    def get_permissions(self) -> list[BasePermission]:
        if self.action in ("list", "retrieve"):
            return [AllowAny()]
        return [HasRole.of(Role.CATALOG_MANAGER)()]

    def get_queryset(self) -> QuerySet[Product]:
        return selectors.products(include_inactive=_is_catalog_staff(self.request))

    def _product(self, lookup: str) -> Product:
        return selectors.get_product(lookup=_checked(lookup), include_inactive=True)

    def _list_page(self) -> dict[str, Any]:
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        data = ProductListOutputSerializer(page, many=True).data
        return self.get_paginated_response(data).data

    @extend_schema(
        summary="List products",
        description="Active products for everyone (served from cache); catalog managers "
        "also see inactive ones.",
        responses=ProductListOutputSerializer(many=True),
    )
    def list(self, request: Request) -> HttpResponse | Response:
        if _is_catalog_staff(request):
            return Response(self._list_page())
        body = selectors.product_list_json(
            query=request.query_params, render=lambda: selectors.render_json(self._list_page())
        )
        return HttpResponse(body, content_type=JSON)

    @extend_schema(
        summary="Read a product by SKU or numeric id", responses=ProductDetailOutputSerializer
    )
    def retrieve(self, request: Request, sku: str) -> HttpResponse | Response:
        if _is_catalog_staff(request):
            return Response(ProductDetailOutputSerializer(self._product(sku)).data)
        body = selectors.product_detail_json(lookup=_checked(sku))
        return HttpResponse(body, content_type=JSON)

    @extend_schema(
        summary="Create a product (catalog managers)",
        request=ProductCreateInputSerializer,
        responses={
            status.HTTP_201_CREATED: ProductDetailOutputSerializer,
            **problems(SkuTaken(sku="TEE-BLK-M")),
        },
    )
    def create(self, request: Request) -> Response:
        serializer = ProductCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        product = services.create_product(
            initial_stock=data.pop("stock"), actor=request.user, **data
        )
        return Response(
            ProductDetailOutputSerializer(product).data,
            status=status.HTTP_201_CREATED,
            headers={"Location": f"/api/products/{product.sku}"},
        )

    @extend_schema(
        summary="Replace a product's fields (catalog managers)",
        request=ProductUpdateInputSerializer,
        responses=ProductDetailOutputSerializer,
    )
    def update(self, request: Request, sku: str) -> Response:
        product = self._product(sku)
        serializer = ProductUpdateInputSerializer(
            data=request.data, partial=request.method == "PATCH"
        )
        serializer.is_valid(raise_exception=True)
        product = services.update_product(product=product, **serializer.validated_data)
        return Response(ProductDetailOutputSerializer(product).data)

    @extend_schema(
        summary="Change some of a product's fields (catalog managers)",
        request=ProductUpdateInputSerializer,
        responses=ProductDetailOutputSerializer,
    )
    def partial_update(self, request: Request, sku: str) -> Response:
        return self.update(request, sku)

    @extend_schema(summary="Deactivate a product (catalog managers)", responses={204: None})
    def destroy(self, request: Request, sku: str) -> Response:
        """Deactivate: products are never hard-deleted."""
        services.deactivate_product(product=self._product(sku))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Restock or adjust a product's stock (catalog managers)",
        request=StockChangeInputSerializer,
        responses={
            status.HTTP_200_OK: StockChangeOutputSerializer,
            **problems(
                OutOfStock(shortfalls={"TEE-BLK-M": {"requested": 5, "available": 2}}),
                InvalidInput("A stock level cannot be negative."),
            ),
        },
    )
    @action(detail=True, methods=["post"], url_path="stock")
    def stock(self, request: Request, sku: str) -> Response:
        product = self._product(sku)
        serializer = StockChangeInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        change = serializer.validated_data
        if change["reason"] == StockReason.RESTOCK:
            movement = services.restock(
                product_id=product.pk,
                quantity=change["delta"],
                note=change["note"],
                actor=request.user,
            )
        else:
            movement = services.adjust_stock(
                product_id=product.pk,
                delta=change["delta"],
                note=change["note"],
                actor=request.user,
            )
        return Response(
            {
                "sku": product.sku,
                "stock": movement.balance,
                "movement": StockMovementOutputSerializer(movement).data,
            }
        )

    @extend_schema(
        summary="A product's stock ledger, newest first (catalog managers)",
        responses=StockMovementOutputSerializer(many=True),
        filters=False,  # paginated, but the product list's filters do not apply
    )
    @action(detail=True, methods=["get"], url_path="stock/movements")
    def movements(self, request: Request, sku: str) -> Response:
        queryset = selectors.movements_of(product=self._product(sku))
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(StockMovementOutputSerializer(page, many=True).data)


class CategoryViewSet(viewsets.GenericViewSet):
    """The category tree (public); catalog managers create and edit categories."""

    lookup_field = "slug"
    lookup_value_regex = r"[-a-zA-Z0-9_]{1,120}"
    pagination_class = None
    filter_backends = ()  # the tree is listed whole
    serializer_class = CategoryTreeSerializer

    def get_permissions(self) -> list[BasePermission]:
        if self.action == "list":
            return [AllowAny()]
        return [HasRole.of(Role.CATALOG_MANAGER)()]

    def get_queryset(self) -> QuerySet[Category]:
        return Category.objects.all()

    @extend_schema(
        summary="The category tree",
        responses=CategoryTreeSerializer(many=True),
    )
    def list(self, request: Request) -> Response:
        roots = selectors.category_tree(include_inactive=_is_catalog_staff(request))
        return Response(CategoryTreeSerializer(roots, many=True).data)

    @extend_schema(
        summary="Create a category (catalog managers)",
        request=CategoryInputSerializer,
        responses={
            status.HTTP_201_CREATED: CategoryTreeSerializer,
            **problems(InvalidCategory("A category with slug tees already exists.")),
        },
    )
    def create(self, request: Request) -> Response:
        serializer = CategoryInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        category = services.create_category(**serializer.validated_data)
        return Response(_category_out(category), status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Rename, move or (de)activate a category (catalog managers)",
        request=CategoryInputSerializer,
        responses={
            status.HTTP_200_OK: CategoryTreeSerializer,
            **problems(InvalidCategory("A category cannot be its own ancestor.")),
        },
    )
    def partial_update(self, request: Request, slug: str) -> Response:
        category = self.get_object()
        serializer = CategoryInputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        category = services.update_category(category=category, **serializer.validated_data)
        return Response(_category_out(category))


def _category_out(category: Category) -> dict[str, Any]:
    category.tree_children = []  # type: ignore[attr-defined]
    return CategoryTreeSerializer(category).data
