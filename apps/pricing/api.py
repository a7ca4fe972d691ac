"""Staff reads of pricing: vouchers with their uses, tax rates and promotions.

Staff change these in the admin; customers meet vouchers through their carts. Support,
catalog managers and admins read them here.
"""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.pricing import selectors
from apps.pricing.exceptions import VoucherNotFound
from apps.pricing.models import Promotion, TaxRate, Voucher
from apps.pricing.serializers import (
    VOUCHER_USE_EXAMPLE,
    PromotionOutputSerializer,
    TaxRateOutputSerializer,
    TaxRateQuerySerializer,
    VoucherOutputSerializer,
    VoucherQuerySerializer,
    VoucherUseOutputSerializer,
)
from ecommerce.api.filters import OrderingFilter
from ecommerce.api.permissions import HasRole, Role
from ecommerce.api.schema import problems

STAFF = HasRole.of(Role.SUPPORT, Role.CATALOG_MANAGER)


class VoucherViewSet(viewsets.GenericViewSet):
    """`/api/vouchers`: every voucher with its limits and uses so far, by code."""

    lookup_field = "code"
    lookup_value_regex = r"[A-Za-z0-9_-]{1,32}"
    permission_classes = (STAFF,)
    serializer_class = VoucherOutputSerializer
    filter_backends = (OrderingFilter,)  # a fixed order: `?ordering=` is a 400

    def get_queryset(self) -> QuerySet[Voucher]:
        return Voucher.objects.none()  # the actions read through the selectors

    @extend_schema(
        summary="List vouchers (support, catalog managers)",
        parameters=[VoucherQuerySerializer],
    )
    def list(self, request: Request) -> Response:
        query = VoucherQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        vouchers = selectors.list_vouchers(
            is_active=query.validated_data.get("is_active"),
            search=query.validated_data.get("search", ""),
        )
        page = self.paginate_queryset(self.filter_queryset(vouchers))
        return self.get_paginated_response(VoucherOutputSerializer(page, many=True).data)

    @extend_schema(
        summary="A voucher by code, any letter case (support, catalog managers)",
        responses={
            status.HTTP_200_OK: VoucherOutputSerializer,
            **problems(VoucherNotFound(code="SPRING24")),
        },
    )
    def retrieve(self, request: Request, code: str) -> Response:
        return Response(VoucherOutputSerializer(selectors.get_voucher(code=code)).data)

    @extend_schema(
        summary="A voucher's uses, newest first (support, catalog managers)",
        description="One use per order that applied the voucher (`order:<public id>`). A "
        "released use (the order was cancelled, expired or its payment failed) says when "
        "and why, and no longer counts towards the limits.",
        responses={
            status.HTTP_200_OK: VoucherUseOutputSerializer(many=True),
            **problems(VoucherNotFound(code="SPRING24")),
        },
        examples=[OpenApiExample("A released use", value=VOUCHER_USE_EXAMPLE, response_only=True)],
    )
    @action(detail=True, methods=["get"], url_path="uses")
    def uses(self, request: Request, code: str) -> Response:
        page = self.paginate_queryset(self.filter_queryset(selectors.uses_of(code=code)))
        return self.get_paginated_response(VoucherUseOutputSerializer(page, many=True).data)


class TaxRateViewSet(viewsets.GenericViewSet):
    """`/api/tax-rates`: the percent of each tax class per destination country."""

    permission_classes = (STAFF,)
    serializer_class = TaxRateOutputSerializer
    pagination_class = None
    filter_backends = (OrderingFilter,)  # a fixed order: `?ordering=` is a 400

    def get_queryset(self) -> QuerySet[TaxRate]:
        return TaxRate.objects.none()

    @extend_schema(
        summary="List tax rates (support, catalog managers)",
        description="A tax class without a rate in a country is taxed at 0 there.",
        parameters=[TaxRateQuerySerializer],
        responses={status.HTTP_200_OK: TaxRateOutputSerializer(many=True)},
    )
    def list(self, request: Request) -> Response:
        query = TaxRateQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        rates = self.filter_queryset(
            selectors.list_tax_rates(country=query.validated_data.get("country", ""))
        )
        return Response(TaxRateOutputSerializer(rates, many=True).data)


class PromotionViewSet(viewsets.GenericViewSet):
    """`/api/promotions`: automatic discounts, running or not."""

    permission_classes = (STAFF,)
    serializer_class = PromotionOutputSerializer
    filter_backends = (OrderingFilter,)  # a fixed order: `?ordering=` is a 400

    def get_queryset(self) -> QuerySet[Promotion]:
        return Promotion.objects.none()

    @extend_schema(summary="List promotions (support, catalog managers)")
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(selectors.list_promotions()))
        return self.get_paginated_response(PromotionOutputSerializer(page, many=True).data)
