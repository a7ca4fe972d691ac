"""Page-number pagination with a client-chosen, bounded page size.

Links are relative (path and query only): a page rendered for one Host header can be
cached and served to every client without leaking or trusting that header.
"""

from __future__ import annotations

from rest_framework import pagination
from rest_framework.utils.urls import remove_query_param, replace_query_param


class PageNumberPagination(pagination.PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 100

    def get_next_link(self) -> str | None:
        if not self.page.has_next():
            return None
        url = self.request.get_full_path()
        return replace_query_param(url, self.page_query_param, self.page.next_page_number())

    def get_previous_link(self) -> str | None:
        if not self.page.has_previous():
            return None
        url = self.request.get_full_path()
        number = self.page.previous_page_number()
        if number == 1:
            return remove_query_param(url, self.page_query_param)
        return replace_query_param(url, self.page_query_param, number)
