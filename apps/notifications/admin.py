"""Notifications admin (read-only, with a resend action) and webhook endpoints (no secrets).

The actions need the model's change permission (admins hold it; support only views), and
each one leaves a LogEntry for the object's History page.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.notifications import services
from apps.notifications.models import Notification, WebhookEndpoint
from ecommerce.errors import DomainError


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("id", "event", "channel", "recipient", "status", "attempts", "created_at")
    list_filter = ("status", "channel", "event")
    search_fields = ("recipient__email", "subject", "public_id")
    date_hierarchy = "created_at"
    list_select_related = ("recipient",)
    fields = (
        "public_id",
        "event",
        "subject",
        "channel",
        "recipient",
        "endpoint",
        "status",
        "attempts",
        "last_error",
        "context",
        "created_at",
        "updated_at",
        "sent_at",
    )
    readonly_fields = fields
    actions = ("resend",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Resend selected notifications", permissions=["change"])
    def resend(self, request: HttpRequest, queryset: QuerySet[Notification]) -> None:
        resent, failed = 0, []
        for notification in queryset:
            try:
                services.resend_notification(notification_id=notification.pk, by=request.user)
            except DomainError as exc:
                failed.append(f"#{notification.pk}: {exc.detail}")
                continue
            resent += 1
            self.log_change(request, notification, "Queued again")
        if resent:
            self.message_user(request, f"Queued {resent} notification(s) again.", messages.SUCCESS)
        for failure in failed:
            self.message_user(request, failure, messages.ERROR)


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ("id", "url", "owner", "active", "consecutive_failures", "disabled_at")
    list_filter = ("active",)
    search_fields = ("url", "owner__email")
    list_select_related = ("owner",)
    # The secret is deliberately absent: it is shown to its owner once, never here.
    fields = (
        "owner",
        "url",
        "description",
        "events",
        "active",
        "consecutive_failures",
        "disabled_at",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields
    actions = ("enable", "disable")

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Endpoints get their secret from the API, which shows it to the owner once.
        return False

    def _set_active(
        self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint], active: bool
    ) -> None:
        for endpoint in queryset.select_related("owner"):
            services.update_webhook_endpoint(
                owner=endpoint.owner, endpoint_id=endpoint.pk, active=active
            )
            self.log_change(request, endpoint, "Enabled" if active else "Disabled")
        state = "Enabled" if active else "Disabled"
        self.message_user(request, f"{state} {queryset.count()} endpoint(s).", messages.SUCCESS)

    @admin.action(description="Enable selected endpoints", permissions=["change"])
    def enable(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        self._set_active(request, queryset, True)

    @admin.action(description="Disable selected endpoints", permissions=["change"])
    def disable(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        self._set_active(request, queryset, False)
