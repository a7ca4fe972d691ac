"""Signals the catalog sends to the apps above it, which it may not import.

`initial_stock` is sent inside the transaction that creates variants with an opening stock
(`VariantSpec.initial_stock`); apps.inventory receives it and restocks the default
warehouse in that same transaction, so a product never exists without the stock it was
created with.
"""

from django.dispatch import Signal

# kwargs: quantities ({variant id: units > 0}), actor (the user, or None)
initial_stock = Signal()
