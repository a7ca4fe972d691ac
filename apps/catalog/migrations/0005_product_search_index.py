"""A stored full-text document for `?search=` on the product list, with a GIN index.

The document is the name and SKU cut into words at every run of non-alphanumerics, in the
`simple` configuration (no stemming, no stop words: product names are not prose). Word
prefixes (`sh:*`) are served by the index too, which the trigram indexes of 0002 cannot do
for terms under three characters.

It is a stored generated column (PostgreSQL keeps it current on every write), not an
expression index, for the first page in name order: when few products match but the
planner expects many, PostgreSQL walks the name index and tests each row, and computing the
document row by row made that walk take seconds at 100,000 products; reading a stored
document keeps the worst walk to tens of milliseconds. The model does not declare the
column: only the list query reads it (apps.catalog.selectors.SEARCH_DOCUMENT_SQL).
SQLite (embedded mode) skips all this and searches by substring.
"""

from django.db import migrations

FORWARD = [
    "ALTER TABLE catalog_product ADD COLUMN IF NOT EXISTS search_document tsvector "
    "GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, regexp_replace("
    "((name)::text || ' ' || (sku)::text), '[^[:alnum:]]+', ' ', 'g'))) STORED",
    "CREATE INDEX IF NOT EXISTS catalog_product_search ON catalog_product "
    "USING gin (search_document)",
]
BACKWARD = [
    "DROP INDEX IF EXISTS catalog_product_search",
    "ALTER TABLE catalog_product DROP COLUMN IF EXISTS search_document",
]


def _run(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for statement in statements:
            schema_editor.execute(statement, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("catalog", "0004_sku_unique_message")]

    operations = [migrations.RunPython(_run(FORWARD), _run(BACKWARD))]
