"""Create the three tax classes every store starts with: standard, reduced and zero.

Product types name their class by slug ("standard" when none), so these slugs must exist
before any rate is entered.
"""

from django.db import migrations

TAX_CLASSES = (
    ("standard", "Standard rate"),
    ("reduced", "Reduced rate"),
    ("zero", "Zero rate"),
)


def create_tax_classes(apps, schema_editor):
    TaxClass = apps.get_model("pricing", "TaxClass")
    for slug, name in TAX_CLASSES:
        TaxClass.objects.get_or_create(slug=slug, defaults={"name": name})


def remove_tax_classes(apps, schema_editor):
    TaxClass = apps.get_model("pricing", "TaxClass")
    TaxClass.objects.filter(slug__in=[slug for slug, _ in TAX_CLASSES], rates__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("pricing", "0001_initial")]

    operations = [migrations.RunPython(create_tax_classes, remove_tax_classes)]
