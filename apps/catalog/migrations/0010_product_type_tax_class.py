"""`ProductType.tax_class`: the slug of the pricing tax class of the type's products.

Every existing type (and every product without a type) is taxed as "standard".
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0009_product_on_sale"),
    ]

    operations = [
        migrations.AddField(
            model_name="producttype",
            name="tax_class",
            field=models.SlugField(
                default="standard",
                help_text="The tax class of this type's products: the slug of a class under "
                "Pricing > Tax classes (standard, reduced, zero, ...). A class without a rate "
                "for the destination country is taxed at 0%.",
                max_length=32,
            ),
        ),
    ]
