"""Baselines measured in the same run as the real endpoints (mounted only for benchmarks).

`/bench/drf`: a DRF APIView returning the JSON of one product, built once: the ceiling a
cached product read is compared with. `/bench/bare-order`: the least an order write can
do (a conditional stock UPDATE, one order row, one item row, one transaction), which full
order creation is compared with.
"""

from __future__ import annotations

import random
import uuid
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.utils import timezone
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.catalog.models import Product
from apps.catalog.serializers import ProductDetailOutputSerializer


class StaticProductView(APIView):
    authentication_classes = ()
    permission_classes = (AllowAny,)
    _body: dict[str, Any] | None = None

    def get(self, request: Request) -> Response:
        if StaticProductView._body is None:
            product = Product.objects.select_related("category").get(sku="prod1")
            StaticProductView._body = dict(ProductDetailOutputSerializer(product).data)
        return Response(StaticProductView._body)


class BareOrderView(APIView):
    """Orders products `bare1`..`bareN`, seeded apart: these writes skip the ledger."""

    authentication_classes = ()
    permission_classes = (AllowAny,)
    _ids: list[int] | None = None

    def post(self, request: Request) -> Response:
        if BareOrderView._ids is None:
            BareOrderView._ids = list(
                Product.objects.filter(sku__startswith="bare")
                .order_by("pk")
                .values_list("pk", flat=True)
            )
        sku_count = int(request.query_params.get("skus", "1000"))
        product_id = random.choice(BareOrderView._ids[:sku_count])
        now = timezone.now()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "UPDATE catalog_product SET stock = stock - 1 WHERE id = %s AND stock >= 1 "
                "RETURNING price",
                [product_id],
            )
            row = cursor.fetchone()
            if row is None:
                return Response(status=409)
            price: Decimal = row[0]
            cursor.execute(
                "INSERT INTO orders_order (public_id, user_id, status, currency, subtotal, total,"
                " idempotency_key, fingerprint, created_at, updated_at) VALUES"
                " (%s, 1, 'pending_payment', 'EUR', %s, %s, '', '', %s, %s) RETURNING id",
                [uuid.uuid4(), price, price, now, now],
            )
            order_id = cursor.fetchone()[0]
            cursor.execute(
                "INSERT INTO orders_orderitem (order_id, product_id, sku, name, unit_price,"
                " quantity, line_total) VALUES (%s, %s, 'x', 'x', %s, 1, %s)",
                [order_id, product_id, price, price],
            )
        return Response({"id": order_id}, status=201)
