"""Orders keep their price breakdown (addresses, shipping, discounts, taxes, voucher) and
their payment hold (`expires_at`).

Existing orders were priced without discount or tax: their net amounts equal their totals,
which the migration copies before the NOT NULL and the CHECKs that tie them together. Their
`expires_at` stays null: the expiry sweep reads created_at + the timeout for them.
"""

from decimal import Decimal

from django.db import migrations, models

ZERO = Decimal("0.00")


def money(**kwargs):
    return models.DecimalField(decimal_places=2, max_digits=12, **kwargs)


def defaulted_money(**kwargs):
    return money(default=ZERO, db_default=ZERO, **kwargs)


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0007_order_payment_token"),
    ]

    operations = [
        migrations.AddField(
            model_name="order",
            name="email",
            field=models.EmailField(blank=True, db_default="", default="", max_length=254),
        ),
        migrations.AddField(
            model_name="order",
            name="shipping_address",
            field=models.JSONField(blank=True, db_default={}, default=dict),
        ),
        migrations.AddField(
            model_name="order",
            name="billing_address",
            field=models.JSONField(blank=True, db_default={}, default=dict),
        ),
        migrations.AddField(
            model_name="order",
            name="discount_total",
            field=defaulted_money(help_text="Promotions and voucher, lines and shipping."),
        ),
        migrations.AddField(
            model_name="order",
            name="shipping_method_name",
            field=models.CharField(blank=True, db_default="", default="", max_length=200),
        ),
        migrations.AddField(
            model_name="order",
            name="shipping_price",
            field=defaulted_money(help_text="Shipping as entered, before any discount."),
        ),
        migrations.AddField(
            model_name="order",
            name="shipping_tax",
            field=defaulted_money(),
        ),
        migrations.AddField(
            model_name="order",
            name="tax_total",
            field=defaulted_money(help_text="Lines and shipping."),
        ),
        migrations.AddField(
            model_name="order",
            name="total_net",
            field=money(null=True, help_text="The total without tax."),
        ),
        migrations.AddField(
            model_name="order",
            name="prices_include_tax",
            field=models.BooleanField(
                db_default=True,
                default=True,
                help_text="Whether prices were entered with tax included (gross) or without (net).",
            ),
        ),
        migrations.AddField(
            model_name="order",
            name="voucher_code",
            field=models.CharField(blank=True, db_default="", default="", max_length=64),
        ),
        migrations.AddField(
            model_name="order",
            name="tax_breakdown",
            field=models.JSONField(blank=True, db_default=[], default=list),
        ),
        migrations.AddField(
            model_name="order",
            name="expires_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="orderitem",
            name="discount",
            field=defaulted_money(help_text="Promotion and voucher."),
        ),
        migrations.AddField(
            model_name="orderitem",
            name="promotion_name",
            field=models.CharField(blank=True, db_default="", default="", max_length=200),
        ),
        migrations.AddField(
            model_name="orderitem",
            name="tax_rate",
            field=models.DecimalField(
                db_default=ZERO,
                decimal_places=2,
                default=ZERO,
                help_text="Percent.",
                max_digits=5,
            ),
        ),
        migrations.AddField(
            model_name="orderitem",
            name="tax",
            field=defaulted_money(),
        ),
        migrations.AddField(
            model_name="orderitem",
            name="total_net",
            field=money(null=True, help_text="After discounts, without tax."),
        ),
        # Untaxed and undiscounted until now: net is what was charged.
        migrations.RunSQL(
            [
                "UPDATE orders_order SET total_net = total WHERE total_net IS NULL",
                "UPDATE orders_orderitem SET total_net = line_total WHERE total_net IS NULL",
            ],
            migrations.RunSQL.noop,
        ),
        migrations.AlterField(
            model_name="order",
            name="total_net",
            field=money(help_text="The total without tax."),
        ),
        migrations.AlterField(
            model_name="orderitem",
            name="total_net",
            field=money(help_text="After discounts, without tax."),
        ),
        migrations.AddIndex(
            model_name="order",
            index=models.Index(fields=["status", "expires_at"], name="orders_status_expires_idx"),
        ),
        migrations.AddConstraint(
            model_name="order",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    discount_total__gte=0,
                    shipping_price__gte=0,
                    shipping_tax__gte=0,
                    subtotal__gte=0,
                    tax_total__gte=0,
                    total_net__gte=0,
                ),
                name="orders_amounts_gte_0",
            ),
        ),
        migrations.AddConstraint(
            model_name="order",
            constraint=models.CheckConstraint(
                condition=models.Q(total=models.F("total_net") + models.F("tax_total")),
                name="orders_total_is_net_plus_tax",
            ),
        ),
        migrations.AddConstraint(
            model_name="orderitem",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    discount__gte=0,
                    tax__gte=0,
                    tax_rate__gte=0,
                    tax_rate__lte=100,
                    total_net__gte=0,
                    unit_price__gte=0,
                ),
                name="orders_item_amounts_valid",
            ),
        ),
        migrations.AddConstraint(
            model_name="orderitem",
            constraint=models.CheckConstraint(
                condition=models.Q(line_total=models.F("total_net") + models.F("tax")),
                name="orders_item_total_is_net_plus_tax",
            ),
        ),
    ]
