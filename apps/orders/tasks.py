"""Periodic order jobs: none here. Expiring an unpaid order needs the payment provider's
word first, so the expiry job lives in the payments app (`payments.expire_orders`)."""
