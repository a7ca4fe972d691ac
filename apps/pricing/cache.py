"""Cache keys of pricing's read models, and their invalidation on commit.

Only the store's tax setting is cached: every priced cart reads it, it changes perhaps
once a year. Rates, promotions and vouchers are read fresh (one indexed query each), so a
voucher switched off or a promotion ended applies at once.
"""

from __future__ import annotations

from django.db import transaction

from ecommerce import caching

TAX_SETTINGS = "tax_settings"
TAX_SETTINGS_KEY = "pricing:tax_settings"
TAX_SETTINGS_GENERATION_KEY = "pricing:tax_settings:gen"
# A bound on staleness should an invalidation be lost with its process.
TAX_SETTINGS_TTL_SECONDS = 300


def invalidate_tax_settings_on_commit() -> None:
    """Retire the cached tax setting once the change that calls this commits."""
    transaction.on_commit(
        lambda: caching.invalidate(
            name=TAX_SETTINGS,
            generation_keys=[TAX_SETTINGS_GENERATION_KEY],
            keys=[TAX_SETTINGS_KEY],
        )
    )
