"""Orders, their items and their history; the status transition table lives here."""

from __future__ import annotations

import uuid
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from apps.orders.exceptions import IllegalReturnTransition, IllegalTransition
from ecommerce.models import TimeStampedModel


class OrderStatus(models.TextChoices):
    PENDING_PAYMENT = "pending_payment", "Pending payment"
    PAID = "paid", "Paid"
    FULFILLED = "fulfilled", "Fulfilled"
    PAYMENT_FAILED = "payment_failed", "Payment failed"
    CANCELLED = "cancelled", "Cancelled"
    EXPIRED = "expired", "Expired"
    # A refund claimed under the row lock, not yet confirmed by the provider: fulfilment is
    # refused meanwhile, so money and goods never both leave.
    REFUNDING = "refunding", "Refunding"
    REFUNDED = "refunded", "Refunded"
    # The provider waits for the customer (3-D Secure): `next_action` says where to go. The
    # order keeps its stock hold; the provider's word that the action ended moves it on.
    ACTION_REQUIRED = "action_required", "Action required"
    # Capture at fulfilment (PAYMENT_CAPTURE_MODE=fulfilment): the amount is held on the
    # card, nothing is taken yet; fulfilling captures what ships, cancelling voids it.
    AUTHORIZED = "authorized", "Authorized"


S = OrderStatus
TRANSITIONS: dict[str, frozenset[str]] = {
    S.PENDING_PAYMENT: frozenset(
        {S.PAID, S.AUTHORIZED, S.ACTION_REQUIRED, S.PAYMENT_FAILED, S.CANCELLED, S.EXPIRED}
    ),
    S.ACTION_REQUIRED: frozenset({S.PAID, S.AUTHORIZED, S.PAYMENT_FAILED, S.CANCELLED, S.EXPIRED}),
    # Expired: not fulfilled within PAYMENT_AUTHORIZATION_TTL_SECONDS (the authorization
    # is voided before the provider's own limit).
    S.AUTHORIZED: frozenset({S.FULFILLED, S.CANCELLED, S.EXPIRED}),
    # paid -> refunded: partial refunds that add up to all that was paid.
    S.PAID: frozenset({S.FULFILLED, S.REFUNDING, S.REFUNDED}),
    # Confirmed by the provider, or back to paid when it refuses the refund for good.
    S.REFUNDING: frozenset({S.REFUNDED, S.PAID}),
    S.FULFILLED: frozenset(),
    S.PAYMENT_FAILED: frozenset(),
    S.CANCELLED: frozenset(),
    S.EXPIRED: frozenset(),
    S.REFUNDED: frozenset(),
}
# Leaving pending_payment (or action_required, authorized) without payment, or refunding,
# returns the goods to stock.
RELEASES_STOCK: frozenset[str] = frozenset({S.PAYMENT_FAILED, S.CANCELLED, S.EXPIRED, S.REFUNDED})
# Waiting for the payment's outcome: a charge's success, decline or expiry may end them.
AWAITING_PAYMENT: frozenset[str] = frozenset({S.PENDING_PAYMENT, S.ACTION_REQUIRED})

ZERO = Decimal("0.00")


def _money(**kwargs: Any) -> models.DecimalField:
    """An amount column: Decimal with two places (ecommerce.money)."""
    return models.DecimalField(max_digits=12, decimal_places=2, **kwargs)


class Order(TimeStampedModel):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders"
    )
    status = models.CharField(
        max_length=20, choices=OrderStatus.choices, default=OrderStatus.PENDING_PAYMENT
    )
    currency = models.CharField(max_length=3)
    shipping_country = models.CharField(
        max_length=2,
        blank=True,
        help_text="ISO code of the destination; stock comes from the warehouses serving it.",
    )
    # The columns from `email` to `expires_at` came with priced checkout. Those with a
    # database default let a web process of the previous release, which does not know them,
    # still insert orders during a rolling deploy (bar total_net, which the total CHECK needs).
    # The buyer's email when the order was placed: receipts go where the buyer was then.
    email = models.EmailField(blank=True, default="", db_default="")
    # Addresses as entered and validated at checkout (apps.users.addresses fields); a copy,
    # so editing the address book later never rewrites an order. {} when none was given.
    shipping_address = models.JSONField(blank=True, default=dict, db_default={})
    billing_address = models.JSONField(blank=True, default=dict, db_default={})
    # Money, as priced at placement (docs/pricing.md). `subtotal`: the undiscounted lines on
    # the entered basis (gross or net, see prices_include_tax); `total`: what is charged,
    # tax included; total = total_net + tax_total.
    subtotal = _money()
    discount_total = _money(
        default=ZERO, db_default=ZERO, help_text="Promotions and voucher, lines and shipping."
    )
    shipping_method_name = models.CharField(max_length=200, blank=True, default="", db_default="")
    shipping_price = _money(
        default=ZERO, db_default=ZERO, help_text="Shipping as entered, before any discount."
    )
    shipping_tax = _money(default=ZERO, db_default=ZERO)
    tax_total = _money(default=ZERO, db_default=ZERO, help_text="Lines and shipping.")
    total_net = _money(help_text="The total without tax.")
    total = _money()
    # What the order says was paid: its captures net of its refunds (the money ledger,
    # payments.MoneyMovement, adds up to it: `check_money_ledger`). Set when the order is
    # paid, lowered by each refund; 0 for an order that never held a payment. A capture
    # that lands on an order already ended unpaid (a late charge) is not the order's: it
    # stays 0 there and the capture is refunded (compensation).
    amount_paid = _money(default=ZERO, db_default=ZERO)
    # What the customer must do for the payment to go on while the order is action_required,
    # as the provider said it: {"type": "redirect", "url": ...}; null otherwise.
    next_action = models.JSONField(null=True, blank=True, db_default=None)
    prices_include_tax = models.BooleanField(
        default=True,
        db_default=True,
        help_text="Whether prices were entered with tax included (gross) or without (net).",
    )
    voucher_code = models.CharField(max_length=64, blank=True, default="", db_default="")
    # [{"rate": "19", "net": "16.81", "tax": "3.19"}] per tax rate, lines and shipping.
    tax_breakdown = models.JSONField(blank=True, default=list, db_default=[])
    # The hold: unpaid by then, the order expires and its stock (and voucher) come back.
    # Null for orders placed before holds were stored: created_at + the timeout then.
    expires_at = models.DateTimeField(null=True, blank=True)
    idempotency_key = models.CharField(max_length=255, blank=True, default="")
    fingerprint = models.CharField(max_length=64, blank=True)
    # The single-use provider token the order is charged with (never a card number). The
    # payments app reads it when it opens the order's payment (`order.placed`); write-only:
    # never in API output, logs or the admin. db_default: a web process of the previous
    # release still inserts orders without it during a rolling deploy.
    payment_token = models.CharField(max_length=255, blank=True, db_default="", editable=False)
    # The first response, replayed verbatim to a retry with the same Idempotency-Key.
    creation_response = models.JSONField(null=True, blank=True, editable=False)
    placed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Staff member who placed the order on the user's behalf.",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="orders_order_user_idempotency_key",
            ),
            models.CheckConstraint(condition=models.Q(total__gte=0), name="orders_total_gte_0"),
            models.CheckConstraint(
                condition=Q(
                    subtotal__gte=0,
                    discount_total__gte=0,
                    shipping_price__gte=0,
                    shipping_tax__gte=0,
                    tax_total__gte=0,
                    total_net__gte=0,
                ),
                name="orders_amounts_gte_0",
            ),
            models.CheckConstraint(
                condition=Q(total=F("total_net") + F("tax_total")),
                name="orders_total_is_net_plus_tax",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=OrderStatus.values), name="orders_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(amount_paid__gte=0), name="orders_amount_paid_gte_0"
            ),
        ]
        indexes = [
            models.Index(fields=["user", "-created_at"], name="orders_user_created_idx"),
            models.Index(fields=["status", "created_at"], name="orders_status_created_idx"),
            # The expiry sweep: pending orders whose hold has run out.
            models.Index(fields=["status", "expires_at"], name="orders_status_expires_idx"),
            models.Index(fields=["-created_at"], name="orders_created_idx"),
        ]
        # Precise rights for what staff do to orders (granted to roles by migration
        # orders.0003); "change_order" alone is too coarse to tell a refund from a fulfilment.
        permissions = [
            ("place_order_for_customer", "Can place an order on a customer's behalf"),
            ("cancel_order", "Can cancel any order in the admin"),
            ("refund_order", "Can refund a paid order in the admin"),
            ("fulfil_order", "Can mark a paid order fulfilled in the admin"),
            ("retry_order_payment", "Can request a pending order's payment again in the admin"),
        ]

    def __str__(self) -> str:
        return str(self.public_id)

    def transition_to(self, new: str) -> str:
        """Move to `new` if the table allows it; return the old status.

        Raises IllegalTransition. Caller holds the row lock and writes the history.
        """
        if new not in TRANSITIONS[self.status]:
            raise IllegalTransition(
                order_id=str(self.public_id), from_status=self.status, to_status=new
            )
        old, self.status = self.status, new
        return old


class OrderItem(models.Model):
    """A line as it was bought: SKU, names and price are copied from the catalog.

    `unit_price` is as entered (gross or net, as the order's prices_include_tax says);
    `line_total` is what the line costs the buyer after discounts, tax included
    (= total_net + tax), so unit_price * quantity when no discount or tax applies.
    """

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    variant = models.ForeignKey(
        "catalog.ProductVariant", on_delete=models.PROTECT, related_name="order_items"
    )
    sku = models.CharField(max_length=64)
    name = models.CharField(max_length=200)
    variant_name = models.CharField(max_length=200, blank=True)
    unit_price = _money()
    quantity = models.PositiveIntegerField()
    # Units shipped when the order was fulfilled (the rest went back to stock); 0 before.
    quantity_fulfilled = models.PositiveIntegerField(default=0, db_default=0)
    discount = _money(default=ZERO, db_default=ZERO, help_text="Promotion and voucher.")
    promotion_name = models.CharField(max_length=200, blank=True, default="", db_default="")
    tax_rate = models.DecimalField(
        max_digits=5, decimal_places=2, default=ZERO, db_default=ZERO, help_text="Percent."
    )
    tax = _money(default=ZERO, db_default=ZERO)
    total_net = _money(help_text="After discounts, without tax.")
    line_total = _money()
    # Units held by the order's returns that were not rejected (apps.orders.returns keeps it,
    # under the order's row lock): the CHECK below makes "never return more than was
    # shipped" the database's rule, whatever races past the service.
    quantity_returned = models.PositiveIntegerField(default=0, db_default=0, editable=False)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(quantity__gt=0), name="orders_item_qty_gt_0"),
            models.CheckConstraint(
                condition=Q(quantity_fulfilled__lte=F("quantity")),
                name="orders_item_fulfilled_lte_quantity",
            ),
            models.CheckConstraint(
                condition=Q(
                    quantity_returned__gte=0, quantity_returned__lte=F("quantity_fulfilled")
                ),
                name="orders_item_returned_lte_bought",
            ),
            models.CheckConstraint(
                condition=Q(
                    unit_price__gte=0,
                    discount__gte=0,
                    tax__gte=0,
                    total_net__gte=0,
                    tax_rate__gte=0,
                    tax_rate__lte=100,
                ),
                name="orders_item_amounts_valid",
            ),
            models.CheckConstraint(
                condition=Q(line_total=F("total_net") + F("tax")),
                name="orders_item_total_is_net_plus_tax",
            ),
            models.UniqueConstraint(
                fields=["order", "variant"], name="orders_item_one_per_variant"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.sku}"

    @property
    def returnable(self) -> int:
        """Units a new return may still hold: those shipped, less those returns hold."""
        return self.quantity_fulfilled - self.quantity_returned


class OrderEvent(models.Model):
    """Append-only history of an order's status."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.CharField(max_length=255, blank=True)
    # Set on the rows a return's steps write: the order's status does not change then
    # (from_status == to_status), and status consumers (notifications) skip these rows.
    order_return = models.ForeignKey(
        "Return", null=True, blank=True, on_delete=models.CASCADE, related_name="events"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("created_at", "pk")
        indexes = [
            models.Index(fields=["order", "created_at"], name="orders_event_order_idx"),
            # The notification sweeper and check_invariants read recent events by time.
            models.Index(fields=["created_at"], name="orders_event_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.from_status or '-'} -> {self.to_status}"


# --- Returns ---------------------------------------------------------------------------------


class ReturnStatus(models.TextChoices):
    REQUESTED = "requested", "Requested"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    RECEIVED = "received", "Received"
    REFUNDED = "refunded", "Refunded"


R = ReturnStatus
# A return is decided (approved or rejected), its goods received (restocked or written off
# line by line), then refunded by the payments app. Approved goods that never arrive can
# still be rejected, which frees their units for another return.
RETURN_TRANSITIONS: dict[str, frozenset[str]] = {
    R.REQUESTED: frozenset({R.APPROVED, R.REJECTED}),
    R.APPROVED: frozenset({R.RECEIVED, R.REJECTED}),
    R.RECEIVED: frozenset({R.REFUNDED}),
    R.REJECTED: frozenset(),
    R.REFUNDED: frozenset(),
}
# Only delivered goods come back: a paid order not yet fulfilled is cancelled instead (its
# full refund and stock release are the order's own state machine).
RETURNABLE_ORDER_STATUSES: frozenset[str] = frozenset({OrderStatus.FULFILLED})


class Return(TimeStampedModel):
    """A customer's request to send back some units of a fulfilled order, and its handling.

    The units it holds count against each line's `OrderItem.quantity_returned` until it is
    rejected. Steps are written by apps.orders.returns, each with an OrderEvent row.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="returns")
    status = models.CharField(
        max_length=12, choices=ReturnStatus.choices, default=ReturnStatus.REQUESTED
    )
    reason = models.CharField(max_length=500, help_text="Why the customer sends it back.")
    staff_note = models.CharField(max_length=500, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Who approved or rejected it.",
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    received_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    received_at = models.DateTimeField(null=True, blank=True)
    refunded_amount = _money(
        null=True, blank=True, help_text="What was refunded for it (set when refunded)."
    )
    refunded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=ReturnStatus.values), name="orders_return_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(refunded_amount__isnull=True) | Q(refunded_amount__gte=0),
                name="orders_return_refunded_gte_0",
            ),
            models.CheckConstraint(
                condition=~Q(status=ReturnStatus.REFUNDED) | Q(refunded_amount__isnull=False),
                name="orders_return_refunded_has_amount",
            ),
        ]
        indexes = [
            models.Index(fields=["order", "created_at"], name="orders_return_order_idx"),
            models.Index(fields=["status", "created_at"], name="orders_return_status_idx"),
        ]
        # Staff rights on returns (migration orders.0011 grants them to support and admins).
        permissions = [
            ("approve_return", "Can approve or reject a return"),
            ("receive_return", "Can receive a return's goods (restock or write off)"),
            ("refund_return", "Can refund a received return"),
        ]

    def __str__(self) -> str:
        return f"Return {self.public_id}"

    def transition_to(self, new: str) -> str:
        """Move to `new` if RETURN_TRANSITIONS allows it; return the old status.

        Raises IllegalReturnTransition. Caller holds the order's row lock.
        """
        if new not in RETURN_TRANSITIONS[self.status]:
            raise IllegalReturnTransition(
                return_id=str(self.public_id), from_status=self.status, to_status=new
            )
        old, self.status = self.status, new
        return old


def line_refund_amount(item: OrderItem, quantity: int) -> Decimal:
    """The share of what an order line cost (after discounts, tax included) of `quantity`
    of its units: what returning them refunds by default."""
    return (item.line_total * quantity / item.quantity).quantize(
        Decimal("0.01"), rounding=ROUND_HALF_UP
    )


class ReturnDisposition(models.TextChoices):
    RESTOCK = "restock", "Restocked"
    WRITE_OFF = "write_off", "Written off"


class ReturnLine(models.Model):
    """Units of one order line in a return, and, once received, where they went."""

    order_return = models.ForeignKey(Return, on_delete=models.CASCADE, related_name="lines")
    item = models.ForeignKey(OrderItem, on_delete=models.PROTECT, related_name="return_lines")
    quantity = models.PositiveIntegerField()
    disposition = models.CharField(
        max_length=10, choices=ReturnDisposition.choices, blank=True, default=""
    )
    warehouse = models.ForeignKey(
        "inventory.Warehouse",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Where restocked units went.",
    )
    write_off_reason = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ("pk",)
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="orders_returnline_qty_gt_0"),
            models.UniqueConstraint(
                fields=["order_return", "item"], name="orders_returnline_one_per_item"
            ),
            # Not received yet: nothing; restocked: into a warehouse; written off: a reason.
            models.CheckConstraint(
                condition=Q(disposition="", warehouse__isnull=True, write_off_reason="")
                | Q(disposition=ReturnDisposition.RESTOCK, warehouse__isnull=False)
                | (
                    Q(disposition=ReturnDisposition.WRITE_OFF, warehouse__isnull=True)
                    & ~Q(write_off_reason="")
                ),
                name="orders_returnline_disposition_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.item.sku}"
