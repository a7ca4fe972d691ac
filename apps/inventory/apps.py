from django.apps import AppConfig


class InventoryConfig(AppConfig):
    name = "apps.inventory"
    label = "inventory"
    verbose_name = "Inventory"

    def ready(self) -> None:
        from apps.catalog import signals
        from apps.inventory import receivers

        signals.initial_stock.connect(
            receivers.receive_initial_stock, dispatch_uid="inventory.initial_stock"
        )
