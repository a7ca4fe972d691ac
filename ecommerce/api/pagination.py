"""Page-number pagination with a client-chosen, bounded page size.

Links are relative (path and query only): a page rendered for one Host header can be
cached and served to every client without leaking or trusting that header (so the
schema declares them `uri-reference`). A view that caches its pages names the query
parameters that matter in `link_query_params`; links then carry only those, so one
client's stray parameters never reach another's links.

`page` and `page_size` are parsed strictly: DRF falls back to the default size for a
`page_size` it cannot read and silently cuts one above the maximum, so a client's bug
came back as a page of another size. Here both are a 400; a page past the last is a 404.
"""

from __future__ import annotations

from typing import Any

from django.http import QueryDict
from rest_framework import pagination
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.utils.urls import remove_query_param, replace_query_param

from ecommerce.api import identifiers


class PageNumberPagination(pagination.PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 100
    last_page_strings = ()  # `page` is a number, as the schema says

    def _parameter(self, request: Request, name: str, *, maximum: int | None) -> int | None:
        value = request.query_params.get(name)
        if value is None:
            return None
        try:
            return identifiers.parse_int(value, minimum=1, maximum=maximum)
        except identifiers.InvalidNumber as exc:
            raise ValidationError({name: [str(exc)]}) from None

    def get_page_size(self, request: Request) -> int:
        size = self._parameter(request, self.page_size_query_param, maximum=self.max_page_size)
        return size if size is not None else int(self.page_size or 0)

    def get_page_number(self, request: Request, paginator: Any) -> int:
        number = self._parameter(request, self.page_query_param, maximum=None)
        return number if number is not None else 1

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            {
                "name": self.page_query_param,
                "required": False,
                "in": "query",
                "description": "A page number; one past the last page is a 404.",
                "schema": {"type": "integer", "minimum": 1},
            },
            {
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "description": f"Results per page (default {self.page_size}).",
                "schema": {"type": "integer", "minimum": 1, "maximum": self.max_page_size},
            },
        ]

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        def link(page: int) -> dict[str, Any]:
            return {
                "type": "string",
                "nullable": True,
                "format": "uri-reference",
                "description": "Path and query of the page (relative to this server).",
                "example": f"/api/products/?{self.page_query_param}={page}",
            }

        return {
            "type": "object",
            "required": ["count", "next", "previous", "results"],
            "properties": {
                "count": {"type": "integer", "minimum": 0, "example": 123},
                "next": link(4),
                "previous": link(2),
                "results": schema,
            },
        }

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> Any:
        self.link_query_params: tuple[str, ...] | None = getattr(view, "link_query_params", None)
        return super().paginate_queryset(queryset, request, view)

    def _base_url(self) -> str:
        if self.link_query_params is None:
            return self.request.get_full_path()
        params = self.request.query_params
        query = QueryDict(mutable=True)
        for name in self.link_query_params:
            if name in params:
                query[name] = params[name]
        return f"{self.request.path}?{query.urlencode()}" if query else self.request.path

    def get_next_link(self) -> str | None:
        if not self.page.has_next():
            return None
        return replace_query_param(
            self._base_url(), self.page_query_param, self.page.next_page_number()
        )

    def get_previous_link(self) -> str | None:
        if not self.page.has_previous():
            return None
        url = self._base_url()
        number = self.page.previous_page_number()
        if number == 1:
            return remove_query_param(url, self.page_query_param)
        return replace_query_param(url, self.page_query_param, number)
