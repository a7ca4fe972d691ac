"""What the shop's own stack costs (mounted only for benchmarks, BENCH_ENDPOINTS_ENABLED).

`/bench/drf`: a DRF APIView returning the JSON of one product, built once, served through the
shop's middleware. bench/run.py prints it beside the same view in bench/ceiling/ (no
middleware) for information: the targets are judged against the ceiling, never against this.
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.catalog import selectors as catalog_selectors
from apps.catalog.serializers import ProductDetailOutputSerializer


class StaticProductView(APIView):
    authentication_classes = ()
    permission_classes = (AllowAny,)
    _body: dict[str, Any] | None = None

    def get(self, request: Request) -> Response:
        if StaticProductView._body is None:
            product = catalog_selectors.get_product(lookup="prod1")
            StaticProductView._body = dict(ProductDetailOutputSerializer(product).data)
        return Response(StaticProductView._body)
