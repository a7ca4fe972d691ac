from django.apps import AppConfig


class OutboxConfig(AppConfig):
    name = "ecommerce.outbox"
    label = "outbox"
    verbose_name = "Outbox"
