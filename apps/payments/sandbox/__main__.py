"""`python -m apps.payments.sandbox --port 8090 [--db PATH] [--host 127.0.0.1]`."""

from apps.payments.sandbox.server import main

main()
