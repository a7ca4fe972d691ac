"""Invariants: statements about the data that must hold whatever failed, checked on demand.

Apps register named checks (`register`, or the `@invariant` decorator) in an `invariants`
module, found at start-up like admin modules; `manage.py check_invariants` runs them all
read-only and exits non-zero on any break. A check receives a `CheckContext` (now, the
`since` bound, the grace period) and returns an `Outcome`: how many things it looked at,
a description of each break, and how many were explained (not breaks, but worth counting).
"""

from ecommerce.invariants.registry import (
    CheckContext,
    CheckResult,
    Outcome,
    invariant,
    register,
    registered,
    run_checks,
)

__all__ = [
    "CheckContext",
    "CheckResult",
    "Outcome",
    "invariant",
    "register",
    "registered",
    "run_checks",
]
