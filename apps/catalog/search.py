"""`?search=` on the product list: parsed and bounded here, queried by the selector.

Anyone may search, so one request must not cost much: a search longer than
SEARCH_MAX_CHARS or with more than SEARCH_MAX_WORDS words is a 400 (not a slow query), and
control characters (a NUL byte cannot even reach PostgreSQL) are refused the same way.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from rest_framework.exceptions import ValidationError
from rest_framework.filters import SearchFilter
from rest_framework.request import Request

from apps.catalog import selectors
from apps.catalog.models import Product


class ProductSearchFilter(SearchFilter):
    """Word-prefix search over product names and SKUs, with bounds."""

    search_description = (
        "Products whose name or SKU has a word starting with each word given, in any letter "
        "case (`blu shirt` finds Blue T-Shirt; a one-letter word must match a whole word). "
        f"At most {selectors.SEARCH_MAX_CHARS} characters and {selectors.SEARCH_MAX_WORDS} "
        "words."
    )

    def get_search_terms(self, request: Request) -> list[str]:
        """The search's words. Raises ValidationError (a 400) past the bounds."""
        raw = request.query_params.get(self.search_param, "")
        if len(raw) > selectors.SEARCH_MAX_CHARS:
            self._refuse(f"A search is at most {selectors.SEARCH_MAX_CHARS} characters.")
        if any(ord(char) < 32 or ord(char) == 127 for char in raw):
            self._refuse("A search cannot contain control characters.")
        words = selectors.search_words(super().get_search_terms(request))
        if len(words) > selectors.SEARCH_MAX_WORDS:
            self._refuse(f"A search has at most {selectors.SEARCH_MAX_WORDS} words.")
        return words

    def _refuse(self, message: str) -> None:
        raise ValidationError({self.search_param: [message]})

    def filter_queryset(
        self, request: Request, queryset: QuerySet[Product], view: Any
    ) -> QuerySet[Product]:
        if not request.query_params.get(self.search_param, "").strip():
            return queryset
        return selectors.search_products(queryset, words=self.get_search_terms(request))

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        (parameter,) = super().get_schema_operation_parameters(view)
        parameter["schema"] = {"type": "string", "maxLength": selectors.SEARCH_MAX_CHARS}
        return [parameter]
