"""Stock and its ledger now live in `apps.inventory` (inventory.0001 copied them), SKUs on
variants (catalog.0006; a product keeps price and currency as its lowest variant price, to
sort lists by). Drop SKU and stock from products, with the search column and indexes that
read the SKU (search is rebuilt over products and variants by a later migration)."""

from django.db import migrations, models

import apps.catalog.models

DROP_POSTGRES_EXTRAS = [
    "DROP INDEX IF EXISTS catalog_product_search",
    "ALTER TABLE catalog_product DROP COLUMN IF EXISTS search_document",
    "DROP INDEX IF EXISTS catalog_product_sku_trgm",
    "DROP TRIGGER IF EXISTS catalog_stockmovement_append_only ON catalog_stockmovement",
    "DROP FUNCTION IF EXISTS catalog_stockmovement_append_only()",
]


# Backwards, after the SKU column and the old ledger table are back: what 0002 and 0005 made,
# so a database taken back to 0006 has the schema it had before (and the forward run can be
# tested on it). The rows themselves are not put back.
RESTORE_POSTGRES_EXTRAS = [
    "CREATE INDEX IF NOT EXISTS catalog_product_sku_trgm "
    "ON catalog_product USING gin (UPPER(sku) gin_trgm_ops)",
    "ALTER TABLE catalog_product ADD COLUMN IF NOT EXISTS search_document tsvector "
    "GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, regexp_replace("
    "((name)::text || ' ' || (sku)::text), '[^[:alnum:]]+', ' ', 'g'))) STORED",
    "CREATE INDEX IF NOT EXISTS catalog_product_search ON catalog_product "
    "USING gin (search_document)",
    """
    CREATE OR REPLACE FUNCTION catalog_stockmovement_append_only() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION 'catalog_stockmovement is append-only (% refused)', TG_OP;
    END;
    $$ LANGUAGE plpgsql
    """,
    "DROP TRIGGER IF EXISTS catalog_stockmovement_append_only ON catalog_stockmovement",
    "CREATE TRIGGER catalog_stockmovement_append_only "
    "BEFORE DELETE OR UPDATE OF product_id, delta, balance, reason, reference, note, created_at "
    "ON catalog_stockmovement "
    "FOR EACH ROW EXECUTE FUNCTION catalog_stockmovement_append_only()",
]


def _on_postgresql(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for statement in statements:
            schema_editor.execute(statement, params=None)

    return run


def forget_the_old_ledger_model(apps, schema_editor):
    """Delete the old ledger's content type, and with it the permissions on it that roles
    were granted (catalog.0003); inventory.0002 grants those on the new ledger."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label="catalog", model="stockmovement").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("catalog", "0006_variants_attributes_media"),
        ("inventory", "0001_initial"),
        ("orders", "0006_order_lines_name_variants"),
    ]

    operations = [
        migrations.RunPython(
            _on_postgresql(DROP_POSTGRES_EXTRAS), _on_postgresql(RESTORE_POSTGRES_EXTRAS)
        ),
        migrations.DeleteModel(name="StockMovement"),
        migrations.RemoveConstraint(model_name="product", name="catalog_product_sku_ci_unique"),
        migrations.RemoveConstraint(model_name="product", name="catalog_stock_gte_0"),
        migrations.AlterField(
            model_name="product",
            name="price",
            field=models.DecimalField(decimal_places=2, editable=False, max_digits=12),
        ),
        migrations.AlterField(
            model_name="product",
            name="currency",
            field=models.CharField(
                default=apps.catalog.models.store_currency, editable=False, max_length=3
            ),
        ),
        migrations.RemoveField(model_name="product", name="sku"),
        migrations.RemoveField(model_name="product", name="stock"),
        migrations.RunPython(forget_the_old_ledger_model, migrations.RunPython.noop),
    ]
