"""Notifications admin (read-only, with a resend action) and webhook endpoints (no secrets).

The actions need the model's change permission (admins hold it; support only views), and
each one leaves a LogEntry for the object's History page and says, per object it left
alone, why. Staff read notifications by the recipient's email and the order's public id,
never by internal ids; an order's notifications are also shown on its admin page.

Webhook endpoints are their owners': the admin shows them only to staff holding
`notifications.view_all_webhook_endpoints` (the admin role). Deleting one keeps its
deliveries, which keep the URL they were sent to.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from apps.notifications import services
from apps.notifications.models import (
    Notification,
    NotificationChannel,
    WebhookEndpoint,
)
from apps.orders.admin import ViewOnlyPage, add_order_section, order_admin_url
from apps.orders.models import Order
from ecommerce.errors import DomainError

ORDER_SUBJECT = "order:"
VIEW_ALL_ENDPOINTS = "notifications.view_all_webhook_endpoints"


def order_pk_of(notification: Notification) -> int | None:
    """The internal id of the order a notification is about, from its subject."""
    prefix, _, rest = notification.subject.partition(":")
    if f"{prefix}:" != ORDER_SUBJECT or not rest.isdigit():
        return None
    return int(rest)


def order_public_id_of(notification: Notification) -> str | None:
    """The order's public id as the notification's data recorded it (no query)."""
    order = (notification.context or {}).get("order")
    return str(order["id"]) if isinstance(order, dict) and order.get("id") else None


def destination_of(notification: Notification) -> str:
    """Where it goes: the recipient's email, or the webhook's URL (kept once deleted)."""
    if notification.channel == NotificationChannel.EMAIL:
        return notification.recipient.email
    if notification.endpoint is not None:
        return notification.endpoint.url
    return f"{notification.endpoint_url} (endpoint deleted)"


def about(notification: Notification) -> SafeString | str:
    """What the notification is about, as staff name it: the order by its public id (a
    link to its page), the account by its email; never `order:<internal id>`."""
    order_pk = order_pk_of(notification)
    if order_pk is not None:
        label = order_public_id_of(notification) or "(no public id recorded)"
        return format_html('Order <a href="{}">{}</a>', order_admin_url(order_pk), label)
    kind = notification.subject.partition(":")[0]
    if kind == "refund":
        return f"Refund of order {order_public_id_of(notification) or '(unknown)'}"
    if kind == "user":
        return f"Account {notification.recipient.email}"
    if kind == "return":
        order_id = order_public_id_of(notification)
        return f"Return {notification.subject.partition(':')[2]} of order {order_id}"
    if kind == "ping":
        return "Webhook test"
    if kind == "webhook":
        endpoint = notification.context.get("endpoint", {}) if notification.context else {}
        url = endpoint.get("url") if isinstance(endpoint, dict) else None
        return f"Webhook endpoint {url}" if url else "A webhook endpoint"
    return notification.subject


def readable(value: Any) -> SafeString:
    """JSON data as nested tables and lists, keys as staff would read them."""
    if isinstance(value, dict):
        if not value:
            return format_html("<em>{}</em>", "none")
        return format_html(
            "<table>{}</table>",
            format_html_join(
                "",
                "<tr><th>{}</th><td>{}</td></tr>",
                ((str(key).replace("_", " "), readable(item)) for key, item in value.items()),
            ),
        )
    if isinstance(value, list):
        if not value:
            return format_html("<em>{}</em>", "none")
        return format_html(
            "<ol>{}</ol>", format_html_join("", "<li>{}</li>", ((readable(i),) for i in value))
        )
    if value is None or value == "":
        return format_html("<em>{}</em>", "none")
    if isinstance(value, bool):
        return format_html("{}", "yes" if value else "no")
    return format_html("{}", value)


@admin.register(Notification)
class NotificationAdmin(ViewOnlyPage):
    list_display = (
        "created_at",
        "event",
        "channel",
        "to",
        "about",
        "status",
        "attempts",
    )
    list_filter = ("status", "channel", "event")
    search_fields = ("recipient__email", "subject", "public_id", "context__order__id")
    date_hierarchy = "created_at"
    list_select_related = ("recipient", "endpoint")
    fields = (
        "public_id",
        "event",
        "about",
        "channel",
        "to",
        "status",
        "attempts",
        "last_error",
        "data",
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

    @admin.display(description="To", ordering="recipient__email")
    def to(self, notification: Notification) -> str:
        return destination_of(notification)

    @admin.display(description="About", ordering="subject")
    def about(self, notification: Notification) -> SafeString | str:
        return about(notification)

    @admin.display(description="Data")
    def data(self, notification: Notification) -> SafeString:
        return readable(notification.context)

    @admin.action(description="Resend selected notifications", permissions=["change"])
    def resend(self, request: HttpRequest, queryset: QuerySet[Notification]) -> None:
        resent: list[Notification] = []
        skipped: list[str] = []
        for notification in queryset.select_related("recipient", "endpoint").order_by("pk"):
            name = f"Notification {notification.public_id} ({notification.get_event_display()})"
            if notification.channel == NotificationChannel.WEBHOOK and (
                notification.endpoint is None
            ):
                skipped.append(f"{name}: its webhook endpoint was deleted, nowhere to send it.")
                continue
            try:
                services.resend_notification(notification_id=notification.pk, by=request.user)
            except DomainError as exc:
                skipped.append(f"{name}: {exc.detail}")
                continue
            resent.append(notification)
            self.log_change(request, notification, "Queued again")
        if resent:
            names = ", ".join(f"{n.public_id} to {destination_of(n)}" for n in resent)
            self.message_user(
                request, f"Queued {len(resent)} notification(s) again: {names}.", messages.SUCCESS
            )
        elif skipped:
            self.message_user(request, "Nothing was queued again.", messages.WARNING)
        for reason in skipped:
            self.message_user(request, reason, messages.ERROR)


def order_notifications(order: Order) -> SafeString | str:
    """The order's notifications, for its admin page: event, channel, where, how it went."""
    rows = list(
        Notification.objects.filter(
            Q(subject=f"{ORDER_SUBJECT}{order.pk}")
            # A refund's notifications are about the refund, with the order in their data.
            | Q(subject__startswith="refund:", context__order__id=str(order.public_id))
        )
        .select_related("recipient", "endpoint")
        .order_by("created_at", "pk")
    )
    if not rows:
        return "None"
    return format_html(
        "<table><thead><tr><th>Event</th><th>Channel</th><th>To</th><th>Status</th>"
        "<th>Attempts</th><th>Last error</th><th>Sent</th></tr></thead><tbody>{}</tbody>"
        "</table>",
        format_html_join(
            "",
            '<tr><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>'
            "<td>{}</td><td>{}</td></tr>",
            (
                (
                    reverse("admin:notifications_notification_change", args=[n.pk]),
                    n.get_event_display(),
                    n.get_channel_display(),
                    destination_of(n),
                    n.get_status_display(),
                    n.attempts,
                    n.last_error or "-",
                    n.sent_at or "-",
                )
                for n in rows
            ),
        ),
    )


add_order_section("Notifications", order_notifications)


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ViewOnlyPage):
    """Read-only: the actions change an endpoint, not a form."""

    list_display = ("url", "owner", "active", "consecutive_failures", "disabled_at")
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

    # Every permission also needs the one that shows others' endpoints at all.

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm(VIEW_ALL_ENDPOINTS) and super().has_view_permission(
            request, obj
        )

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm(VIEW_ALL_ENDPOINTS) and super().has_change_permission(
            request, obj
        )

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm(VIEW_ALL_ENDPOINTS) and super().has_delete_permission(
            request, obj
        )

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(VIEW_ALL_ENDPOINTS) and super().has_module_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Endpoints get their secret from the API, which shows it to the owner once.
        return False

    # --- Deleting keeps the delivery history ----------------------------------------------

    def delete_model(self, request: HttpRequest, obj: WebhookEndpoint) -> None:
        services.delete_webhook_endpoint(owner=obj.owner, endpoint_id=obj.pk)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        for endpoint in queryset.select_related("owner"):
            services.delete_webhook_endpoint(owner=endpoint.owner, endpoint_id=endpoint.pk)

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        # The confirmation says how many deliveries stay (templates/admin/notifications/
        # webhookendpoint/delete_confirmation.html).
        kept = (
            Notification.objects.filter(endpoint_id=object_id).count() if object_id.isdigit() else 0
        )
        extra_context = {**(extra_context or {}), "kept_notifications": kept}
        return super().delete_view(request, object_id, extra_context)

    # --- Actions ---------------------------------------------------------------------------

    def _set_active(
        self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint], active: bool
    ) -> None:
        state = "enabled" if active else "disabled"
        changed: list[WebhookEndpoint] = []
        skipped: list[str] = []
        for endpoint in queryset.select_related("owner").order_by("pk"):
            if endpoint.active == active:
                skipped.append(
                    f"Endpoint {endpoint.url} ({endpoint.owner.email}): already {state}."
                )
                continue
            services.update_webhook_endpoint(
                owner=endpoint.owner, endpoint_id=endpoint.pk, active=active
            )
            changed.append(endpoint)
            self.log_change(request, endpoint, state.capitalize())
        if changed:
            urls = ", ".join(endpoint.url for endpoint in changed)
            self.message_user(
                request,
                f"{state.capitalize()} {len(changed)} endpoint(s): {urls}.",
                messages.SUCCESS,
            )
        elif skipped:
            self.message_user(
                request, f"Nothing changed: no endpoint was {state}.", messages.WARNING
            )
        for reason in skipped:
            self.message_user(request, reason, messages.INFO if changed else messages.ERROR)

    @admin.action(description="Enable selected endpoints", permissions=["change"])
    def enable(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        self._set_active(request, queryset, True)

    @admin.action(description="Disable selected endpoints", permissions=["change"])
    def disable(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        self._set_active(request, queryset, False)
