"""`?search=` on the product list: parsed and bounded here, matched and ranked in PostgreSQL.

On PostgreSQL a product matches when either
- its search document (migration catalog.0008: name weight A, description B, attribute
  value names and active variants' SKUs C) holds every word as a word prefix, in the
  configured language (settings.SEARCH_LANGUAGE, stemmed: `shirts` finds `shirt`) or in
  the `simple` configuration (so stop words such as the size `s` still find SKU parts);
  a one-character word must be a whole word, as a prefix it would match half the catalog;
- or, when that finds nothing at all (a typo), every word of three characters or more is
  close to a word of its name (pg_trgm `word_similarity` >= SEARCH_TYPO_SIMILARITY against
  the name without its punctuation: `tshrit` finds `T-Shirt`). Both are served by GIN
  indexes; which one is used costs one indexed EXISTS query.
Results are ranked, best first, unless `?ordering=` asks otherwise: `ts_rank` over the
weighted document (a name match outranks a description match) plus the trigram
similarity of the search to the name. The similarity costs more than the rest of the
search together (the trigrams of every matching name), so a list page computes it for the
SEARCH_RANKED best matches by `ts_rank` only, which come first in the order of the sum;
any further matches follow in `ts_rank` order (apps.catalog.filters.read_list). Up to
SEARCH_RANKED matches the order is exactly that of the sum.

Embedded SQLite has neither full-text search nor trigrams: there every word must be a
substring of the name, the description or a variant's SKU, in any letter case, with no
typo tolerance and results in name order.

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

from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.db import connection, transaction
from django.db.models import (
    BooleanField,
    Exists,
    Expression,
    FloatField,
    OuterRef,
    Q,
    QuerySet,
    TextField,
    Value,
)
from django.db.models.sql.compiler import SQLCompiler
from rest_framework.exceptions import ValidationError
from rest_framework.filters import SearchFilter
from rest_framework.request import Request

from apps.catalog.models import Product, ProductVariant

# Bounds on one public search, so an anonymous caller cannot make one request cost much.
SEARCH_MAX_CHARS = 100
SEARCH_MAX_WORDS = 8
# How close (pg_trgm word similarity, 0-1) a word must be to a word of a name to match it
# as a typo. pg_trgm's default (0.6) misses a swapped pair of letters (`tshrit` is 0.43
# from `tshirt`); below 0.4 unrelated short words start to match.
SEARCH_TYPO_SIMILARITY = 0.4
# Words shorter than this take no part in typo matching: too few trigrams to compare.
SEARCH_TYPO_MIN_CHARS = 3
# How many matches, the best by text rank, a list page ranks by name similarity too.
SEARCH_RANKED = 500
RANK = "search_rank"
# The parts of RANK that apps.catalog.filters.read_list reads to rank SEARCH_RANKED only:
# the text rank, and the search's words (for their similarity to the name).
TEXT_RANK = "search_text_rank"
SEARCH_TEXT = "search_text"
_WORD_CHARS = re.compile(r"[^\W_]+")


def search_words(terms: Iterable[str]) -> list[str]:
    """The words of a search, lower-cased, as the index cuts them (`T-Shirt`: `t`, `shirt`)."""
    return [word for term in terms for word in _WORD_CHARS.findall(term.lower())]


class ProductColumn(Expression):
    """A column of catalog_product the model does not declare (search_document,
    search_name: migration catalog.0008), under whatever alias the query gives the table."""

    def __init__(self, column: str, output_field: Any) -> None:
        super().__init__(output_field=output_field)
        self.column = column
        self.alias: str | None = None

    def resolve_expression(self, query: Any = None, *args: Any, **kwargs: Any) -> ProductColumn:
        resolved = self.copy()
        resolved.alias = query.get_initial_alias()
        return resolved

    def relabeled_clone(self, change_map: dict[str, str]) -> ProductColumn:
        clone = self.copy()
        clone.alias = change_map.get(self.alias or "", self.alias)
        return clone

    def as_sql(self, compiler: SQLCompiler, connection: Any) -> tuple[str, list[Any]]:
        column = connection.ops.quote_name(self.column)
        return f"{compiler.quote_name_unless_alias(self.alias)}.{column}", []


def on_sale() -> Q:
    """Some variant of the product is active: the `on_sale` column the search triggers keep
    (migration catalog.0009) on PostgreSQL, an EXISTS over the variants elsewhere."""
    if connection.vendor != "postgresql":
        return Q(Exists(ProductVariant.objects.filter(product=OuterRef("pk"), is_active=True)))
    return Q(_Sql("{}", [ProductColumn("on_sale", BooleanField())], []))


def tsquery_text(words: Sequence[str]) -> str:
    """Every word as a prefix (a one-character word whole), all required. Words are runs
    of letters and digits (search_words), so no tsquery operator can reach here."""
    return " & ".join(word if len(word) == 1 else f"{word}:*" for word in words)


_TSQUERY = "(to_tsquery(catalog_search_config(), %s) || to_tsquery('simple', %s))"


def _full_text(words: Sequence[str]) -> Q:
    query = tsquery_text(words)
    document = ProductColumn("search_document", TextField())
    return Q(_Sql(f"{{}} @@ {_TSQUERY}", [document], [query, query]))


def _typo(words: Sequence[str]) -> Q | None:
    """Every word close to a word of the name; None when a word is too short to compare."""
    if not all(len(word) >= SEARCH_TYPO_MIN_CHARS for word in words):
        return None
    name = ProductColumn("search_name", TextField())
    condition = Q()
    for word in words:
        condition &= Q(_Sql("%s <%% {}", [name], [word]))
    return condition


def _rank(words: Sequence[str]) -> Expression:
    query = tsquery_text(words)
    return _Sql(
        f"ts_rank({{}}, {_TSQUERY}) + word_similarity(%s, {{}})",
        [ProductColumn("search_document", TextField()), ProductColumn("search_name", TextField())],
        [query, query, " ".join(words)],
        output=FloatField(),
    )


def _text_rank(words: Sequence[str]) -> Expression:
    query = tsquery_text(words)
    return _Sql(
        f"ts_rank({{}}, {_TSQUERY})",
        [ProductColumn("search_document", TextField())],
        [query, query],
        output=FloatField(),
    )


class _Sql(Expression):
    """A fragment of SQL whose `{}` are product columns (resolved under the query's alias)
    and whose `%s` are parameters: RawSQL cannot take expressions."""

    conditional = True

    def __init__(
        self,
        template: str,
        columns: Sequence[ProductColumn],
        params: Sequence[Any],
        output: Any = None,
    ) -> None:
        super().__init__(output_field=output or BooleanField())
        self.template = template
        self.columns = list(columns)
        self.params = list(params)

    def get_source_expressions(self) -> list[Any]:
        return self.columns

    def set_source_expressions(self, exprs: list[Any]) -> None:
        self.columns = exprs

    def as_sql(self, compiler: SQLCompiler, connection: Any) -> tuple[str, list[Any]]:
        columns = [compiler.compile(column)[0] for column in self.columns]
        return f"({self.template.format(*columns)})", list(self.params)


def search_products(queryset: QuerySet[Product], *, words: Sequence[str]) -> QuerySet[Product]:
    """The products matching every word (see the module docstring), annotated with
    `search_rank` (and its parts) on PostgreSQL. Callers bound `words` (SEARCH_MAX_WORDS)."""
    if not words:
        return queryset.none()
    if connection.vendor != "postgresql":
        for word in words:
            queryset = queryset.filter(
                Q(name__icontains=word)
                | Q(description__icontains=word)
                | Q(pk__in=ProductVariant.objects.filter(sku__icontains=word).values("product_id"))
            )
        return queryset
    # Typos are looked for only when the words themselves find nothing: a common word
    # (`cotton`) shares trigrams with thousands of names, each then checked row by row,
    # while the full-text index answers it at once. One indexed EXISTS decides.
    full_text = _full_text(words)
    if _any(queryset.filter(full_text)):
        condition = full_text
    else:
        typo = _typo(words)
        if typo is None:
            return queryset.none()
        condition = typo
    return queryset.filter(condition).annotate(
        **{
            RANK: _rank(words),
            TEXT_RANK: _text_rank(words),
            SEARCH_TEXT: Value(" ".join(words), output_field=TextField()),
        }
    )


def _any(queryset: QuerySet[Product]) -> bool:
    """Whether anything matches, read through the GIN index. Not `exists()`: its LIMIT 1
    has the planner scan the table for the first match it expects early on (a word's
    matches look common to it), which a typo, matching nothing, makes a scan of every row.
    A materialized CTE is planned on its own, without the limit, and read lazily: the
    index finds the matches, and the first one answers."""
    try:
        sql, params = queryset.order_by().values("pk").query.sql_with_params()
    except EmptyResultSet:
        return False
    with connection.cursor() as cursor:
        # Django's compilation of a queryset; the words are parameters.
        hits = f"WITH hits AS MATERIALIZED ({sql}) SELECT EXISTS (SELECT 1 FROM hits)"  # noqa: S608
        cursor.execute(hits, params)
        return bool(cursor.fetchone()[0])


def use_typo_threshold() -> None:
    """Set this connection's pg_trgm word similarity threshold, which the index-served
    `<%` operator reads (it takes no argument). Session-wide and idempotent: nothing
    else in the project uses the operator."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT set_config('pg_trgm.word_similarity_threshold', %s, false)",
                [str(SEARCH_TYPO_SIMILARITY)],
            )


def rebuild_search_documents() -> int:
    """Adopt settings.SEARCH_LANGUAGE: redefine `catalog_search_config()` and recompute
    every product's search document. Returns the number of products. PostgreSQL only
    (a no-op elsewhere); run it once after changing the setting."""
    from importlib import import_module

    if connection.vendor != "postgresql":
        return 0
    document = import_module("apps.catalog.migrations.0008_search_document")
    # 0009's REBUILD: 0008's, also setting `on_sale`.
    rebuild = import_module("apps.catalog.migrations.0009_product_on_sale").REBUILD
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(document.config_function(settings.SEARCH_LANGUAGE))
        cursor.execute(rebuild)
        return int(cursor.rowcount)


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
    """Full-text and typo-tolerant search over products, ranked, with bounds."""

    search_description = (
        "Products whose name, description, attribute values or variant SKUs hold a word "
        "starting with each word given, in any letter case and word form (`blu shirts` "
        "finds Blue T-Shirt; a one-letter word must match a whole word), or, when none "
        "does, whose name is close to every word (`tshrit` finds T-Shirt). Best matches "
        "first unless `ordering` "
        f"is given. At most {SEARCH_MAX_CHARS} characters and {SEARCH_MAX_WORDS} words."
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
        use_typo_threshold()
        return search_products(queryset, words=words)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        (parameter,) = super().get_schema_operation_parameters(view)
        parameter["schema"] = {
            "type": "string",
            "maxLength": SEARCH_MAX_CHARS,
            "pattern": SEARCH_PATTERN,
        }
        return [parameter]
