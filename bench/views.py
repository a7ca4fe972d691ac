"""Baselines measured in the same run as the real endpoints (mounted only for benchmarks).

`/bench/drf`: a DRF APIView returning the JSON of one product, built once: the ceiling a
cached product read is compared with. `/bench/bare-order`: the least an order write can
do (a conditional UPDATE of one variant's stock row in one warehouse, one order row, one
item row, one transaction), which full order creation is compared with.
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

from apps.catalog import selectors as catalog_selectors
from apps.catalog.serializers import ProductDetailOutputSerializer
from apps.inventory import selectors as inventory_selectors
from apps.inventory.models import Stock


class StaticProductView(APIView):
    authentication_classes = ()
    permission_classes = (AllowAny,)
    _body: dict[str, Any] | None = None

    def get(self, request: Request) -> Response:
        if StaticProductView._body is None:
            product = catalog_selectors.get_product(lookup="prod1")
            StaticProductView._body = dict(ProductDetailOutputSerializer(product).data)
        return Response(StaticProductView._body)


class BareOrderView(APIView):
    """Orders variants `bare1`..`bareN`, seeded apart: these writes skip the ledger, and
    take from the default warehouse's stock row without choosing among warehouses."""

    authentication_classes = ()
    permission_classes = (AllowAny,)
    _stock_ids: list[int] | None = None

    def post(self, request: Request) -> Response:
        if BareOrderView._stock_ids is None:
            BareOrderView._stock_ids = list(
                Stock.objects.filter(
                    variant__sku__startswith="bare",
                    warehouse=inventory_selectors.default_warehouse(),
                )
                .order_by("variant_id")
                .values_list("pk", flat=True)
            )
        sku_count = int(request.query_params.get("skus", "1000"))
        stock_id = random.choice(BareOrderView._stock_ids[:sku_count])
        now = timezone.now()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "UPDATE inventory_stock AS s SET quantity = s.quantity - 1, updated_at = %s "
                "FROM catalog_productvariant AS v "
                "WHERE s.id = %s AND s.quantity >= 1 AND v.id = s.variant_id "
                "RETURNING s.variant_id, v.price",
                [now, stock_id],
            )
            row = cursor.fetchone()
            if row is None:
                return Response(status=409)
            variant_id: int = row[0]
            price: Decimal = row[1]
            cursor.execute(
                "INSERT INTO orders_order (public_id, user_id, status, currency,"
                " shipping_country, subtotal, total, idempotency_key, fingerprint,"
                " created_at, updated_at) VALUES"
                " (%s, 1, 'pending_payment', 'EUR', '', %s, %s, '', '', %s, %s) RETURNING id",
                [uuid.uuid4(), price, price, now, now],
            )
            order_id = cursor.fetchone()[0]
            cursor.execute(
                "INSERT INTO orders_orderitem (order_id, variant_id, sku, name, variant_name,"
                " unit_price, quantity, line_total) VALUES (%s, %s, 'x', 'x', '', %s, 1, %s)",
                [order_id, variant_id, price, price],
            )
        return Response({"id": order_id}, status=201)
