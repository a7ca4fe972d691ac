"""Returns of fulfilled orders (Return, ReturnLine), the units they hold per order line
(OrderItem.quantity_returned, 0 for every existing line) and history rows naming a return."""

import django.db.models.deletion
import uuid
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0010_product_type_tax_class"),
        ("inventory", "0003_stock_reason_return"),
        ("orders", "0010_order_authorization_and_action"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Return",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True, db_index=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                ("public_id", models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("requested", "Requested"),
                            ("approved", "Approved"),
                            ("rejected", "Rejected"),
                            ("received", "Received"),
                            ("refunded", "Refunded"),
                        ],
                        default="requested",
                        max_length=12,
                    ),
                ),
                (
                    "reason",
                    models.CharField(help_text="Why the customer sends it back.", max_length=500),
                ),
                ("staff_note", models.CharField(blank=True, max_length=500)),
                ("decided_at", models.DateTimeField(blank=True, null=True)),
                ("received_at", models.DateTimeField(blank=True, null=True)),
                (
                    "refunded_amount",
                    models.DecimalField(
                        blank=True,
                        decimal_places=2,
                        help_text="What was refunded for it (set when refunded).",
                        max_digits=12,
                        null=True,
                    ),
                ),
                ("refunded_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "permissions": [
                    ("approve_return", "Can approve or reject a return"),
                    ("receive_return", "Can receive a return's goods (restock or write off)"),
                    ("refund_return", "Can refund a received return"),
                ],
            },
        ),
        migrations.CreateModel(
            name="ReturnLine",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("quantity", models.PositiveIntegerField()),
                (
                    "disposition",
                    models.CharField(
                        blank=True,
                        choices=[("restock", "Restocked"), ("write_off", "Written off")],
                        default="",
                        max_length=10,
                    ),
                ),
                ("write_off_reason", models.CharField(blank=True, max_length=255)),
            ],
            options={
                "ordering": ("pk",),
            },
        ),
        migrations.AddField(
            model_name="orderitem",
            name="quantity_returned",
            field=models.PositiveIntegerField(db_default=0, default=0, editable=False),
        ),
        migrations.AddConstraint(
            model_name="orderitem",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("quantity_returned__gte", 0),
                    ("quantity_returned__lte", models.F("quantity_fulfilled")),
                ),
                name="orders_item_returned_lte_bought",
            ),
        ),
        migrations.AddField(
            model_name="return",
            name="decided_by",
            field=models.ForeignKey(
                blank=True,
                help_text="Who approved or rejected it.",
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="return",
            name="order",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="returns",
                to="orders.order",
            ),
        ),
        migrations.AddField(
            model_name="return",
            name="received_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="return",
            name="requested_by",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="orderevent",
            name="order_return",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="events",
                to="orders.return",
            ),
        ),
        migrations.AddField(
            model_name="returnline",
            name="item",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="return_lines",
                to="orders.orderitem",
            ),
        ),
        migrations.AddField(
            model_name="returnline",
            name="order_return",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="lines",
                to="orders.return",
            ),
        ),
        migrations.AddField(
            model_name="returnline",
            name="warehouse",
            field=models.ForeignKey(
                blank=True,
                help_text="Where restocked units went.",
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="inventory.warehouse",
            ),
        ),
        migrations.AddIndex(
            model_name="return",
            index=models.Index(fields=["order", "created_at"], name="orders_return_order_idx"),
        ),
        migrations.AddIndex(
            model_name="return",
            index=models.Index(fields=["status", "created_at"], name="orders_return_status_idx"),
        ),
        migrations.AddConstraint(
            model_name="return",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("status__in", ["requested", "approved", "rejected", "received", "refunded"])
                ),
                name="orders_return_status_valid",
            ),
        ),
        migrations.AddConstraint(
            model_name="return",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("refunded_amount__isnull", True), ("refunded_amount__gte", 0), _connector="OR"
                ),
                name="orders_return_refunded_gte_0",
            ),
        ),
        migrations.AddConstraint(
            model_name="return",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("status", "refunded"), _negated=True),
                    ("refunded_amount__isnull", False),
                    _connector="OR",
                ),
                name="orders_return_refunded_has_amount",
            ),
        ),
        migrations.AddConstraint(
            model_name="returnline",
            constraint=models.CheckConstraint(
                condition=models.Q(("quantity__gt", 0)), name="orders_returnline_qty_gt_0"
            ),
        ),
        migrations.AddConstraint(
            model_name="returnline",
            constraint=models.UniqueConstraint(
                fields=("order_return", "item"), name="orders_returnline_one_per_item"
            ),
        ),
        migrations.AddConstraint(
            model_name="returnline",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(
                        ("disposition", ""), ("warehouse__isnull", True), ("write_off_reason", "")
                    ),
                    models.Q(("disposition", "restock"), ("warehouse__isnull", False)),
                    models.Q(
                        ("disposition", "write_off"),
                        ("warehouse__isnull", True),
                        models.Q(("write_off_reason", ""), _negated=True),
                    ),
                    _connector="OR",
                ),
                name="orders_returnline_disposition_valid",
            ),
        ),
    ]
