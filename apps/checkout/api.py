"""Cart endpoints (`/api/carts`), checkout, and `POST /api/orders` served through checkout."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotAuthenticated, ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from apps.catalog.exceptions import ProductUnavailable
from apps.checkout import selectors, services
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
from apps.checkout.models import Cart
from apps.checkout.serializers import (
    CartLineInputSerializer,
    CartLineUpdateInputSerializer,
    CartOutputSerializer,
    CartUpdateInputSerializer,
    CheckoutInputSerializer,
    ShippingMethodOutputSerializer,
)
from apps.inventory.exceptions import OutOfStock
from apps.orders import api as orders_api
from apps.orders.exceptions import IdempotencyKeyReused, IdempotentRequestInProgress
from apps.orders.serializers import OrderOutputSerializer
from apps.pricing.exceptions import (
    VoucherExhausted,
    VoucherNotActive,
    VoucherPerCustomerLimitReached,
)
from ecommerce.api import ratelimit
from ecommerce.api.filters import OrderingFilter
from ecommerce.api.idempotency import HEADER, REPLAYED_HEADER, fingerprint, idempotency_key_from
from ecommerce.api.locations import location, location_parameter
from ecommerce.api.schema import problems
from ecommerce.money import format_amount

CART_NOT_FOUND = CartNotFound()
NOT_OPEN = CartNotOpen(status="checked_out", order_id="7d4c1e9a-6b3d-4f2e-9c8b-0a1b2c3d4e5f")
TOKEN_PARAMETER = OpenApiParameter(
    "token",
    str,
    OpenApiParameter.PATH,
    description="The cart's token, as `POST /api/carts` returned it.",
    pattern=selectors.TOKEN.pattern,
)
SKU_PARAMETER = OpenApiParameter("sku", str, OpenApiParameter.PATH, description="The line's SKU.")
CART = OpenApiResponse(CartOutputSerializer, "The cart, priced now, with its problems.")
VOUCHER_ERRORS = (
    UnknownVoucher(code="SUMMER"),
    VoucherNotActive(code="SUMMER", reason=VoucherNotActive.ENDED),
    VoucherExhausted(code="SUMMER"),
)


class CartViewSet(viewsets.GenericViewSet):
    """Carts by token. Anonymous carts are reachable by their token alone; a customer's cart
    by that customer alone (anyone else: 404)."""

    lookup_field = "token"
    lookup_value_regex = "[^/.]+"
    permission_classes = (AllowAny,)
    pagination_class = None  # no lists here: the shipping methods are a few
    rate_limit_scope = {"checkout": ratelimit.ORDERS}
    serializer_class = CartOutputSerializer  # for the schema: carts are rendered by hand
    queryset = Cart.objects.none()
    filter_backends = (OrderingFilter,)  # a fixed order: `?ordering=` is a 400

    def _cart(self, token: str) -> Cart:
        return selectors.cart_for(token=token, user=self.request.user)

    def _render(self, cart: Cart, status_code: int = status.HTTP_200_OK) -> Response:
        return Response(selectors.priced_cart(cart, user=self.request.user), status=status_code)

    @extend_schema(
        summary="Create a cart (or get a customer's current one)",
        description=(
            "Anonymous: a new cart, addressed by its unguessable `token`. Signed in: your "
            "current open cart, made when you have none. Send an anonymous cart's token as "
            "`cart_token` when signing in to keep its lines."
        ),
        request=None,
        parameters=[location_parameter("The cart, by its token.")],
        responses={status.HTTP_201_CREATED: CART},
    )
    def create(self, request: Request) -> Response:
        # 201 for a customer's existing cart too: one success status per operation, and
        # the answer is the same resource either way (the cart to use from now on).
        cart, _ = services.create_cart(user=request.user)
        response = self._render(cart, status.HTTP_201_CREATED)
        for name, value in location("carts", cart.token).items():
            response[name] = value
        return response

    @extend_schema(
        summary="Read a cart, priced now",
        parameters=[TOKEN_PARAMETER],
        responses={status.HTTP_200_OK: CART, **problems(CART_NOT_FOUND)},
    )
    def retrieve(self, request: Request, token: str) -> Response:
        return self._render(self._cart(token))

    @extend_schema(
        summary="Set addresses, shipping method or voucher",
        description=(
            "Only the fields sent change; `null` clears one. An address is validated for its "
            "country; a shipping method must be one of the cart's `shipping_methods`; a "
            "voucher must exist, be active and have uses left."
        ),
        parameters=[TOKEN_PARAMETER],
        request=CartUpdateInputSerializer,
        responses={
            status.HTTP_200_OK: CART,
            **problems(
                ShippingMethodUnavailable(method_id=3, country="DE"),
                CART_NOT_FOUND,
                *VOUCHER_ERRORS,
                VoucherPerCustomerLimitReached(code="SUMMER", limit=1),
                NOT_OPEN,
                scope=ratelimit.WRITES,
            ),
        },
    )
    def partial_update(self, request: Request, token: str) -> Response:
        cart = self._cart(token)
        serializer = CartUpdateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        if "shipping_method" in data:
            data["shipping_method_id"] = data.pop("shipping_method")
        cart = services.update_cart(cart=cart, **data)
        return self._render(cart)

    @extend_schema(
        summary="Set addresses, shipping method or voucher (same as PATCH)",
        parameters=[TOKEN_PARAMETER],
        request=CartUpdateInputSerializer,
        responses={
            status.HTTP_200_OK: CART,
            **problems(
                ShippingMethodUnavailable(method_id=3, country="DE"),
                CART_NOT_FOUND,
                *VOUCHER_ERRORS,
                NOT_OPEN,
                scope=ratelimit.WRITES,
            ),
        },
    )
    def update(self, request: Request, token: str) -> Response:
        return self.partial_update(request, token)

    @extend_schema(
        summary="Add a variant to the cart",
        description="Adds to the line of that variant when there is one.",
        parameters=[TOKEN_PARAMETER],
        request=CartLineInputSerializer,
        responses={
            status.HTTP_200_OK: CART,
            **problems(
                ProductUnavailable(lookups=["TEE-OLD"]),
                InvalidCart("At most 100 units per item."),
                CART_NOT_FOUND,
                NOT_OPEN,
                scope=ratelimit.WRITES,
            ),
        },
    )
    @action(detail=True, methods=["post"])
    def lines(self, request: Request, token: str) -> Response:
        cart = self._cart(token)
        serializer = CartLineInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        cart = services.add_line(cart=cart, **serializer.validated_data)
        return self._render(cart)

    @extend_schema(
        summary="Change a line's quantity",
        parameters=[TOKEN_PARAMETER, SKU_PARAMETER],
        request=CartLineUpdateInputSerializer,
        responses={
            status.HTTP_200_OK: CART,
            **problems(
                InvalidCart("At most 100 units per item."),
                CART_NOT_FOUND,
                CartLineNotFound(sku="TEE-BLK-M"),
                NOT_OPEN,
                scope=ratelimit.WRITES,
            ),
        },
    )
    @action(detail=True, methods=["patch"], url_path=r"lines/(?P<sku>[^/]+)", url_name="line")
    def line(self, request: Request, token: str, sku: str) -> Response:
        cart = self._cart(token)
        serializer = CartLineUpdateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        quantity = serializer.validated_data.get("quantity")
        if quantity is not None:
            cart = services.set_line_quantity(cart=cart, sku=sku, quantity=quantity)
        return self._render(cart)

    @extend_schema(
        summary="Remove a line",
        parameters=[TOKEN_PARAMETER, SKU_PARAMETER],
        request=None,
        responses={
            status.HTTP_200_OK: CART,
            **problems(
                CART_NOT_FOUND, CartLineNotFound(sku="TEE-BLK-M"), NOT_OPEN, scope=ratelimit.WRITES
            ),
        },
    )
    @line.mapping.delete
    def remove_line(self, request: Request, token: str, sku: str) -> Response:
        cart = services.remove_line(cart=self._cart(token), sku=sku)
        return self._render(cart)

    @extend_schema(
        summary="Shipping methods for the cart's address",
        description="Cheapest first; empty until the cart has a shipping address.",
        parameters=[TOKEN_PARAMETER],
        responses={
            status.HTTP_200_OK: ShippingMethodOutputSerializer(many=True),
            **problems(CART_NOT_FOUND),
        },
    )
    @action(detail=True, methods=["get"], url_path="shipping-methods")
    def shipping_methods(self, request: Request, token: str) -> Response:
        quotes = self.filter_queryset(selectors.shipping_methods_for(self._cart(token)))
        return Response(
            [
                {
                    "id": q.method_id,
                    "name": q.name,
                    "zone": q.zone,
                    "price": format_amount(q.price, q.currency),
                    "free": q.free,
                }
                for q in quotes
            ]
        )

    @extend_schema(
        summary="Check out: the cart becomes an order",
        description=(
            "Signed-in customers only (an anonymous cart joins your cart when you sign in "
            "with its `cart_token`). Prices the cart again; with any problem, 409 "
            "`checkout_problems` lists them. Otherwise holds the stock and the voucher use "
            "until the order is paid or its hold runs out, and starts the payment: the "
            "answer is the order, as `POST /api/orders` answers. With an `Idempotency-Key`, "
            "a retry with the same body returns the first order (`Idempotent-Replayed: true`)."
        ),
        parameters=[
            TOKEN_PARAMETER,
            OpenApiParameter(
                HEADER,
                str,
                OpenApiParameter.HEADER,
                description="1 to 255 printable ASCII characters; a UUID is ideal.",
                pattern="^[!-~]{1,255}$",
            ),
            location_parameter("The order."),
            OpenApiParameter(
                REPLAYED_HEADER,
                str,
                OpenApiParameter.HEADER,
                response=[201],
                enum=["true"],
                description="Present when this is the stored answer to an earlier request.",
            ),
        ],
        request=CheckoutInputSerializer,
        responses={
            status.HTTP_201_CREATED: OpenApiResponse(OrderOutputSerializer, "The order."),
            **problems(
                NotAuthenticated(SignInRequired().detail),
                CART_NOT_FOUND,
                CheckoutProblems(
                    problems=[
                        {"code": "shipping_method_required"},
                        {
                            "code": "insufficient_stock",
                            "sku": "TEE-BLK-M",
                            "requested": 2,
                            "available": 1,
                        },
                    ]
                ),
                OutOfStock(shortfalls={"TEE-BLK-M": {"requested": 2, "available": 1}}),
                VoucherExhausted(code="SUMMER"),
                NOT_OPEN,
                IdempotentRequestInProgress(key="3f1c9e0a-order-1"),
                IdempotencyKeyReused(key="3f1c9e0a-order-1"),
                scope=ratelimit.ORDERS,
            ),
        },
    )
    @action(detail=True, methods=["post"])
    def checkout(self, request: Request, token: str) -> Response:
        key = idempotency_key_from(request)
        cart = self._cart(token)
        if not request.user.is_authenticated:
            raise NotAuthenticated(SignInRequired().detail)
        serializer = CheckoutInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        payment_token = _payment_token(data)
        order, created = services.checkout(
            cart=cart,
            user=request.user,
            payment_token=payment_token,
            idempotency_key=key,
            fingerprint=fingerprint({"cart": token, **data}) if key else "",
        )
        headers = location("orders", order.public_id)
        if not created:
            headers[REPLAYED_HEADER] = "true"
        return Response(order.creation_response, status=status.HTTP_201_CREATED, headers=headers)


def _payment_token(data: dict[str, Any]) -> str:
    token = data.get("payment_token")
    if not token:
        if not settings.DEBUG:
            raise ValidationError({"payment_token": "This field is required."})
        token = settings.PAYMENT_SANDBOX_SUCCESS_TOKEN
    return str(token)


class OrderViewSet(orders_api.OrderViewSet):
    """`/api/orders` as the orders app serves it, with `POST` placing the order through
    checkout (`checkout.services.place_order`: lines priced with taxes and promotions)."""

    place_order = staticmethod(services.place_order)
