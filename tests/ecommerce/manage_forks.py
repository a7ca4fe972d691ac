"""Run `manage.py` once per command line, each in its own process, paying Django's start once.

Started as a script (`python tests/ecommerce/manage_forks.py`) in the project folder, with a
JSON list of argument lists on stdin. It sets Django up, then forks one child per command
line: the child runs manage.py as `__main__` with that `sys.argv`, its stdout and stderr
going to files of its own, and ends with the exit status the interpreter would give (a
SystemExit's code; 1 and the interpreter's traceback for any other exception). The parent
prints a JSON list of {"returncode", "stdout", "stderr"}, one per command line, in order.

What a fresh `python manage.py ...` does beyond this is start the interpreter and import
Django and the project, the same for every command line: that is the part done once.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import tempfile
from typing import Any


def _run_in_child(argv: list[str], out_fd: int, err_fd: int) -> None:
    """In the forked child: manage.py with `argv`; never returns."""
    os.dup2(out_fd, 1)
    os.dup2(err_fd, 2)
    sys.argv = argv
    code: Any = 0
    try:
        runpy.run_path("manage.py", run_name="__main__")
    except SystemExit as exc:
        code = exc.code
    except BaseException:
        sys.excepthook(*sys.exc_info())
        code = 1
    if code is None:
        code = 0
    elif not isinstance(code, int):  # the interpreter prints a non-integer code, exits 1
        print(code, file=sys.stderr)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run(argvs: list[list[str]]) -> list[dict[str, Any]]:
    results = []
    for argv in argvs:
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                _run_in_child(argv, out.fileno(), err.fileno())
            _, status = os.waitpid(pid, 0)
            out.seek(0)
            err.seek(0)
            results.append(
                {
                    "returncode": os.waitstatus_to_exitcode(status),
                    "stdout": out.read().decode(errors="replace"),
                    "stderr": err.read().decode(errors="replace"),
                }
            )
    return results


def main() -> None:
    argvs = json.load(sys.stdin)
    sys.path.insert(0, os.getcwd())
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ecommerce.settings")
    import django
    from django.core import management

    django.setup()
    management.get_commands()
    print(json.dumps(run(argvs)))


if __name__ == "__main__":
    main()
