"""What one order costs the database: three round trips in its transaction (the key's claim
with the new rows' ids, the order's rows in one batch, the stock and its ledger in one
statement that also locks it, last), and nothing just written read back."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.catalog.models import Product, ProductVariant
from apps.orders import services
from apps.orders.models import Order
from ecommerce.db import prepared
from tests.catalog.factories import make_product
from tests.catalog.helpers import stock_of
from tests.orders.factories import draft_line, order_draft
from tests.users.factories import UserFactory

pytestmark = pytest.mark.django_db

WRITTEN = (
    "orders_order",
    "orders_orderitem",
    "orders_orderevent",
    "outbox_outboxmessage",
    "inventory_stock",
    "inventory_stockmovement",
)


@pytest.fixture
def tee() -> Product:
    return make_product(sku="tee", stock=30, price="19.90")


@pytest.fixture
def mug() -> Product:
    return make_product(sku="mug", stock=20, price="10.00")


def _statements(captured: list[dict[str, Any]]) -> list[str]:
    """The statements sent, savepoints left out (the test's own transaction makes them)."""
    return [
        prepared.as_written(query["sql"])
        for query in captured
        if not re.match(r"\s*(RELEASE )?SAVEPOINT|\s*ROLLBACK TO SAVEPOINT", query["sql"])
    ]


def _loaded(product: Product) -> ProductVariant:
    """The variant with its product, as the catalog's selector hands it to pricing."""
    return ProductVariant.objects.select_related("product").get(pk=product.variant.pk)


def _writes_to(sql: str) -> list[str]:
    """The tables a statement (or a batch of them) inserts into or updates, in order."""
    return re.findall(r'(?:INSERT INTO|(?<!FOR )UPDATE)\s+"?(\w+)"?', sql)


def test_a_keyed_order_of_two_lines_takes_three_round_trips(tee, mug):
    buyer = UserFactory()
    draft = order_draft(
        [draft_line(_loaded(tee), 2, net="39.80"), draft_line(_loaded(mug), 1, net="10.00")]
    )

    with CaptureQueriesContext(connection) as queries:
        order, created = services.create_order(
            draft=draft, user=buyer, idempotency_key="k-1", fingerprint="f"
        )

    statements = _statements(queries.captured_queries)
    # The idempotency lock, the replay lookup and the new ids; one batch writing the order's
    # rows, a statement per table; the stock and its ledger, last.
    assert len(statements) == 3, statements
    assert statements[0].startswith("SELECT pg_try_advisory_xact_lock")
    assert "nextval" in statements[0]
    assert [table for sql in statements for table in _writes_to(sql)] == list(WRITTEN)
    assert _writes_to(statements[2]) == ["inventory_stock", "inventory_stockmovement"]
    # The stock is locked by the statement that takes it, not by a SELECT before it.
    assert "FOR UPDATE" in statements[2]
    assert created is True
    assert (stock_of(tee.variant.pk), stock_of(mug.variant.pk)) == (28, 19)
    stored = Order.objects.get(pk=order.pk)
    # Stored with the insert, and what a later read of the row says.
    assert stored.creation_response == order.creation_response
    assert order.creation_response["created_at"] == stored.created_at.isoformat().replace(
        "+00:00", "Z"
    )
    assert order.creation_response["updated_at"] == stored.updated_at.isoformat().replace(
        "+00:00", "Z"
    )


def test_an_order_without_a_key_stores_no_answer_and_skips_the_lock(tee):
    buyer = UserFactory()
    draft = order_draft([draft_line(_loaded(tee), 1, net="19.90")])

    with CaptureQueriesContext(connection) as queries:
        order, _ = services.create_order(draft=draft, user=buyer)

    statements = _statements(queries.captured_queries)
    assert "pg_try_advisory_xact_lock" not in statements[0]
    assert [table for sql in statements for table in _writes_to(sql)] == list(WRITTEN)
    assert Order.objects.get(pk=order.pk).creation_response is None
    assert order.creation_response["id"] == str(order.public_id)


def test_the_claims_generic_plan_finds_the_key_through_its_unique_index():
    # Prepared, the claim runs on a generic plan, which cannot see that the key parameter
    # meets the partial index's predicate (not empty) unless the statement says so.
    claim = prepared.as_written(services._claim_sql(keyed=True, messages=2))
    body = claim.replace("%s", "$1", 1).replace("%s", "$2", 1).replace("%s", "$3", 1)
    with connection.cursor() as cursor:
        cursor.execute(f"PREPARE claim_probe AS {body}")
        try:
            cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            cursor.execute("EXPLAIN EXECUTE claim_probe(1, 1, 'k')")
            plan = "\n".join(row[0] for row in cursor.fetchall())
        finally:
            cursor.execute("DEALLOCATE claim_probe")

    assert "orders_order_user_idempotency_key" in plan, plan
