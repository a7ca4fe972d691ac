"""`?search=` on the product list: parsed and bounded here, queried by the selector.

Anyone may search, so one request must not cost much: a search longer than
SEARCH_MAX_CHARS or with more than SEARCH_MAX_WORDS words is a 400 (not a slow query), and
control characters (a NUL byte cannot even reach PostgreSQL) are refused the same way.
Words are what spaces and commas separate, the one rule a JSON Schema pattern can state
exactly, so the published schema says all the server enforces.
"""

from __future__ import annotations

import re
from typing import Any

from django.db.models import QuerySet
from rest_framework.exceptions import ValidationError
from rest_framework.filters import SearchFilter
from rest_framework.request import Request

from apps.catalog import selectors
from apps.catalog.models import Product

# Spaces, commas, tabs and newlines separate words; every other control character is
# refused. Escapes that Python and ECMAScript regular expressions read alike.
_SEPARATOR = "[ ,\\t\\n]"
_WORD = "[^ ,\\t\\n\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f]+"
_SEPARATORS = re.compile(f"{_SEPARATOR}+")
# Words and separators are disjoint classes, so the pattern never backtracks.
SEARCH_PATTERN = (
    f"^{_SEPARATOR}*(?:{_WORD}(?:{_SEPARATOR}+{_WORD}){{0,{selectors.SEARCH_MAX_WORDS - 1}}}"
    f"{_SEPARATOR}*)?$"
)


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
        if any((ord(char) < 32 and char not in "\t\n") or 127 <= ord(char) <= 159 for char in raw):
            self._refuse("A search cannot contain control characters.")
        terms = [term for term in _SEPARATORS.split(raw) if term]
        if len(terms) > selectors.SEARCH_MAX_WORDS:
            self._refuse(f"A search has at most {selectors.SEARCH_MAX_WORDS} words.")
        return selectors.search_words(terms)

    def _refuse(self, message: str) -> None:
        raise ValidationError({self.search_param: [message]})

    def filter_queryset(
        self, request: Request, queryset: QuerySet[Product], view: Any
    ) -> QuerySet[Product]:
        words = self.get_search_terms(request)  # refuses what is out of bounds first
        if not _SEPARATORS.sub("", request.query_params.get(self.search_param, "")):
            return queryset  # no search at all
        return selectors.search_products(queryset, words=words)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        (parameter,) = super().get_schema_operation_parameters(view)
        parameter["schema"] = {
            "type": "string",
            "maxLength": selectors.SEARCH_MAX_CHARS,
            "pattern": SEARCH_PATTERN,
        }
        return [parameter]
