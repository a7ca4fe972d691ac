"""Notification list filters: a status, channel or event the API does not know is a 400."""

from __future__ import annotations

import django_filters

from apps.notifications.models import (
    Notification,
    NotificationChannel,
    NotificationEvent,
    NotificationStatus,
)
from ecommerce.api.filters import FilterSet


class NotificationFilter(FilterSet):
    status = django_filters.ChoiceFilter(choices=NotificationStatus.choices)
    channel = django_filters.ChoiceFilter(choices=NotificationChannel.choices)
    event = django_filters.ChoiceFilter(choices=NotificationEvent.choices)

    class Meta:
        model = Notification
        fields = ("status", "channel", "event")
