from django.apps import AppConfig


class CheckoutConfig(AppConfig):
    name = "apps.checkout"
    label = "checkout"
    verbose_name = "Checkout"

    def ready(self) -> None:
        # tasks: imported to register them in every process
        from apps.checkout import receivers, tasks
        from apps.orders import events as order_events
        from apps.users import signals as users_signals
        from ecommerce import outbox

        # An order that ends unpaid gives its voucher use back, once (release_voucher_use).
        for status in sorted(tasks.RELEASING_STATUSES):
            outbox.register(order_events.status_topic(status), task=tasks.RELEASE_VOUCHER_USE_TASK)
        users_signals.customer_signed_in.connect(
            receivers.merge_cart_at_sign_in, dispatch_uid="checkout.merge_cart_at_sign_in"
        )
