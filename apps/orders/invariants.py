"""Order invariants: an order holds stock exactly while it is due (the payment window is
checked by payments, which may read both orders and payments)."""

from __future__ import annotations

from collections import defaultdict

from django.db.models import QuerySet, Sum

from apps.inventory.models import StockMovement, StockReason
from apps.orders.models import (
    RELEASES_STOCK,
    Order,
    OrderItem,
    Return,
    ReturnDisposition,
    ReturnLine,
    ReturnStatus,
)
from ecommerce.invariants import CheckContext, Outcome, invariant


def _orders(context: CheckContext) -> QuerySet[Order]:
    orders = Order.objects.all()
    if context.since is not None:
        orders = orders.filter(created_at__gte=context.since)
    return orders


@invariant("orders.stock_held")
def stock_held(context: CheckContext) -> Outcome:
    """An order holds its items' stock while pending, paid or fulfilled, and none once released.

    Read from the ledger rows that name the order (`order:<public id>`): taken once at
    placement, given back exactly once when the order fails, expires, is cancelled or refunded.
    """
    orders = {
        f"order:{o['public_id']}": o
        for o in _orders(context)
        .filter(created_at__lt=context.settled_before())
        .values("pk", "public_id", "status")
    }
    held: dict[str, dict[int, int]] = defaultdict(dict)
    for row in (
        StockMovement.objects.filter(reference__in=list(orders))
        .values("reference", "variant_id")
        .annotate(total=Sum("delta"))
    ):
        held[row["reference"]][row["variant_id"]] = row["total"]
    bought: dict[int, dict[int, int]] = defaultdict(dict)
    for item in OrderItem.objects.filter(order_id__in=[o["pk"] for o in orders.values()]).values(
        "order_id", "variant_id", "quantity"
    ):
        bought[item["order_id"]][item["variant_id"]] = item["quantity"]
    outcome = Outcome(checked=len(orders))
    for reference, order in orders.items():
        released = order["status"] in RELEASES_STOCK
        expected = {
            product: (0 if released else -quantity)
            for product, quantity in bought[order["pk"]].items()
        }
        actual = {product: held[reference].get(product, 0) for product in expected}
        extra = {p: d for p, d in held[reference].items() if p not in expected and d}
        if actual != expected or extra:
            outcome.fail(
                f"order {order['pk']} ({order['status']}): ledger per variant {actual | extra}, "
                f"expected {expected}"
            )
    return outcome


@invariant("orders.returns_add_up")
def returns_add_up(context: CheckContext) -> Outcome:
    """An order line's `quantity_returned` is what its returns that were not rejected hold,
    and a return's restocked units are its stock ledger rows (`return:<public id>`, reason
    `return`), no more and no fewer; a written-off line moved no stock."""
    returns = Return.objects.filter(created_at__lt=context.settled_before())
    if context.since is not None:
        returns = returns.filter(created_at__gte=context.since)
    item_ids = set(
        ReturnLine.objects.filter(order_return__in=returns).values_list("item_id", flat=True)
    )
    held = dict(
        ReturnLine.objects.filter(item_id__in=item_ids)
        .exclude(order_return__status=ReturnStatus.REJECTED)
        .values("item_id")
        .annotate(total=Sum("quantity"))
        .values_list("item_id", "total")
    )
    restocked: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for public_id, variant_id, quantity in ReturnLine.objects.filter(
        order_return__in=returns, disposition=ReturnDisposition.RESTOCK
    ).values_list("order_return__public_id", "item__variant_id", "quantity"):
        restocked[f"return:{public_id}"][variant_id] += quantity
    references = [
        f"return:{public_id}" for public_id in returns.values_list("public_id", flat=True)
    ]
    moved: dict[str, dict[int, int]] = defaultdict(dict)
    for row in (
        StockMovement.objects.filter(reference__in=references, reason=StockReason.RETURN)
        .values("reference", "variant_id")
        .annotate(total=Sum("delta"))
    ):
        moved[row["reference"]][row["variant_id"]] = row["total"]
    outcome = Outcome(checked=len(item_ids) + len(references))
    for item in OrderItem.objects.filter(pk__in=item_ids).values("pk", "sku", "quantity_returned"):
        expected = held.get(item["pk"], 0)
        if item["quantity_returned"] != expected:
            outcome.fail(
                f"order item {item['pk']} ({item['sku']}): quantity_returned "
                f"{item['quantity_returned']}, its returns hold {expected}"
            )
    for reference in references:
        expected_moves = dict(restocked[reference])
        if moved[reference] != expected_moves:
            outcome.fail(
                f"{reference}: restocked per variant {moved[reference]}, expected {expected_moves}"
            )
    return outcome
