from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "apps.payments"
    label = "payments"
    verbose_name = "Payments"

    def ready(self) -> None:
        from apps.orders import events as order_events
        from apps.orders.models import OrderStatus
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
        # Capture at fulfilment: what shipped is captured, an ended order's hold is voided.
        outbox.register(
            order_events.status_topic(OrderStatus.FULFILLED),
            task="payments.capture_payment",
            queue="payments",
        )
        for ended in (OrderStatus.CANCELLED, OrderStatus.EXPIRED):
            outbox.register(
                order_events.status_topic(ended), task="payments.void_payment", queue="payments"
            )
