"""The catalog's warm public reads, answered before Django's handler when cached
(ecommerce/api/fastpath.py): a product's detail by id or SKU, and list pages.

Each lookup names the entry the view's own read would find (`selectors.product_detail_json`,
`selectors.product_list_json`), so only bytes the view cached are served; anything the
view would refuse or read otherwise (an id the column cannot hold, a query on the detail)
is left to it.
"""

from __future__ import annotations

import re

from django.core.handlers.wsgi import WSGIRequest

from apps.catalog import cache, selectors
from ecommerce.api import identifiers
from ecommerce.api.fastpath import CacheLookup, FastRoute, register

# As the router spells them (OptionalSlashRouter, ProductViewSet.lookup_value_regex).
DETAIL_PATH = re.compile(r"/api/products/(?P<lookup>[A-Za-z0-9._-]{1,64})/?")
LIST_PATH = re.compile(r"/api/products/?")


def detail_lookup(match: re.Match[str], request: WSGIRequest) -> CacheLookup | None:
    lookup = match["lookup"]
    if request.META.get("QUERY_STRING"):
        return None
    if lookup.isdigit():
        return CacheLookup(cache.detail_key(int(lookup))) if identifiers.is_id(lookup) else None
    return CacheLookup(cache.sku_key(lookup), then=(cache.DETAIL_KEY_PREFIX, ""))


def list_lookup(match: re.Match[str], request: WSGIRequest) -> CacheLookup | None:
    digest = selectors.list_page_digest(request.GET)
    return CacheLookup(
        cache.LIST_GENERATION_KEY, then=(cache.LIST_KEY_PREFIX, f":{digest}"), default="0"
    )


def register_routes() -> None:
    register(FastRoute(cache_name=cache.DETAIL, path=DETAIL_PATH, lookup=detail_lookup))
    register(FastRoute(cache_name=cache.LIST, path=LIST_PATH, lookup=list_lookup))
