"""Order placement and the order state machine.

Every status change runs under the order's row lock, writes an OrderEvent, releases stock
when the goods come back, and publishes `order.<status>` to the outbox, all in one
transaction.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from apps.catalog import selectors as catalog_selectors
from apps.catalog.exceptions import ProductUnavailable
from apps.catalog.models import ProductVariant
from apps.inventory import services as inventory_services
from apps.inventory.models import StockReason
from apps.orders import events, locks
from apps.orders.exceptions import (
    IdempotencyKeyReused,
    IdempotentRequestInProgress,
    IllegalTransition,
    InvalidOrder,
    RefundExceedsPaid,
)
from apps.orders.models import (
    AWAITING_PAYMENT,
    RELEASES_STOCK,
    TRANSITIONS,
    Order,
    OrderEvent,
    OrderItem,
    OrderStatus,
)
from apps.orders.serializers import money, order_to_dict, percent
from ecommerce import audit, outbox
from ecommerce.db import prepared
from ecommerce.db.inserts import Insert
from ecommerce.observability.logging import get_logger
from ecommerce.observability.metrics import ORDER_VALUE, ORDERS_CREATED
from ecommerce.outbox.models import OutboxMessage

logger = get_logger(__name__)

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
COUNTRY = re.compile(r"[A-Z]{2}")


@dataclass(frozen=True)
class OrderLine:
    product: str  # a variant SKU, or the numeric id of a one-variant product, as sent
    quantity: int


def _actor(user: Any) -> Any:
    return user if user is not None and getattr(user, "is_authenticated", False) else None


def _merge(lines: Iterable[OrderLine]) -> dict[str, int]:
    merged: dict[str, int] = {}
    for line in lines:
        key = line.product.strip()
        merged[key] = merged.get(key, 0) + line.quantity
    return merged


@functools.lru_cache(maxsize=32)
def _claim_sql(*, keyed: bool, messages: int) -> str:
    """The claim (with a key) and the numbers: the order's id and its `messages` outbox
    rows' ids, from their sequences (its rows are then written with their keys set,
    several tables in one round trip).

    The statement runs prepared (ecommerce/db/prepared.py), on a generic plan once
    PostgreSQL finds it no worse. So the row count is written into it, and the key's
    lookup repeats the unique index's predicate (key not empty): a generic plan cannot
    see that a parameter meets it, and would read the customer's every order instead."""
    numbers = (
        f"nextval(pg_get_serial_sequence('{Order._meta.db_table}', 'id')), "  # noqa: S608
        f"ARRAY(SELECT nextval(pg_get_serial_sequence('{OutboxMessage._meta.db_table}', "
        f"'id')) FROM generate_series(1, {int(messages)}))"
    )
    if not keyed:
        return f"SELECT {numbers}"
    return (
        f"SELECT pg_try_advisory_xact_lock(%s), (SELECT id FROM {Order._meta.db_table} "  # noqa: S608
        f"WHERE user_id = %s AND idempotency_key = %s AND idempotency_key <> ''), {numbers}"
    )


def _claim_and_number(
    *, user: Any, key: str | None, fingerprint: str, messages: int
) -> tuple[Order | None, tuple[int, list[int]]]:
    """Claim the idempotency key, when there is one, and number a new order and its
    `messages` outbox rows, in one statement (PostgreSQL): (the key's order or None,
    (order id, outbox ids)).

    The claim is a transaction-scoped advisory lock for (user, key), taken without
    waiting, and a look for the order this key already made. An order committed between
    the statement's snapshot and the lock is not seen: its insert then fails on the
    (user, idempotency_key) constraint, and the caller replays it. Elsewhere (embedded
    SQLite) the unique constraint alone decides, which is enough for one process.
    Raises IdempotentRequestInProgress (the first request with the key still runs) and
    IdempotencyKeyReused (same key, other body).
    """
    with connection.cursor() as cursor:
        if not key:
            prepared.execute(cursor, (_claim_sql(keyed=False, messages=messages), []))
            order_id, message_ids = cursor.fetchone()
            return None, (order_id, message_ids)
        digest = hashlib.blake2b(f"order:{user.pk}:{key}".encode(), digest_size=8).digest()
        lock_id = int.from_bytes(digest, "big", signed=True)
        claim = _claim_sql(keyed=True, messages=messages)
        prepared.execute(cursor, (claim, [lock_id, user.pk, key]))
        locked, existing_id, order_id, message_ids = cursor.fetchone()
    if not locked:
        raise IdempotentRequestInProgress(key=key)
    if existing_id is None:
        return None, (order_id, message_ids)
    return _replay(user=user, key=key, fingerprint=fingerprint), (order_id, message_ids)


def _replay(*, user: Any, key: str, fingerprint: str) -> Order | None:
    existing = Order.objects.filter(user=user, idempotency_key=key).first()
    if existing is not None and existing.fingerprint != fingerprint:
        raise IdempotencyKeyReused(key=key)
    return existing


def _refuse_missing(missing: list[str]) -> None:
    """Why some lines name nothing to sell: a product id that sells several variants needs
    a SKU (InvalidOrder); anything else is unknown or not for sale (ProductUnavailable)."""
    ids = [int(lookup) for lookup in missing if lookup.isdigit()]
    several = sorted(
        {
            str(product_id)
            for product_id in ProductVariant.objects.filter(
                product_id__in=ids, is_active=True, product__is_active=True
            )
            .values_list("product_id", flat=True)
            .order_by()
        }
        & set(missing)
    )
    if several:
        raise InvalidOrder(
            f"Product {', '.join(several)} comes in several variants: order a variant by SKU."
        )
    raise ProductUnavailable(lookups=missing)


@dataclass(frozen=True)
class DraftLine:
    """One priced line of an order about to be created (docs/pricing.md).

    `unit_price` as entered; `discount` = promotion + voucher; line_total = total_net + tax,
    what the line costs after discounts, tax included.
    """

    variant: ProductVariant
    quantity: int
    unit_price: Decimal
    discount: Decimal
    promotion_name: str
    tax_rate: Decimal
    tax: Decimal
    total_net: Decimal
    line_total: Decimal


@dataclass(frozen=True)
class OrderDraft:
    """Everything an order is created from, priced already: `create_order` stores it as given.

    total = total_net + tax_total (the database checks it, and line_total = total_net + tax
    per line). `tax_breakdown`: [{"rate", "net", "tax"}] per tax rate, lines and shipping.
    """

    currency: str
    lines: Sequence[DraftLine]
    subtotal: Decimal
    discount_total: Decimal
    shipping_method_name: str
    shipping_price: Decimal
    shipping_tax: Decimal
    tax_total: Decimal
    total_net: Decimal
    total: Decimal
    prices_include_tax: bool
    voucher_code: str
    tax_breakdown: list[dict[str, Any]]
    shipping_country: str
    shipping_address: dict[str, Any]
    billing_address: dict[str, Any]
    payment_token: str
    hold_seconds: int | None = None  # None: settings.ORDER_PAYMENT_TIMEOUT_SECONDS
    email: str = ""  # empty: the user's


def resolve_lines(lines: Sequence[OrderLine]) -> list[tuple[ProductVariant, int]]:
    """The variants the lines name, with their quantities merged, in variant pk order.

    A line names a variant by SKU, or a one-variant product by its id; lines naming the same
    variant are added up. Variants come with their product loaded.
    Raises InvalidOrder (no lines, too many lines or units, a product with several variants
    asked by id, more than one currency) and ProductUnavailable (unknown or not for sale).
    """
    merged = _merge(lines)
    if not merged:
        raise InvalidOrder("An order needs at least one item.")
    variants = catalog_selectors.variants_for_order(lookups=merged)
    missing = [lookup for lookup in merged if lookup not in variants]
    if missing:
        _refuse_missing(missing)
    # "prod1" and its product's id are the same variant: merge again by variant.
    quantities: dict[int, int] = {}
    for lookup, quantity in merged.items():
        variant = variants[lookup]
        quantities[variant.pk] = quantities.get(variant.pk, 0) + quantity
    by_id = {variant.pk: variant for variant in variants.values()}
    if len(quantities) > settings.ORDER_MAX_LINES:
        raise InvalidOrder(f"An order holds at most {settings.ORDER_MAX_LINES} different items.")
    too_many = [
        by_id[pk].sku for pk, qty in quantities.items() if qty > settings.ORDER_MAX_ITEM_QUANTITY
    ]
    if too_many:
        raise InvalidOrder(
            f"At most {settings.ORDER_MAX_ITEM_QUANTITY} units per item: {', '.join(too_many)}."
        )
    if len({variant.currency for variant in by_id.values()}) != 1:
        raise InvalidOrder("All items of an order must be priced in one currency.")
    return [(by_id[pk], qty) for pk, qty in sorted(quantities.items())]


def place_order(
    *,
    user: Any,
    lines: Sequence[OrderLine],
    payment_token: str,
    shipping_country: str = "",
    idempotency_key: str | None = None,
    fingerprint: str = "",
    placed_by: Any = None,
) -> tuple[Order, bool]:
    """Create an order priced from the catalog as entered (no discount, no tax), take its
    stock from the warehouses serving `shipping_country`, and queue its charge.

    The order keeps `payment_token` and publishes `order.placed`; the payments app opens
    the order's payment from it and charges it (orders never calls payments: the app DAG).

    Returns (order, created). With an idempotency key already used by this user for the
    same body, returns the existing order and False.
    Raises InvalidOrder, ProductUnavailable, OutOfStock, IdempotencyKeyReused (same key,
    other body) and IdempotentRequestInProgress (same key, first request still running).
    """
    if shipping_country and not COUNTRY.fullmatch(shipping_country):
        raise InvalidOrder("A shipping country is a two-letter ISO code in capitals: DE.")
    resolved = resolve_lines(lines)
    currency = resolved[0][0].currency
    draft_lines = []
    for variant, quantity in resolved:
        # Exact: a stored price has two places. Not rounded to the currency either, so a
        # price the currency cannot carry reaches the provider as it is (and is refused).
        amount = (variant.price * quantity).quantize(CENT)
        draft_lines.append(
            DraftLine(
                variant=variant,
                quantity=quantity,
                unit_price=variant.price,
                discount=ZERO,
                promotion_name="",
                tax_rate=ZERO,
                tax=ZERO,
                total_net=amount,
                line_total=amount,
            )
        )
    subtotal = sum((line.line_total for line in draft_lines), ZERO)
    draft = OrderDraft(
        currency=currency,
        lines=draft_lines,
        subtotal=subtotal,
        discount_total=ZERO,
        shipping_method_name="",
        shipping_price=ZERO,
        shipping_tax=ZERO,
        tax_total=ZERO,
        total_net=subtotal,
        total=subtotal,
        prices_include_tax=True,
        voucher_code="",
        tax_breakdown=[],
        shipping_country=shipping_country,
        shipping_address={},
        billing_address={},
        payment_token=payment_token,
    )
    return create_order(
        draft=draft,
        user=user,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
        placed_by=placed_by,
    )


def _stored_tax_breakdown(rows: Sequence[dict[str, Any]], currency: str) -> list[dict[str, str]]:
    """The tax breakdown as JSON stores and returns it: strings with the currency's places,
    so the replay and a later read show the same values the creation response did. Rows
    may hold Decimals or their strings."""
    return [
        {
            "rate": percent(Decimal(str(row["rate"]))),
            "net": money(Decimal(str(row["net"])), currency),
            "tax": money(Decimal(str(row["tax"])), currency),
        }
        for row in rows
    ]


_ORDER_INSERT = Insert(Order, with_pk=True)
_ITEM_INSERT = Insert(OrderItem)
_EVENT_INSERT = Insert(OrderEvent)
_OUTBOX_INSERT = Insert(OutboxMessage, with_pk=True)


def _answer(order: Order, items: Sequence[OrderItem], *, keyed: bool) -> dict[str, Any]:
    """Set the order's creation answer. It needs no database value (the public id,
    timestamps and amounts are set already), so it is stored with the insert instead of by
    an UPDATE of the row just written; only a keyed request can be replayed, so only a
    keyed one stores it (the caller still gets it)."""
    response = order_to_dict(order, items)
    order.creation_response = response if keyed else None
    return response


def _write_numbered(
    order: Order,
    items: Sequence[OrderItem],
    *,
    actor: Any,
    numbers: tuple[int, list[int]],
    keyed: bool,
) -> None:
    """Write the order, its items, its first history row and its `order.placed` outbox
    rows in one round trip (PostgreSQL), numbered by `_claim_and_number`; the outbox rows
    are handed to Celery on commit.

    Payments opens the payment and charges it on `order.placed`; its sweep does so should
    the message be lost, so a placed order is never left without a payment.
    """
    order_id, message_ids = numbers
    order.pk = order_id
    for item in items:
        item.order = order
    event = OrderEvent(
        order=order,
        from_status="",
        to_status=order.status,
        actor=actor,
        created_at=order.created_at,
    )
    messages = outbox.prepare(events.ORDER_PLACED, {"order_id": order_id}, ids=message_ids)
    response = _answer(order, items, keyed=keyed)
    statements = [
        _ORDER_INSERT.statement([order]),
        _ITEM_INSERT.statement(items),
        _EVENT_INSERT.statement([event]),
    ]
    if messages:
        statements.append(_OUTBOX_INSERT.statement(messages))
    with connection.cursor() as cursor:
        prepared.execute(cursor, *statements)
    for instance in (order, *items, event, *messages):
        instance._state.adding = False
        instance._state.db = connection.alias
    order.creation_response = response
    outbox.hand_off_on_commit(messages)


def _write(order: Order, items: Sequence[OrderItem], *, actor: Any, keyed: bool) -> None:
    """`_write_numbered` through the ORM, a statement per table (embedded SQLite)."""
    response = _answer(order, items, keyed=keyed)
    # A raw save keeps `created_at`/`updated_at` as set (auto_now would stamp them again,
    # a moment after the answer was made).
    order.save_base(raw=True, force_insert=True)
    OrderItem.objects.bulk_create(items)
    order.creation_response = response
    OrderEvent.objects.create(order=order, from_status="", to_status=order.status, actor=actor)
    outbox.publish(events.ORDER_PLACED, {"order_id": order.pk})


def create_order(
    *,
    draft: OrderDraft,
    user: Any,
    idempotency_key: str | None = None,
    fingerprint: str = "",
    placed_by: Any = None,
    within: Callable[[Order], None] | None = None,
) -> tuple[Order, bool]:
    """Store a priced order, take its stock and queue its charge, in one transaction.

    The draft is stored as given (the caller priced it); the order is held for
    `draft.hold_seconds` (ORDER_PAYMENT_TIMEOUT_SECONDS when None): unpaid by `expires_at`,
    the expiry sweep expires it. `within(order)` runs inside the transaction after the order,
    its items, history and `order.placed` are written and before the stock is taken: writes
    that must commit with the order or not at all (a voucher claim). Whatever it raises
    leaves nothing behind. May run inside the caller's transaction (a savepoint then).

    Returns (order, created). With an idempotency key already used by this user for the
    same body, returns the existing order and False (`within` does not run then).
    Raises InvalidOrder (no lines), OutOfStock, IdempotencyKeyReused,
    IdempotentRequestInProgress, and whatever `within` raises.
    """
    if not draft.lines:
        raise InvalidOrder("An order needs at least one item.")
    now = timezone.now()
    hold_seconds = draft.hold_seconds or settings.ORDER_PAYMENT_TIMEOUT_SECONDS
    order = Order(
        user=user,
        email=draft.email or getattr(user, "email", "") or "",
        currency=draft.currency,
        shipping_country=draft.shipping_country,
        shipping_address=dict(draft.shipping_address),
        billing_address=dict(draft.billing_address),
        subtotal=draft.subtotal,
        discount_total=draft.discount_total,
        shipping_method_name=draft.shipping_method_name,
        shipping_price=draft.shipping_price,
        shipping_tax=draft.shipping_tax,
        tax_total=draft.tax_total,
        total_net=draft.total_net,
        total=draft.total,
        prices_include_tax=draft.prices_include_tax,
        voucher_code=draft.voucher_code,
        tax_breakdown=_stored_tax_breakdown(draft.tax_breakdown, draft.currency),
        expires_at=now + timedelta(seconds=hold_seconds),
        idempotency_key=idempotency_key or "",
        fingerprint=fingerprint,
        payment_token=draft.payment_token,
        next_action=None,
        placed_by=_actor(placed_by) if placed_by is not None and placed_by != user else None,
        created_at=now,
        updated_at=now,
    )
    items = [
        OrderItem(
            order=order,
            variant=line.variant,
            sku=line.variant.sku,
            name=line.variant.product.name,
            variant_name=line.variant.name,
            unit_price=line.unit_price,
            quantity=line.quantity,
            discount=line.discount,
            promotion_name=line.promotion_name,
            tax_rate=line.tax_rate,
            tax=line.tax,
            total_net=line.total_net,
            line_total=line.line_total,
        )
        for line in sorted(draft.lines, key=lambda line: line.variant.pk)
    ]

    actor = _actor(placed_by or user)
    try:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                existing, numbers = _claim_and_number(
                    user=user,
                    key=idempotency_key,
                    fingerprint=fingerprint,
                    messages=len(outbox.handlers_for(events.ORDER_PLACED)),
                )
                if existing is not None:
                    return existing, False
                _write_numbered(
                    order, items, actor=actor, numbers=numbers, keyed=bool(idempotency_key)
                )
            else:
                if idempotency_key:
                    existing = _replay(user=user, key=idempotency_key, fingerprint=fingerprint)
                    if existing is not None:
                        return existing, False
                _write(order, items, actor=actor, keyed=bool(idempotency_key))
            if order.placed_by is not None:  # staff placing it for a customer
                audit.record_for(
                    order,
                    action="order.placed_for_customer",
                    changes={
                        "customer": (None, user.email),
                        "total": (None, order.total),
                        "status": (None, order.status),
                    },
                )
            if within is not None:
                within(order)
            # Last: the stock row locks are held only until the commit right after.
            inventory_services.allocate(
                lines=[inventory_services.StockLine(i.variant_id, i.quantity) for i in items],
                reference=f"order:{order.public_id}",
                country=order.shipping_country,
                actor=actor,
                savepoint=False,  # OutOfStock abandons the whole order anyway
            )
    except IntegrityError:
        if not idempotency_key:
            raise
        # Another request with this key committed first (no advisory locks here).
        existing = _replay(user=user, key=idempotency_key, fingerprint=fingerprint)
        if existing is None:
            raise
        return existing, False
    ORDERS_CREATED.labels(order.currency).inc()
    ORDER_VALUE.labels(order.currency).inc(float(order.total))
    logger.info(
        "order_placed",
        order_id=str(order.public_id),
        user_id=user.pk,
        total=str(order.total),
        currency=order.currency,
        lines=len(items),
    )
    return order, True


def _transition(order: Order, to: str, *, actor: Any, reason: str) -> None:
    """Move a locked order to `to`: history row, stock back if due, outbox event.

    Caller holds the row lock (locks.order_for_update) inside a transaction.
    """
    old = order.transition_to(to)
    if to != OrderStatus.ACTION_REQUIRED:
        order.next_action = None  # whatever the customer had to do is over
    order.save(update_fields=["status", "amount_paid", "next_action", "expires_at", "updated_at"])
    audit.record_for(order, action=f"order.{to}", changes={"status": (old, to)})
    OrderEvent.objects.create(
        order=order, from_status=old, to_status=to, actor=_actor(actor), reason=reason[:255]
    )
    if to in RELEASES_STOCK:
        # Back to the warehouses it came from, as the order's ledger rows say; once.
        inventory_services.release(
            reference=f"order:{order.public_id}",
            reason=StockReason.EXPIRY if to == OrderStatus.EXPIRED else StockReason.CANCEL,
            actor=_actor(actor),
        )
    outbox.publish(events.status_topic(to), {"order_id": order.pk})
    logger.info(
        "order_transition",
        order_id=str(order.public_id),
        from_status=old,
        to_status=to,
        reason=reason,
    )


def mark_paid(*, order_id: int, charge_id: str, amount: Decimal | None = None) -> Order:
    """Record a successful charge of `amount` (the order's total when None): the order is
    paid and says so (`amount_paid`). An order that left pending_payment meanwhile (expired,
    cancelled) stays as it is, amount_paid 0: the caller refunds the charge."""
    with transaction.atomic():
        order = locks.order_for_update(order_id)
        if order.status in AWAITING_PAYMENT:
            order.amount_paid = order.total if amount is None else amount
            _transition(order, OrderStatus.PAID, actor=None, reason=f"charge {charge_id}")
    return order


def mark_authorized(*, order_id: int, charge_id: str) -> Order:
    """The provider holds the order's total on the card (capture at fulfilment): the order
    is authorized, nothing paid yet, and held PAYMENT_AUTHORIZATION_TTL_SECONDS for its
    fulfilment (`expires_at`; unfulfilled by then it expires and the hold is voided). An
    order that ended meanwhile stays as it is: the caller voids the authorization."""
    with transaction.atomic():
        order = locks.order_for_update(order_id)
        if order.status in AWAITING_PAYMENT:
            order.expires_at = timezone.now() + timedelta(
                seconds=settings.PAYMENT_AUTHORIZATION_TTL_SECONDS
            )
            _transition(
                order, OrderStatus.AUTHORIZED, actor=None, reason=f"authorization {charge_id}"
            )
    return order


def require_action(*, order_id: int, charge_id: str, next_action: dict[str, str]) -> Order:
    """The provider waits for the customer (3-D Secure): pending_payment -> action_required,
    with what the customer must do (`next_action`, shown by the API). The stock hold
    (`expires_at`) is unchanged: never finished, the order expires with it. A no-op in any
    other status."""
    with transaction.atomic():
        order = locks.order_for_update(order_id)
        if order.status == OrderStatus.PENDING_PAYMENT:
            order.next_action = dict(next_action)
            _transition(
                order,
                OrderStatus.ACTION_REQUIRED,
                actor=None,
                reason=f"charge {charge_id} waits for the customer",
            )
    return order


def fail_payment(*, order_id: int, reason: str) -> Order:
    """A definitive decline (or a charge given up): the order fails and its stock comes back.

    An order that left pending_payment meanwhile stays as it is.
    """
    with transaction.atomic():
        order = locks.order_for_update(order_id)
        if order.status in AWAITING_PAYMENT:
            _transition(order, OrderStatus.PAYMENT_FAILED, actor=None, reason=reason)
    return order


# Orders whose hold (`expires_at`) ends them: unpaid ones (their stock hold), authorized
# ones (their authorization's, PAYMENT_AUTHORIZATION_TTL_SECONDS).
EXPIRABLE = AWAITING_PAYMENT | {OrderStatus.AUTHORIZED}


def expire_order(*, order_id: int, reason: str = "payment timeout") -> bool:
    """Expire one order past its hold (stock comes back); False when it was not expirable.

    The caller has asked the provider first: an order is never expired blind (see the
    payments app's expiry sweep, `payments.expire_orders`). Under the row lock the status is
    checked again, so two expiry runs at once expire it once and a payment recorded
    meanwhile wins. `order.expired` tells payments to void an authorization it holds.
    """
    with transaction.atomic():
        order = locks.order_for_update(order_id)
        if order.status not in EXPIRABLE:
            return False
        _transition(order, OrderStatus.EXPIRED, actor=None, reason=reason)
    return True


def overdue_order_ids(*, now: Any = None, limit: int | None = None) -> list[int]:
    """Orders pending payment, waiting for the customer's action or authorized past their
    hold (`expires_at`), oldest first.

    Orders placed before holds were stored have none: created_at + ORDER_PAYMENT_TIMEOUT_SECONDS
    stands in. Served by the (status, expires_at) and (status, created_at) indexes.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.ORDER_PAYMENT_TIMEOUT_SECONDS)
    return list(
        Order.objects.filter(status__in=EXPIRABLE)
        .filter(Q(expires_at__lt=now) | Q(expires_at__isnull=True, created_at__lt=cutoff))
        .order_by("pk")
        .values_list("pk", flat=True)[: limit or settings.ORDER_EXPIRY_BATCH_SIZE]
    )


def cancel_order(*, order_id: int, by: Any, reason: str = "") -> Order:
    """Cancel before fulfilment: a pending order is cancelled, a paid one refunded.

    Stock comes back exactly once. Raises IllegalTransition (fulfilled, refunding or already
    ended). A paid order's refund is claimed here and done by payments (`refund_order`).
    """
    for _ in range(2):
        status = Order.objects.filter(pk=order_id).values_list("status", flat=True).first()
        if status == OrderStatus.PAID:
            return refund_order(
                order_id=order_id, by=by, reason=reason or "cancelled after payment"
            )
        with transaction.atomic():
            order = locks.order_for_update(order_id)
            if order.status != OrderStatus.PAID:
                _transition(order, OrderStatus.CANCELLED, actor=by, reason=reason or "cancelled")
                return order
        # Paid between the read and the lock: go round once more, to refund it.
    raise IllegalTransition(order_id=str(order_id), from_status="paid", to_status="cancelled")


def refund_order(*, order_id: int, by: Any, reason: str = "refunded") -> Order:
    """Claim the refund of a paid order; payments moves the money and finishes it.

    Under the row lock the order goes paid -> refunding (which `fulfil_order` refuses, so
    money and goods never both leave) and `order.refund_requested` is published in the
    same transaction. The payments app handles it: it refunds with the payment's refund
    idempotency key, outside any row lock, then calls `complete_refund` (stock back), or
    `abort_refund` when the provider refuses for good. Returns the order as it is after the
    commit: refunded when the refund ran at once (embedded mode, no broker), else refunding
    until a worker has done it (the payment sweep finishes one left behind). Two refunds
    at once: one claims, the other gets IllegalTransition.
    """
    with transaction.atomic():
        order = locks.order_for_update(order_id)
        if order.status != OrderStatus.PAID:
            raise IllegalTransition(
                order_id=str(order.public_id),
                from_status=order.status,
                to_status=OrderStatus.REFUNDED,
            )
        _transition(order, OrderStatus.REFUNDING, actor=by, reason=reason)
        actor = _actor(by)
        outbox.publish(
            events.ORDER_REFUND_REQUESTED,
            {
                "order_id": order.pk,
                "actor_id": actor.pk if actor is not None else None,
                "reason": reason[:255],
            },
        )
    return Order.objects.get(pk=order_id)


# Orders that hold a payment: a refund lowers what they say was paid.
HOLDS_PAYMENT = frozenset({OrderStatus.PAID, OrderStatus.REFUNDING, OrderStatus.FULFILLED})


def record_refund(
    *, order_id: int, amount: Decimal, by: Any = None, reason: str = "refunded"
) -> Order:
    """Money went back to the buyer: lower `amount_paid` by `amount`, under the row lock.

    When nothing paid is left, a paid or refunding order ends refunded (stock back); a
    fulfilled one stays fulfilled (its goods left: returns bring back what comes back).
    A refund that leaves money paid publishes `order.partially_refunded`. An order that
    holds no payment (a late charge of an order that ended unpaid, refunded as
    compensation) is left as it is. Called by payments in the transaction that writes the
    refund's ledger row. Raises RefundExceedsPaid when `amount` is more than what is paid
    (payments reserves refunds under the payment's lock, so this is a bug, not a race).
    """
    with transaction.atomic():
        order = locks.order_for_update(order_id)
        if order.status not in HOLDS_PAYMENT:
            return order
        if amount <= 0 or amount > order.amount_paid:
            raise RefundExceedsPaid(
                order_id=str(order.public_id), amount=str(amount), paid=str(order.amount_paid)
            )
        order.amount_paid -= amount
        if order.amount_paid == 0 and order.status != OrderStatus.FULFILLED:
            _transition(order, OrderStatus.REFUNDED, actor=by, reason=reason)
            return order
        order.save(update_fields=["amount_paid", "updated_at"])
        outbox.publish(
            events.ORDER_PARTIALLY_REFUNDED,
            {
                "order_id": order.pk,
                "amount": str(amount),
                "amount_paid": str(order.amount_paid),
                "reason": reason[:255],
            },
        )
        logger.info(
            "order_partially_refunded",
            order_id=str(order.public_id),
            amount=str(amount),
            amount_paid=str(order.amount_paid),
        )
    return order


def complete_refund(*, order_id: int, by: Any = None, reason: str = "refunded") -> Order:
    """The provider refunded all that was paid: refunding -> refunded, stock back. A no-op
    in any other status. `record_refund` lowers amount_paid with each refund (and ends the
    order itself when it reaches 0); this finishes an order that had nothing to refund.

    Called by payments once the money is back; `by` is who asked for the refund.
    """
    with transaction.atomic():
        order = locks.order_for_update(order_id)
        if order.status == OrderStatus.REFUNDING:
            _transition(order, OrderStatus.REFUNDED, actor=by, reason=reason)
    return order


def abort_refund(*, order_id: int, reason: str) -> Order:
    """The provider will never refund this charge: refunding -> paid (the money stays)."""
    with transaction.atomic():
        order = locks.order_for_update(order_id)
        if order.status == OrderStatus.REFUNDING:
            _transition(order, OrderStatus.PAID, actor=None, reason=reason)
    logger.error("order_refund_refused", order_id=str(order.public_id), reason=reason)
    return order


def request_payment_retry(*, order_id: int) -> bool:
    """Ask payments to charge a pending order again; False (nothing asked) otherwise."""
    with transaction.atomic():
        order = locks.order_for_update(order_id)
        if order.status != OrderStatus.PENDING_PAYMENT:
            return False
        outbox.publish(events.ORDER_PAYMENT_RETRY_REQUESTED, {"order_id": order.pk})
    return True


def fulfil_order(*, order_id: int, by: Any, shipped: dict[str, int] | None = None) -> Order:
    """Paid or authorized -> fulfilled: the goods leave.

    `shipped` ({sku: units}) ships part of an authorized order: the other units go back to
    stock (the stock ledger), and payments captures what shipped (`fulfilled_amount`),
    releasing the rest of the authorization; None ships everything. `order.fulfilled`
    tells payments to capture an authorized order. Raises IllegalTransition in any other
    status (refunding included), InvalidOrder for a part of a paid order (its money is
    taken: refund what does not ship) or a `shipped` naming no line of the order, more
    units than it has, or nothing at all.
    """
    with transaction.atomic():
        order = locks.order_for_update(order_id)
        if OrderStatus.FULFILLED not in TRANSITIONS[order.status]:
            raise IllegalTransition(
                order_id=str(order.public_id),
                from_status=order.status,
                to_status=OrderStatus.FULFILLED,
            )
        items = list(order.items.order_by("pk"))
        units = _shipped_units(order, items, shipped)
        for item in items:
            item.quantity_fulfilled = units[item.sku]
        OrderItem.objects.bulk_update(items, ["quantity_fulfilled"])
        unshipped = [
            inventory_services.StockLine(item.variant_id, item.quantity - units[item.sku])
            for item in items
            if units[item.sku] < item.quantity
        ]
        if unshipped:
            inventory_services.release(
                reference=f"order:{order.public_id}",
                reason=StockReason.CANCEL,
                actor=_actor(by),
                lines=unshipped,
            )
        reason = "fulfilled" if not unshipped else "fulfilled in part"
        _transition(order, OrderStatus.FULFILLED, actor=by, reason=reason)
    return order


def _shipped_units(
    order: Order, items: list[OrderItem], shipped: dict[str, int] | None
) -> dict[str, int]:
    """Units per SKU that ship. Raises InvalidOrder (see `fulfil_order`)."""
    if shipped is None:
        return {item.sku: item.quantity for item in items}
    by_sku = {item.sku: item for item in items}
    unknown = sorted(set(shipped) - set(by_sku))
    if unknown:
        raise InvalidOrder(f"The order has no line {', '.join(unknown)}.")
    units = {item.sku: 0 for item in items}
    for sku, quantity in shipped.items():
        if quantity < 0 or quantity > by_sku[sku].quantity:
            raise InvalidOrder(f"Ship between 0 and {by_sku[sku].quantity} of {sku}.")
        units[sku] = quantity
    if not any(units.values()):
        raise InvalidOrder("Ship at least one unit, or cancel the order.")
    partial = any(units[item.sku] < item.quantity for item in items)
    if partial and order.status != OrderStatus.AUTHORIZED:
        raise InvalidOrder(
            "Only an authorized order ships in part (its capture takes what ships); "
            "refund what a paid order does not ship."
        )
    return units


def record_capture(*, order_id: int, amount: Decimal, charge_id: str) -> Order:
    """Payments captured `amount` of a fulfilled order's authorization: it says so
    (`amount_paid`). Called once per capture, in the transaction that writes its ledger
    row; an order not fulfilled is left as it is (the caller refunds)."""
    with transaction.atomic():
        order = locks.order_for_update(order_id)
        if order.status != OrderStatus.FULFILLED:
            return order
        order.amount_paid += amount
        order.save(update_fields=["amount_paid", "updated_at"])
    logger.info(
        "order_captured", order_id=str(order.public_id), amount=str(amount), charge_id=charge_id
    )
    return order
