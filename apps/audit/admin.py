"""The audit log in the admin: read, filtered and searched; never added, changed or deleted."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from apps.audit.models import AuditEvent


def _shown(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def changes_table(changes: dict[str, Any]) -> SafeString:
    """{field: {"before": x, "after": y}} as a table of field, before and after."""
    if not changes:
        return format_html("{}", "—")
    rows = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
        (
            (name, _shown(pair.get("before")), _shown(pair.get("after")))
            for name, pair in sorted(changes.items())
            if isinstance(pair, dict)
        ),
    )
    return format_html(
        '<table class="audit-changes"><thead><tr><th>field</th><th>before</th>'
        "<th>after</th></tr></thead><tbody>{}</tbody></table>",
        rows,
    )


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Who changed what. Filter by action, source, object type, actor and date; search by
    object id, object or actor. Read-only for everyone, superusers included."""

    list_display = (
        "occurred_at",
        "actor_label",
        "source",
        "action",
        "object_type",
        "object_link",
        "changed_fields",
    )
    list_filter = (
        "action",
        "source",
        ("content_type", admin.RelatedOnlyFieldListFilter),
        ("actor", admin.RelatedOnlyFieldListFilter),
        "occurred_at",
    )
    search_fields = ("=object_id", "object_repr", "actor_label", "=request_id")
    date_hierarchy = "occurred_at"
    list_select_related = ("content_type",)
    show_full_result_count = False
    fields = (
        "occurred_at",
        "actor",
        "actor_label",
        "source",
        "action",
        "object_type",
        "object_link",
        "changes_readable",
        "request_id",
    )
    readonly_fields = fields

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        # PostgreSQL refuses NUL in text, even in a WHERE clause: a filter or search holding
        # one is a bad request, not a database error.
        if any("\x00" in value for values in request.GET.lists() for value in values[1]):
            return HttpResponseBadRequest("A filter or search term holds a NUL character.")
        return super().changelist_view(request, extra_context)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="object type", ordering="content_type__model")
    def object_type(self, obj: AuditEvent) -> str:
        return f"{obj.content_type.app_label}.{obj.content_type.model}"

    @admin.display(description="object")
    def object_link(self, obj: AuditEvent) -> SafeString | str:
        """The object's admin page when the admin has one and the object still exists."""
        label = f"{obj.object_repr} (#{obj.object_id})"
        model = obj.content_type.model_class()
        if model is None or obj.action == "delete" or not admin.site.is_registered(model):
            return label
        try:
            url = reverse(
                f"admin:{obj.content_type.app_label}_{obj.content_type.model}_change",
                args=[obj.object_id],
            )
        except NoReverseMatch:
            return label
        return format_html('<a href="{}">{}</a>', url, label)

    @admin.display(description="fields")
    def changed_fields(self, obj: AuditEvent) -> str:
        return ", ".join(sorted(obj.changes)) if isinstance(obj.changes, dict) else ""

    @admin.display(description="changes")
    def changes_readable(self, obj: AuditEvent) -> SafeString:
        return changes_table(obj.changes if isinstance(obj.changes, dict) else {})
