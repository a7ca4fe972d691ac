from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "apps.payments"
    label = "payments"
    verbose_name = "Payments"

    def ready(self) -> None:
        from apps.orders import events as order_events
        from apps.payments import tasks  # noqa: F401  registers the tasks in every process
        from apps.payments.services import CHARGE_REQUESTED
        from ecommerce import outbox

        # A placed order is charged; reconciliation and the admin request charges again.
        for topic in (
            order_events.ORDER_PLACED,
            order_events.ORDER_PAYMENT_RETRY_REQUESTED,
            CHARGE_REQUESTED,
        ):
            outbox.register(topic, task="payments.charge_payment", queue="payments")
        # A refund the orders app claimed: payments moves the money and finishes the order.
        outbox.register(
            order_events.ORDER_REFUND_REQUESTED, task="payments.refund_order", queue="payments"
        )
