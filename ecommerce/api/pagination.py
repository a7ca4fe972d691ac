"""Page-number pagination with a client-chosen, bounded page size.

Links are relative (path and query only): a page rendered for one Host header can be
cached and served to every client without leaking or trusting that header. A view that
caches its pages names the query parameters that matter in `link_query_params`; links
then carry only those, so one client's stray parameters never reach another's links.
"""

from __future__ import annotations

from typing import Any

from django.http import QueryDict
from rest_framework import pagination
from rest_framework.request import Request
from rest_framework.utils.urls import remove_query_param, replace_query_param


class PageNumberPagination(pagination.PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 100

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
