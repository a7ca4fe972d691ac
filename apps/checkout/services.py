"""Cart changes, the merge at sign-in, idle-cart expiry, and checkout (a cart becomes an order).

Every change locks the cart row first (locks.cart_for_update), so two requests on one cart,
a change racing a checkout included, run one after the other. A change touches
`updated_at`: the cart's last activity, from which its idle expiry runs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.catalog import selectors as catalog_selectors
from apps.catalog.exceptions import ProductUnavailable
from apps.catalog.models import ProductVariant
from apps.checkout import locks, selectors
from apps.checkout.exceptions import (
    CartLineNotFound,
    CartNotFound,
    CartNotOpen,
    CheckoutProblems,
    InvalidCart,
    ShippingMethodUnavailable,
    SignInRequired,
    UnknownVoucher,
)
from apps.checkout.models import Cart, CartLine, CartStatus
from apps.orders import services as orders_services
from apps.orders.exceptions import IdempotencyKeyReused, InvalidOrder
from apps.orders.models import Order
from apps.pricing import selectors as pricing_selectors
from apps.pricing import services as pricing_services
from apps.pricing.calculator import Breakdown
from apps.pricing.exceptions import VoucherNotFound
from apps.shipping import selectors as shipping_selectors
from apps.users import addresses as users_addresses
from apps.users import services as users_services
from ecommerce.errors import DomainError
from ecommerce.money import is_exact
from ecommerce.observability.logging import get_logger

logger = get_logger(__name__)

COUNTRY = re.compile(r"[A-Z]{2}")
# "Leave this field as it is" for update_cart's optional arguments (None means "clear").
UNSET: Any = object()


def _signed_in(user: Any) -> bool:
    return user is not None and bool(getattr(user, "is_authenticated", False))


def _touch(cart: Cart, *fields: str) -> None:
    """Save the named fields and the cart's last activity."""
    cart.save(update_fields=[*fields, "updated_at"])


def _open_for_update(cart: Cart) -> Cart:
    """The cart, locked; raises CartNotOpen once it was checked out or merged.

    Caller is inside `transaction.atomic()`.
    """
    locked = locks.cart_for_update(cart.pk)
    if locked.status != CartStatus.OPEN:
        raise CartNotOpen(
            status=locked.status,
            order_id=str(locked.order_public_id) if locked.order_public_id else None,
        )
    return locked


# --- Carts and lines ---------------------------------------------------------------------------


def create_cart(*, user: Any) -> tuple[Cart, bool]:
    """A new anonymous cart; for a signed-in customer, their current open cart (made when
    they have none). Returns (cart, created).

    One open cart per customer is a constraint: two first requests at once make one cart.
    """
    if not _signed_in(user):
        return Cart.objects.create(), True
    current = selectors.current_cart_of(user=user)
    if current is not None:
        return current, False
    _drop_idle_open_cart(user)
    try:
        with transaction.atomic():
            return Cart.objects.create(user=user), True
    except IntegrityError:
        current = selectors.current_cart_of(user=user)
        if current is None:
            raise
        return current, False


def _drop_idle_open_cart(user: Any) -> None:
    """Delete the customer's open cart that went idle (gone already, not yet deleted by
    the beat task), so a new or adopted one may take its place as the open cart."""
    Cart.objects.filter(
        user=user, status=CartStatus.OPEN, updated_at__lt=selectors.idle_cutoff()
    ).delete()


def _variant_for_sale(sku: str) -> ProductVariant:
    """An active variant of an active product by SKU (any letter case).

    Raises ProductUnavailable for an unknown or inactive SKU.
    """
    found = catalog_selectors.variants_for_order(lookups=[sku]) if not sku.isdigit() else {}
    variant = found.get(sku)
    if variant is None:
        raise ProductUnavailable(lookups=[sku])
    return variant


def _check_quantity(quantity: int) -> None:
    if quantity < 1:
        raise InvalidCart("A quantity is at least 1; remove the line instead.")
    if quantity > settings.ORDER_MAX_ITEM_QUANTITY:
        raise InvalidCart(f"At most {settings.ORDER_MAX_ITEM_QUANTITY} units per item.")


def add_line(*, cart: Cart, sku: str, quantity: int) -> Cart:
    """Add `quantity` units of a variant: a new line, or more of the line it already has.

    Adding acknowledges the variant's current price (the line's price_when_added follows).
    Raises ProductUnavailable, InvalidCart (limits, another currency), CartNotOpen.
    """
    _check_quantity(quantity)
    variant = _variant_for_sale(sku)
    with transaction.atomic():
        cart = _open_for_update(cart)
        lines = {line.variant_id: line for line in CartLine.objects.filter(cart=cart)}
        line = lines.get(variant.pk)
        if line is None:
            if len(lines) >= settings.CART_MAX_LINES:
                raise InvalidCart(f"A cart holds at most {settings.CART_MAX_LINES} items.")
            currencies = {existing.currency_when_added for existing in lines.values()}
            if currencies and variant.currency not in currencies:
                raise InvalidCart(
                    f"This cart is priced in {cart.currency}; {variant.sku} is priced in "
                    f"{variant.currency}."
                )
            CartLine.objects.create(
                cart=cart,
                variant=variant,
                quantity=quantity,
                price_when_added=variant.price,
                currency_when_added=variant.currency,
            )
        else:
            _check_quantity(line.quantity + quantity)
            line.quantity += quantity
            line.price_when_added = variant.price
            line.currency_when_added = variant.currency
            line.save(update_fields=["quantity", "price_when_added", "currency_when_added"])
        cart.currency = variant.currency
        _touch(cart, "currency")
    return cart


def _line_of(cart: Cart, sku: str) -> CartLine:
    line = (
        CartLine.objects.filter(cart=cart, variant__sku__iexact=sku)
        .select_related("variant")
        .first()
    )
    if line is None:
        raise CartLineNotFound(sku=sku)
    return line


def set_line_quantity(*, cart: Cart, sku: str, quantity: int) -> Cart:
    """Set a line's quantity; this also accepts the variant's current price.

    Raises CartLineNotFound, InvalidCart, CartNotOpen.
    """
    _check_quantity(quantity)
    with transaction.atomic():
        cart = _open_for_update(cart)
        line = _line_of(cart, sku)
        line.quantity = quantity
        line.price_when_added = line.variant.price
        line.currency_when_added = line.variant.currency
        line.save(update_fields=["quantity", "price_when_added", "currency_when_added"])
        _touch(cart)
    return cart


def remove_line(*, cart: Cart, sku: str) -> Cart:
    """Remove a line (an unavailable variant's too). Raises CartLineNotFound, CartNotOpen."""
    with transaction.atomic():
        cart = _open_for_update(cart)
        _line_of(cart, sku).delete()
        _touch(cart)
    return cart


def update_cart(
    *,
    cart: Cart,
    shipping_address: Mapping[str, Any] | None = UNSET,
    billing_address: Mapping[str, Any] | None = UNSET,
    shipping_method_id: int | None = UNSET,
    voucher_code: str | None = UNSET,
    save_addresses: bool = UNSET,
) -> Cart:
    """Set (or clear, with None) the cart's addresses, shipping method and voucher.

    Addresses are validated for their country (users.addresses). A shipping method must be
    one the cart's address is offered now; a voucher must exist, be active and have uses
    left now (it may still lapse later: the priced cart then shows a problem).
    Raises AddressInvalid, ShippingMethodUnavailable, UnknownVoucher, VoucherNotActive,
    VoucherExhausted, CartNotOpen.
    """
    shipping = _address_or_empty(shipping_address)
    billing = _address_or_empty(billing_address)
    code: Any = (voucher_code or "").strip().upper() if voucher_code is not UNSET else UNSET
    if code is not UNSET and code:
        try:
            pricing_selectors.voucher_terms(code)  # raises when unknown, inactive or used up
        except VoucherNotFound:
            raise UnknownVoucher(code=code) from None
    with transaction.atomic():
        cart = _open_for_update(cart)
        fields: list[str] = []
        if shipping is not UNSET:
            cart.shipping_address = shipping
            cart.country = shipping.get("country", "")
            fields += ["shipping_address", "country"]
        if billing is not UNSET:
            cart.billing_address = billing
            fields.append("billing_address")
        if save_addresses is not UNSET:
            cart.save_addresses = bool(save_addresses)
            fields.append("save_addresses")
        if code is not UNSET:
            cart.voucher_code = code
            fields.append("voucher_code")
        if shipping_method_id is not UNSET:
            if shipping_method_id is not None:
                _check_shipping_method(cart, shipping_method_id)
            cart.shipping_method_id = shipping_method_id
            fields.append("shipping_method_id")
        _touch(cart, *fields)
    return cart


def _address_or_empty(data: Mapping[str, Any] | None) -> Any:
    if data is UNSET:
        return UNSET
    if data is None:
        return {}
    return users_addresses.validate_address(data)


def _check_shipping_method(cart: Cart, method_id: int) -> None:
    """Raises ShippingMethodUnavailable unless `method_id` is quoted for the cart now."""
    if not cart.country:
        raise ShippingMethodUnavailable(method_id=method_id, country="")
    weight, subtotal = selectors.shipping_basis(cart)
    quote = shipping_selectors.quote(
        method_id=method_id,
        country=cart.country,
        currency=cart.currency,
        weight_grams=weight,
        subtotal=subtotal,
    )
    if quote is None:
        raise ShippingMethodUnavailable(method_id=method_id, country=cart.country)


# --- Sign-in merge and expiry ------------------------------------------------------------------


def merge_cart_into_customer(*, user: Any, token: str) -> Cart | None:
    """Bring an anonymous cart into `user`'s account at sign-in.

    With no open cart of their own, the customer adopts it. Otherwise its lines are added
    to the customer's cart (quantities add up, capped at ORDER_MAX_ITEM_QUANTITY; lines past
    CART_MAX_LINES are left out) and the anonymous cart becomes `merged`. A token naming no
    open anonymous cart (unknown, expired, someone's own) is ignored: sign-in never fails
    for it. Returns the customer's cart, or None when nothing was merged.
    """
    anonymous = selectors.anonymous_cart(token=token)
    if anonymous is None or not _signed_in(user):
        return None
    with transaction.atomic():
        current = selectors.current_cart_of(user=user)
        if current is None:
            _drop_idle_open_cart(user)
        # Both rows locked, in pk order, so two sign-ins at once cannot deadlock.
        ids = sorted({anonymous.pk} | ({current.pk} if current is not None else set()))
        locked = {cart_id: locks.cart_for_update(cart_id) for cart_id in ids}
        source = locked[anonymous.pk]
        if source.status != CartStatus.OPEN or source.user_id is not None:
            return None
        if current is None:
            try:
                with transaction.atomic():
                    source.user = user
                    _touch(source, "user")
            except IntegrityError:
                # The customer's open cart was made meanwhile (another sign-in, a POST
                # /api/carts): merge into it instead.
                source.user = None
                current = selectors.current_cart_of(user=user)
                if current is None:
                    raise
            else:
                logger.info("cart_adopted", cart_id=source.pk, user_id=user.pk)
                return source
            locked[current.pk] = locks.cart_for_update(current.pk)
        target = locked[current.pk]
        _merge_cart(source=source, target=target)
        logger.info("cart_merged", cart_id=source.pk, into_cart_id=target.pk, user_id=user.pk)
        return target


def _merge_cart(*, source: Cart, target: Cart) -> None:
    """Lines, voucher and (when the target has none) addresses of `source` go to `target`;
    `source` becomes merged. Both rows are locked by the caller."""
    _merge_lines(source=source, target=target)
    source.status = CartStatus.MERGED
    _touch(source, "status")
    if not target.voucher_code and source.voucher_code:
        target.voucher_code = source.voucher_code
    if not target.shipping_address and source.shipping_address:
        target.shipping_address = source.shipping_address
        target.country = source.country
        target.billing_address = source.billing_address
        target.shipping_method_id = source.shipping_method_id
    _touch(
        target,
        "voucher_code",
        "shipping_address",
        "country",
        "billing_address",
        "shipping_method_id",
    )


def _merge_lines(*, source: Cart, target: Cart) -> None:
    """Add the source's lines to the target's. Both rows are locked by the caller."""
    existing = {line.variant_id: line for line in CartLine.objects.filter(cart=target)}
    currencies = {line.currency_when_added for line in existing.values()}
    cap = settings.ORDER_MAX_ITEM_QUANTITY
    for line in CartLine.objects.filter(cart=source).order_by("pk"):
        mine = existing.get(line.variant_id)
        if mine is not None:
            mine.quantity = min(mine.quantity + line.quantity, cap)
            mine.save(update_fields=["quantity"])
        elif len(existing) < settings.CART_MAX_LINES and (
            not currencies or line.currency_when_added in currencies
        ):
            existing[line.variant_id] = CartLine.objects.create(
                cart=target,
                variant_id=line.variant_id,
                quantity=min(line.quantity, cap),
                price_when_added=line.price_when_added,
                currency_when_added=line.currency_when_added,
            )
            currencies.add(line.currency_when_added)
            target.currency = line.currency_when_added
    _touch(target, "currency")


def delete_idle_carts(*, now: Any = None, limit: int | None = None) -> int:
    """Delete carts with no activity for CART_IDLE_SECONDS, a batch at a time; returns how
    many. Carts already answer 404 once idle (selectors.cart_for), so a late run hides
    nothing. Checked-out and merged carts go the same way: their orders keep everything."""
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.CART_IDLE_SECONDS)
    ids = list(
        Cart.objects.filter(updated_at__lt=cutoff)
        .order_by("updated_at")
        .values_list("pk", flat=True)[: limit or settings.CART_EXPIRY_BATCH_SIZE]
    )
    if not ids:
        return 0
    deleted, _ = Cart.objects.filter(pk__in=ids, updated_at__lt=cutoff).delete()
    carts = Cart.objects.filter(pk__in=ids).count()
    count = len(ids) - carts
    logger.info("idle_carts_deleted", carts=count, rows=deleted)
    return count


# --- Checkout ----------------------------------------------------------------------------------


def _draft(
    *,
    breakdown: Breakdown,
    variants: Mapping[str, ProductVariant],
    country: str,
    shipping_address: dict[str, Any],
    billing_address: dict[str, Any],
    payment_token: str,
) -> orders_services.OrderDraft:
    """The order as priced: one DraftLine per priced line, the totals of the breakdown."""
    return orders_services.OrderDraft(
        currency=breakdown.currency,
        lines=[
            orders_services.DraftLine(
                variant=variants[line.key],
                quantity=line.quantity,
                unit_price=line.unit_price,
                discount=line.promotion_discount + line.voucher_discount,
                promotion_name=line.promotion_name,
                tax_rate=line.tax_rate,
                tax=line.tax,
                total_net=line.net,
                line_total=line.gross,
            )
            for line in breakdown.lines
        ],
        subtotal=breakdown.subtotal,
        discount_total=breakdown.discount,
        shipping_method_name=breakdown.shipping_name,
        shipping_price=breakdown.shipping_undiscounted,
        shipping_tax=breakdown.shipping_tax,
        tax_total=breakdown.tax,
        total_net=breakdown.total_net,
        total=breakdown.total,
        prices_include_tax=breakdown.prices_include_tax,
        voucher_code=breakdown.voucher_code,
        # The calculator gives JSON-ready strings; the order stores amounts it formats.
        tax_breakdown=[
            {key: Decimal(value) for key, value in row.items()} for row in breakdown.tax_breakdown()
        ],
        shipping_country=country,
        shipping_address=shipping_address,
        billing_address=billing_address,
        payment_token=payment_token,
        # The stock and the voucher use are held this long for the payment.
        hold_seconds=settings.CHECKOUT_HOLD_SECONDS,
    )


def _claim_voucher(code: str, user: Any) -> Any:
    """The `within` step of create_order: the voucher use commits with the order or not at
    all (the claim is one conditional UPDATE under the voucher's row lock)."""

    def claim(order: Order) -> None:
        if code:
            pricing_services.claim_voucher(
                code=code, reference=f"order:{order.public_id}", user=user
            )

    return claim


def _replay_checked_out(cart: Cart, *, user: Any, key: str | None, fingerprint: str) -> Order:
    """The order a retried checkout made already; CartNotOpen when this is not a retry.

    Raises IdempotencyKeyReused (same key, other body) through the orders service's rule.
    """
    if key:
        order = Order.objects.filter(user=user, idempotency_key=key).first()
        if order is not None:
            if order.fingerprint != fingerprint:
                raise IdempotencyKeyReused(key=key)
            if cart.order_public_id == order.public_id:
                return order
    raise CartNotOpen(
        status=cart.status,
        order_id=str(cart.order_public_id) if cart.order_public_id else None,
    )


def checkout(
    *,
    cart: Cart,
    user: Any,
    payment_token: str,
    idempotency_key: str | None = None,
    fingerprint: str = "",
) -> tuple[Order, bool]:
    """Turn the cart into an order in one transaction: stock held, voucher use recorded.

    Under the cart's row lock the cart is priced again; any problem refuses the checkout
    (CheckoutProblems, 409, with the problems). The order is created from the price
    breakdown by orders.create_order, which claims the voucher and allocates the stock in
    the same transaction, so an order never exists without both. The cart is then
    checked_out and names its order. A retry with the same Idempotency-Key and body
    returns the first order (created False); two checkouts of one cart at once make one
    order: the second waits for the cart lock, then replays (same key) or gets CartNotOpen.

    An anonymous cart is adopted by (or merged into the cart of) the signed-in caller
    first. Raises SignInRequired, CartNotFound, CartNotOpen, CheckoutProblems, OutOfStock,
    voucher errors, IdempotencyKeyReused, IdempotentRequestInProgress.
    """
    if not _signed_in(user):
        raise SignInRequired()
    if cart.user_id is None:
        merged = merge_cart_into_customer(user=user, token=cart.token)
        if merged is None:
            raise CartNotFound()
        cart = merged
    if cart.user_id != user.pk:
        raise CartNotFound()
    with transaction.atomic():
        cart = locks.cart_for_update(cart.pk)
        if cart.status != CartStatus.OPEN:
            return _replay_checked_out(
                cart, user=user, key=idempotency_key, fingerprint=fingerprint
            ), False
        pricing = selectors.price_cart(cart, user=user)
        if pricing.problems:
            raise CheckoutProblems(problems=pricing.problems)
        if pricing.breakdown is None:  # unreachable: an empty cart is a problem
            raise CheckoutProblems(problems=[{"code": "cart_empty"}])
        billing = cart.billing_address or cart.shipping_address
        order, created = orders_services.create_order(
            draft=_draft(
                breakdown=pricing.breakdown,
                variants=pricing.variants,
                country=cart.country,
                shipping_address=cart.shipping_address,
                billing_address=billing,
                payment_token=payment_token,
            ),
            user=user,
            idempotency_key=idempotency_key,
            fingerprint=fingerprint,
            placed_by=user,
            within=_claim_voucher(pricing.breakdown.voucher_code, user),
        )
        if not created:
            return order, False  # the key's order, made from another cart
        cart.status = CartStatus.CHECKED_OUT
        cart.order_public_id = order.public_id
        _touch(cart, "status", "order_public_id")
        if cart.save_addresses:
            _save_addresses(cart, user=user)
    logger.info("cart_checked_out", cart_id=cart.pk, order_id=str(order.public_id))
    return order, True


def _save_addresses(cart: Cart, *, user: Any) -> None:
    """Copy the cart's addresses to the address book (the billing one only if different).

    A courtesy, not part of the order: a full book (or an entry the book refuses) leaves
    the book as it was and the checkout goes on.
    """
    same = not cart.billing_address or cart.billing_address == cart.shipping_address
    try:
        with transaction.atomic():
            users_services.save_address(
                user=user,
                data=cart.shipping_address,
                default_shipping=True,
                default_billing=same,
            )
            if not same:
                users_services.save_address(
                    user=user, data=cart.billing_address, default_billing=True
                )
    except DomainError as exc:
        logger.warning("cart_addresses_not_saved", cart_id=cart.pk, reason=exc.code)


def place_order(
    *,
    user: Any,
    lines: Sequence[orders_services.OrderLine],
    payment_token: str,
    shipping_country: str = "",
    idempotency_key: str | None = None,
    fingerprint: str = "",
    placed_by: Any = None,
) -> tuple[Order, bool]:
    """The one-call path (`POST /api/orders`): lines priced and ordered in one transaction,
    with no address and no shipping method; taxes and promotions of `shipping_country`.

    Same contract as orders.services.place_order, which it replaces for the API.
    Raises InvalidOrder, ProductUnavailable, OutOfStock, IdempotencyKeyReused,
    IdempotentRequestInProgress.
    """
    if shipping_country and not COUNTRY.fullmatch(shipping_country):
        raise InvalidOrder("A shipping country is a two-letter ISO code in capitals: DE.")
    items = orders_services.resolve_lines(lines)
    currency = items[0][0].currency
    if not all(is_exact(variant.price, currency) for variant, _ in items):
        # A legacy price its currency cannot carry (100.50 JPY) cannot be priced: the order
        # is placed as entered, as before, and the provider refuses the charge.
        return orders_services.place_order(
            user=user,
            lines=lines,
            payment_token=payment_token,
            shipping_country=shipping_country,
            idempotency_key=idempotency_key,
            fingerprint=fingerprint,
            placed_by=placed_by,
        )
    breakdown = pricing_selectors.price_items(
        items, currency=currency, country=shipping_country, user=user
    )
    variants = {variant.sku: variant for variant, _ in items}
    draft = _draft(
        breakdown=breakdown,
        variants=variants,
        country=shipping_country,
        shipping_address={},
        billing_address={},
        payment_token=payment_token,
    )
    return orders_services.create_order(
        draft=draft,
        user=user,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
        placed_by=placed_by,
    )
