"""The two ceilings: a DRF APIView returning static JSON, and the bare order write.

`StaticJsonView` returns the body in BENCH_STATIC_JSON (a file: bench/run.py writes the
shop's own detail response of the product it benchmarks there, so both carry the same
bytes). `BareOrderView` is the least an order can do: one transaction with a conditional
stock UPDATE, one order row and one item row, on the shop's tables but through none of
its code (no ledger, no outbox, no idempotency). It takes from the stock rows listed in
BENCH_BARE_STOCK_IDS; `?skus=1` keeps to the first (the hot SKU).
"""

from __future__ import annotations

import json
import os
import random
import uuid
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


class StaticJsonView(APIView):
    _body: Any = None

    def get(self, request: Request) -> Response:
        if StaticJsonView._body is None:
            with open(os.environ["BENCH_STATIC_JSON"]) as body:
                StaticJsonView._body = json.load(body)
        return Response(StaticJsonView._body)


class BareOrderView(APIView):
    _stock_ids: list[int] = [
        int(pk) for pk in os.environ.get("BENCH_BARE_STOCK_IDS", "").split(",") if pk
    ]
    _user_id = int(os.environ.get("BENCH_USER_ID", "1"))

    def post(self, request: Request) -> Response:
        sku_count = int(request.query_params.get("skus", "1000"))
        stock_id = random.choice(self._stock_ids[:sku_count])
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
                " shipping_country, subtotal, total, total_net, idempotency_key, fingerprint,"
                " created_at, updated_at) VALUES"
                " (%s, %s, 'pending_payment', 'EUR', '', %s, %s, %s, '', '', %s, %s) RETURNING id",
                [uuid.uuid4(), self._user_id, price, price, price, now, now],
            )
            order_id = cursor.fetchone()[0]
            cursor.execute(
                "INSERT INTO orders_orderitem (order_id, variant_id, sku, name, variant_name,"
                " unit_price, quantity, line_total, total_net)"
                " VALUES (%s, %s, 'x', 'x', '', %s, 1, %s, %s)",
                [order_id, variant_id, price, price, price],
            )
        return Response({"id": order_id}, status=201)
