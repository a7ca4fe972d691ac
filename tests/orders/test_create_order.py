"""create_order: a priced draft stored as given, the `within` hook inside the transaction,
the payment hold, and place_order's unchanged numbers on top of it."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.catalog.models import Product
from apps.inventory.exceptions import OutOfStock
from apps.inventory.models import StockMovement
from apps.orders import events, services
from apps.orders.exceptions import InvalidOrder
from apps.orders.models import Order, OrderEvent, OrderItem, OrderStatus
from apps.orders.services import OrderLine
from ecommerce.outbox.models import OutboxMessage
from tests.catalog.factories import make_product
from tests.catalog.helpers import stock_of
from tests.orders.factories import ADDRESS, BILLING, draft_line, full_draft, order_draft
from tests.users.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def tee() -> Product:
    return make_product(sku="tee", stock=30, price="19.90")


@pytest.fixture
def mug() -> Product:
    return make_product(sku="mug", stock=20, price="10.00")


@pytest.fixture
def buyer() -> Any:
    return UserFactory(email="ada@example.com")


def held_for(order: Order) -> float:
    """Seconds from placement to the end of the hold."""
    return (order.expires_at - order.created_at).total_seconds()


def counts() -> tuple[int, int, int, int]:
    return (
        Order.objects.count(),
        OrderItem.objects.count(),
        OrderEvent.objects.count(),
        OutboxMessage.objects.count(),
    )


# --- A full draft -----------------------------------------------------------------------------


def test_a_full_draft_is_stored_as_given_with_each_line_taxed(tee, mug, buyer):
    before = timezone.now()

    order, created = services.create_order(draft=full_draft(tee, mug), user=buyer)

    assert created is True
    order = Order.objects.get(pk=order.pk)
    assert order.email == "ada@example.com"
    assert (order.shipping_address, order.billing_address) == (ADDRESS, BILLING)
    assert (order.currency, order.shipping_country, order.prices_include_tax) == ("EUR", "DE", True)
    assert (
        order.subtotal,
        order.discount_total,
        order.shipping_method_name,
        order.shipping_price,
        order.shipping_tax,
        order.tax_total,
        order.total_net,
        order.total,
        order.voucher_code,
    ) == (
        Decimal("79.70"),
        Decimal("7.97"),
        "DHL Paket",
        Decimal("4.90"),
        Decimal("0.78"),
        Decimal("12.23"),
        Decimal("64.40"),
        Decimal("76.63"),
        "WELCOME10",
    )
    assert order.tax_breakdown == [{"rate": "19", "net": "64.40", "tax": "12.23"}]
    assert order.status == OrderStatus.PENDING_PAYMENT
    assert (
        before + timedelta(seconds=900)
        <= order.expires_at
        <= timezone.now() + timedelta(seconds=900)
    )
    assert list(
        order.items.order_by("sku").values_list(
            "sku",
            "quantity",
            "unit_price",
            "discount",
            "promotion_name",
            "tax_rate",
            "tax",
            "total_net",
            "line_total",
        )
    ) == [
        (
            "mug",
            2,
            Decimal("10.00"),
            Decimal("2.00"),
            "Mug week",
            Decimal("19.00"),
            Decimal("2.87"),
            Decimal("15.13"),
            Decimal("18.00"),
        ),
        (
            "tee",
            3,
            Decimal("19.90"),
            Decimal("5.97"),
            "",
            Decimal("19.00"),
            Decimal("8.58"),
            Decimal("45.15"),
            Decimal("53.73"),
        ),
    ]
    assert (stock_of(tee.variant.pk), stock_of(mug.variant.pk)) == (27, 18)
    assert OutboxMessage.objects.filter(
        topic=events.ORDER_PLACED, payload__order_id=order.pk
    ).exists()


def test_the_order_shows_its_breakdown_and_the_replay_is_the_same_answer(
    tee, mug, buyer, client_for
):
    draft = full_draft(tee, mug)
    order, _ = services.create_order(
        draft=draft, user=buyer, idempotency_key="k-1", fingerprint="f"
    )
    replay, created = services.create_order(
        draft=draft, user=buyer, idempotency_key="k-1", fingerprint="f"
    )

    shown = client_for(buyer).get(f"/api/orders/{order.public_id}").json()

    assert (replay.pk, created) == (order.pk, False)
    assert replay.creation_response == order.creation_response
    body = order.creation_response
    assert {key: shown[key] for key in body} == body  # a later read agrees with the answer
    assert body["shipping"] == {"method": "DHL Paket", "price": "4.90", "tax": "0.78"}
    assert (body["subtotal"], body["discount_total"], body["tax_total"]) == (
        "79.70",
        "7.97",
        "12.23",
    )
    assert (body["total_net"], body["total"], body["voucher_code"]) == (
        "64.40",
        "76.63",
        "WELCOME10",
    )
    assert body["prices_include_tax"] is True
    assert body["tax_breakdown"] == [{"rate": "19", "net": "64.40", "tax": "12.23"}]
    assert (body["shipping_address"], body["billing_address"]) == (ADDRESS, BILLING)
    assert body["expires_at"] == order.expires_at.isoformat().replace("+00:00", "Z")
    assert body["items"][0] == {  # in variant order: the tee was created first
        "sku": "tee",
        "name": "Product tee",
        "variant": tee.variant.name,
        "unit_price": "19.90",
        "quantity": 3,
        "discount": "5.97",
        "promotion_name": "",
        "tax_rate": "19",
        "tax": "8.58",
        "total_net": "45.15",
        "line_total": "53.73",
    }
    assert "email" not in body  # the API and webhooks never carried it
    assert "payment_token" not in body


def test_a_total_that_is_not_net_plus_tax_is_refused_by_the_database(tee, mug, buyer):
    before = counts()

    with pytest.raises(IntegrityError), transaction.atomic():
        services.create_order(draft=full_draft(tee, mug, total=Decimal("76.64")), user=buyer)

    assert counts() == before
    assert stock_of(tee.variant.pk) == 30


def test_a_draft_without_lines_is_refused(tee, mug, buyer):
    before = counts()

    with pytest.raises(InvalidOrder):
        services.create_order(draft=replace(full_draft(tee, mug), lines=[]), user=buyer)

    assert counts() == before


# --- within -------------------------------------------------------------------------------------


class Refused(Exception):
    pass


def test_within_runs_in_the_transaction_before_the_stock_is_taken(tee, mug, buyer):
    seen: list[tuple[bool, int, int]] = []

    def claim(order: Order) -> None:
        # The order and its items are written; the stock is not taken yet.
        seen.append(
            (
                Order.objects.filter(pk=order.pk).exists(),
                OrderItem.objects.filter(order=order).count(),
                stock_of(tee.variant.pk),
            )
        )
        OrderEvent.objects.create(order=order, to_status=order.status, reason="voucher claimed")

    order, _ = services.create_order(draft=full_draft(tee, mug), user=buyer, within=claim)

    assert seen == [(True, 2, 30)]
    assert stock_of(tee.variant.pk) == 27
    assert OrderEvent.objects.filter(order=order, reason="voucher claimed").count() == 1


def test_an_error_in_within_leaves_no_order_no_stock_taken_and_no_outbox_row(tee, mug, buyer):
    before = counts()

    def claim(order: Order) -> None:
        OrderEvent.objects.create(order=order, to_status=order.status, reason="voucher claimed")
        raise Refused

    with pytest.raises(Refused):
        services.create_order(draft=full_draft(tee, mug), user=buyer, within=claim)

    assert counts() == before
    assert (stock_of(tee.variant.pk), stock_of(mug.variant.pk)) == (30, 20)
    assert not StockMovement.objects.filter(reference__startswith="order:").exists()


def test_out_of_stock_after_within_undoes_what_within_wrote(tee, mug, buyer):
    before = counts()
    short = make_product(sku="short", stock=1, price="5.00")
    draft = order_draft([draft_line(short.variant, 2, net="10.00")])

    with pytest.raises(OutOfStock):
        services.create_order(
            draft=draft,
            user=buyer,
            within=lambda order: OrderEvent.objects.create(order=order, to_status="x"),
        )

    assert counts() == before
    assert stock_of(short.variant.pk) == 1


def test_a_replay_does_not_run_within_again(tee, mug, buyer):
    calls: list[int] = []
    draft = full_draft(tee, mug)
    services.create_order(
        draft=draft, user=buyer, idempotency_key="k", within=lambda order: calls.append(order.pk)
    )
    services.create_order(
        draft=draft, user=buyer, idempotency_key="k", within=lambda order: calls.append(order.pk)
    )

    assert len(calls) == 1


# --- The hold -----------------------------------------------------------------------------------


def test_the_hold_comes_from_the_draft_or_the_payment_timeout(tee, mug, buyer, settings):
    settings.ORDER_PAYMENT_TIMEOUT_SECONDS = 600

    held, _ = services.create_order(draft=full_draft(tee, mug, hold_seconds=3600), user=buyer)
    default, _ = services.create_order(draft=full_draft(tee, mug), user=buyer)

    assert held_for(held) == pytest.approx(3600, abs=1)
    assert held_for(default) == pytest.approx(600, abs=1)


def test_overdue_orders_are_picked_by_their_hold_and_old_ones_by_the_timeout(
    tee, mug, buyer, settings
):
    settings.ORDER_PAYMENT_TIMEOUT_SECONDS = 600
    short, _ = services.create_order(draft=full_draft(tee, mug, hold_seconds=60), user=buyer)
    long, _ = services.create_order(draft=full_draft(tee, mug, hold_seconds=1200), user=buyer)
    old, _ = services.create_order(draft=full_draft(tee, mug), user=buyer)
    # Placed before holds were stored: no expires_at, 601 s ago.
    Order.objects.filter(pk=old.pk).update(
        expires_at=None, created_at=timezone.now() - timedelta(seconds=601)
    )
    paid, _ = services.create_order(draft=full_draft(tee, mug, hold_seconds=60), user=buyer)
    Order.objects.filter(pk=paid.pk).update(status=OrderStatus.PAID)
    in_two_minutes = timezone.now() + timedelta(seconds=120)

    assert services.overdue_order_ids() == [old.pk]
    assert services.overdue_order_ids(now=in_two_minutes) == [short.pk, old.pk]
    assert services.overdue_order_ids(now=in_two_minutes + timedelta(seconds=1200)) == [
        short.pk,
        long.pk,
        old.pk,
    ]
    assert services.overdue_order_ids(now=in_two_minutes, limit=1) == [short.pk]


# --- place_order on top of it -------------------------------------------------------------------


def test_place_order_keeps_its_numbers_no_discount_no_tax(tee, mug, buyer, settings):
    settings.ORDER_PAYMENT_TIMEOUT_SECONDS = 900

    order, created = services.place_order(
        user=buyer,
        lines=[OrderLine("tee", 2), OrderLine("MUG", 1), OrderLine("tee", 1)],
        payment_token="tok_success",
        shipping_country="DE",
    )

    order = Order.objects.get(pk=order.pk)
    assert created is True
    assert (order.subtotal, order.total, order.total_net) == (
        Decimal("69.70"),
        Decimal("69.70"),
        Decimal("69.70"),
    )
    assert (order.discount_total, order.tax_total, order.shipping_price, order.shipping_tax) == (
        Decimal("0.00"),
        Decimal("0.00"),
        Decimal("0.00"),
        Decimal("0.00"),
    )
    assert (order.tax_breakdown, order.shipping_address, order.billing_address) == ([], {}, {})
    assert (order.voucher_code, order.shipping_method_name, order.prices_include_tax) == (
        "",
        "",
        True,
    )
    assert (order.email, order.shipping_country, order.payment_token) == (
        "ada@example.com",
        "DE",
        "tok_success",
    )
    assert held_for(order) == pytest.approx(900, abs=1)
    assert list(
        order.items.order_by("sku").values_list(
            "sku",
            "unit_price",
            "quantity",
            "discount",
            "tax_rate",
            "tax",
            "total_net",
            "line_total",
        )
    ) == [
        ("mug", Decimal("10.00"), 1, 0, 0, 0, Decimal("10.00"), Decimal("10.00")),
        ("tee", Decimal("19.90"), 3, 0, 0, 0, Decimal("59.70"), Decimal("59.70")),
    ]


def test_resolve_lines_merges_by_variant_in_pk_order(tee, mug):
    resolved = services.resolve_lines(
        [OrderLine("MUG", 1), OrderLine("tee", 2), OrderLine(str(mug.pk), 2)]
    )

    # The tee was created first: its variant has the lower pk.
    assert resolved == [(tee.variant, 2), (mug.variant, 3)]
    assert [variant.product.name for variant, _ in resolved] == ["Product tee", "Product mug"]
