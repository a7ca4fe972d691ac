"""`python -m schemathesis.cli`, with `ast.parse` taken by one thread at a time.

Hypothesis parses a lambda's module source to describe a strategy, and schemathesis runs
its workers as threads of one process. On CPython 3.11 the AST constructor keeps its
recursion depth in interpreter-wide state, so two threads parsing at once can fail with
"SystemError: AST constructor recursion depth mismatch" (python/cpython#106905): reported
by schemathesis as a "Runtime Error" of whatever operation it was generating cases for,
it says nothing about the API under test.
"""

from __future__ import annotations

import ast
import runpy
import threading
from typing import Any

_lock = threading.Lock()
_parse = ast.parse


def _parse_one_at_a_time(*args: Any, **kwargs: Any) -> Any:
    with _lock:
        return _parse(*args, **kwargs)


if __name__ == "__main__":
    ast.parse = _parse_one_at_a_time  # type: ignore[assignment]
    runpy.run_module("schemathesis.cli", run_name="__main__", alter_sys=True)
