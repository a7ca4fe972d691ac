"""ecommerce.db.inserts: a model's INSERT written once writes what the ORM's raw save writes."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.db.models.expressions import DatabaseDefault
from django.utils import timezone

from apps.orders.models import Order, OrderEvent
from ecommerce.db.inserts import Insert
from tests.users.factories import UserFactory

pytestmark = pytest.mark.django_db

# Columns that differ between two rows by design (keys, the idempotency key's uniqueness).
DISTINCT = {"id", "public_id", "idempotency_key"}


NOW = timezone.now()


def _order(user: Any, key: str, **fields: Any) -> Order:
    now = NOW
    values: dict[str, Any] = {
        "user": user,
        "currency": "EUR",
        "shipping_country": "DE",
        "shipping_address": {"city": "Berlin", "lines": ["Unter den Linden 1"], "ü": "ß"},
        "subtotal": Decimal("19.90"),
        "tax_total": Decimal("3.18"),
        "total_net": Decimal("16.72"),
        "total": Decimal("19.90"),
        "tax_breakdown": [{"rate": "19.00", "net": "16.72", "tax": "3.18"}],
        "creation_response": {"id": "x", "total": "19.90", "nested": {"none": None}},
        "next_action": None,
        "expires_at": now,
        "idempotency_key": key,
        "fingerprint": "f" * 64,
        "created_at": now,
        "updated_at": now,
    }
    values.update(fields)
    return Order(**values)


def _row(pk: int) -> dict[str, Any]:
    return {
        k: v for k, v in Order.objects.filter(pk=pk).values().get().items() if k not in DISTINCT
    }


def test_an_insert_writes_what_the_orms_raw_save_writes():
    user = UserFactory()
    saved = _order(user, "orm")
    saved.save_base(raw=True, force_insert=True)
    written = _order(user, "insert")
    assert isinstance(written.payment_token, DatabaseDefault)  # left to the database

    sql, params = Insert(Order).statement([written])
    with connection.cursor() as cursor:
        cursor.execute(sql + " RETURNING id", params)
        (pk,) = cursor.fetchone()

    assert _row(pk) == _row(saved.pk)
    assert _row(pk)["payment_token"] == ""  # DEFAULT, the column's db_default
    assert _row(pk)["shipping_address"]["ü"] == "ß"


def test_rows_numbered_by_the_caller_keep_their_keys_and_several_go_in_one_statement():
    user = UserFactory()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence('orders_order', 'id')) "
            "FROM generate_series(1, 2)"
        )
        ids = [row[0] for row in cursor.fetchall()]
    orders = [_order(user, f"k{n}", pk=pk, public_id=uuid.uuid4()) for n, pk in enumerate(ids)]
    events = [
        OrderEvent(order=order, from_status="", to_status=order.status, created_at=timezone.now())
        for order in orders
    ]
    statements = [
        Insert(Order, with_pk=True).statement(orders),
        Insert(OrderEvent).statement(events),
    ]

    with connection.cursor() as cursor:
        cursor.execute(
            "; ".join(sql for sql, _ in statements), [p for _, ps in statements for p in ps]
        )

    stored = {o.pk: o for o in Order.objects.filter(pk__in=ids)}
    assert sorted(stored) == sorted(ids)
    assert {o.public_id for o in stored.values()} == {o.public_id for o in orders}
    assert sorted(
        OrderEvent.objects.filter(order_id__in=ids).values_list("order_id", flat=True)
    ) == (sorted(ids))


def test_an_insert_of_no_rows_is_refused():
    with pytest.raises(ValueError, match="at least one row"):
        Insert(Order).statement([])
