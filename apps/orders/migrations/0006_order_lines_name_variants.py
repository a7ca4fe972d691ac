"""Order lines name the variant bought (catalog.0006 gave each product's variant the
product's id, so a line's product id is its variant id), and orders record their
destination country for warehouse allocation."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0006_variants_attributes_media"),
        ("orders", "0005_order_event_created_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="order",
            name="shipping_country",
            field=models.CharField(
                blank=True,
                help_text="ISO code of the destination; stock comes from the warehouses serving it.",
                max_length=2,
            ),
        ),
        migrations.AddField(
            model_name="orderitem",
            name="variant_name",
            field=models.CharField(blank=True, max_length=200),
        ),
        migrations.RemoveConstraint(model_name="orderitem", name="orders_item_one_per_product"),
        migrations.AddField(
            model_name="orderitem",
            name="variant",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="order_items",
                to="catalog.productvariant",
            ),
        ),
        migrations.RunSQL(
            "UPDATE orders_orderitem SET variant_id = product_id", migrations.RunSQL.noop
        ),
        migrations.AlterField(
            model_name="orderitem",
            name="variant",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="order_items",
                to="catalog.productvariant",
            ),
        ),
        migrations.RemoveField(model_name="orderitem", name="product"),
        migrations.AddConstraint(
            model_name="orderitem",
            constraint=models.UniqueConstraint(
                fields=("order", "variant"), name="orders_item_one_per_variant"
            ),
        ),
    ]
