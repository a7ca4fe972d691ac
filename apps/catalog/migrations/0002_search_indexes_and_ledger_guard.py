"""PostgreSQL extras: trigram indexes for `?search=`, and an append-only stock ledger.

`icontains` compiles to `UPPER(col) LIKE UPPER(%s)`, which a trigram GIN index on
`UPPER(col)` serves. The trigger refuses DELETE and UPDATE (but of the actor) on ledger rows, so the ledger
cannot be rewritten even by hand-written SQL. SQLite (embedded mode) skips both.
"""

from django.db import migrations

FORWARD = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX IF NOT EXISTS catalog_product_name_trgm "
    "ON catalog_product USING gin (UPPER(name) gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS catalog_product_sku_trgm "
    "ON catalog_product USING gin (UPPER(sku) gin_trgm_ops)",
    """
    CREATE OR REPLACE FUNCTION catalog_stockmovement_append_only() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION 'catalog_stockmovement is append-only (% refused)', TG_OP;
    END;
    $$ LANGUAGE plpgsql
    """,
    "DROP TRIGGER IF EXISTS catalog_stockmovement_append_only ON catalog_stockmovement",
    "CREATE TRIGGER catalog_stockmovement_append_only "
    # actor_id is left out so deleting a user can still SET NULL its movements' actor.
    "BEFORE DELETE OR UPDATE OF product_id, delta, balance, reason, reference, note, created_at "
    "ON catalog_stockmovement "
    "FOR EACH ROW EXECUTE FUNCTION catalog_stockmovement_append_only()",
]
BACKWARD = [
    "DROP TRIGGER IF EXISTS catalog_stockmovement_append_only ON catalog_stockmovement",
    "DROP FUNCTION IF EXISTS catalog_stockmovement_append_only()",
    "DROP INDEX IF EXISTS catalog_product_sku_trgm",
    "DROP INDEX IF EXISTS catalog_product_name_trgm",
]


def _run(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for statement in statements:
            schema_editor.execute(statement, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial")]

    operations = [migrations.RunPython(_run(FORWARD), _run(BACKWARD))]
