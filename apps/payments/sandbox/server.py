"""The sandbox over HTTP: a threaded WSGI server routing JSON requests to the provider."""

from __future__ import annotations

import argparse
import html
import json
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import parse_qs, urlsplit
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from apps.payments.sandbox.provider import Refused, SandboxProvider, SandboxResponse

logger = logging.getLogger("apps.payments.sandbox")

MAX_BODY_BYTES = 64 * 1024
DEFAULT_PORT = 8090


def default_port(environ: Mapping[str, str]) -> int:
    """The port to bind: PAYMENT_SANDBOX_PORT, else PAYMENT_PROVIDER_URL's, else 8090.

    The app calls the sandbox at PAYMENT_PROVIDER_URL, so the sandbox listens where that
    URL points and changing the URL in `.env` moves both (Procfile, `make sandbox`, compose).
    """
    if explicit := environ.get("PAYMENT_SANDBOX_PORT", "").strip():
        return int(explicit)
    try:
        port = urlsplit(environ.get("PAYMENT_PROVIDER_URL", "").strip()).port
    except ValueError:
        port = None
    return port or DEFAULT_PORT


class SandboxApp:
    """The WSGI application: routes JSON requests to a SandboxProvider."""

    def __init__(self, provider: SandboxProvider) -> None:
        self.provider = provider

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        try:
            response = self._dispatch(environ)
        except Refused as refused:
            response = refused.response
        except Exception:
            logger.exception("sandbox request failed")
            response = Refused(500, "internal_error").response
        if isinstance(response, HtmlPage):
            page = response.html.encode()
            start_response(
                f"{response.status} {HTTPStatus(response.status).phrase}",
                [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(page)))],
            )
            return [page]
        payload = json.dumps(response.body).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))]
        if response.replayed:
            headers.append(("Idempotent-Replayed", "true"))
        start_response(f"{response.status} {HTTPStatus(response.status).phrase}", headers)
        return [payload]

    def close(self) -> None:
        self.provider.close()

    def _dispatch(self, environ: dict[str, Any]) -> SandboxResponse | HtmlPage:
        method = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO", "/").rstrip("/") or "/"
        provider = self.provider
        key = environ.get("HTTP_IDEMPOTENCY_KEY")
        routes: dict[str, dict[str, Callable[[], SandboxResponse | HtmlPage]]] = {
            "/health": {"GET": lambda: SandboxResponse(200, {"status": "ok"})},
            "/v1/charges": {
                "POST": lambda: provider.create_charge(
                    body=_body(environ), idempotency_key=key, base_url=_base_url(environ)
                ),
                "GET": lambda: provider.list_charges(
                    idempotency_key=_query(environ).get("idempotency_key")
                ),
            },
            "/v1/refunds": {
                "POST": lambda: provider.create_refund(body=_body(environ), idempotency_key=key)
            },
            "/_sandbox/config": {
                "GET": provider.get_config,
                "POST": lambda: provider.update_config(body=_body(environ)),
            },
            "/_sandbox/reset": {"POST": provider.reset},
            "/_sandbox/stats": {"GET": provider.stats},
        }
        prefix, _, charge_id = path.rpartition("/")
        if prefix == "/v1/charges" and charge_id:
            routes[path] = {"GET": lambda: provider.get_charge(charge_id=charge_id)}
        parts = path.split("/")
        if len(parts) == 5 and parts[:3] == ["", "v1", "charges"] and parts[3]:
            charge, operation = parts[3], parts[4]
            if operation == "capture":
                routes[path] = {
                    "POST": lambda: provider.capture_charge(
                        charge_id=charge, body=_body(environ), idempotency_key=key
                    )
                }
            elif operation == "void":
                routes[path] = {
                    "POST": lambda: provider.void_charge(charge_id=charge, idempotency_key=key)
                }
            elif operation == "action":
                routes[path] = {
                    "GET": lambda: action_page(provider, charge, environ),
                    "POST": lambda: provider.complete_action(
                        charge_id=charge, outcome=_action(environ)
                    ),
                }
        if path not in routes:
            raise Refused(404, "not_found", f"No route for {path}.")
        handler = routes[path].get(method)
        if handler is None:
            raise Refused(405, "method_not_allowed", f"{method} is not allowed on {path}.")
        return handler()


def _body(environ: dict[str, Any]) -> Any:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise Refused(400, "invalid_request", "Bad Content-Length.") from None
    if length > MAX_BODY_BYTES:
        raise Refused(413, "body_too_large", f"At most {MAX_BODY_BYTES} bytes.")
    raw = environ["wsgi.input"].read(length) if length else b""
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        raise Refused(400, "invalid_json", "The body is not JSON.") from None


@dataclass(frozen=True)
class HtmlPage:
    """A page for a person (the customer's action), not JSON."""

    status: int
    html: str


ACTION_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Payment sandbox: confirm the payment</title></head>
<body><h1>Confirm the payment</h1><p>{amount} {currency}, charge <code>{charge}</code>.</p>
<p>This is the sandbox's stand-in for the bank's check (3-D Secure).</p>
<form method="post"><button name="action" value="confirm">Confirm</button>
<button name="action" value="fail">Fail</button></form></body></html>
"""
DONE_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Payment sandbox</title></head>
<body><h1>{title}</h1><p>{message}</p></body></html>
"""


def action_page(provider: SandboxProvider, charge_id: str, environ: dict[str, Any]) -> HtmlPage:
    """The redirect page of a charge waiting for its customer: Confirm / Fail buttons, or,
    with `?action=confirm|fail` in the URL, the action done at once (a link can do it)."""
    wanted = _query(environ).get("action")
    if wanted is not None:
        done = provider.complete_action(charge_id=charge_id, outcome=wanted)
        title = "Done" if done.status == 200 else "Not done"
        message = done.body.get("status") or done.body.get("message", "")
        page = DONE_PAGE.format(title=title, message=html.escape(f"The charge is {message}."))
        return HtmlPage(done.status, page)
    found = provider.get_charge(charge_id=charge_id)
    if found.status != 200:
        page = DONE_PAGE.format(title="Not found", message="No such charge.")
        return HtmlPage(found.status, page)
    charge = found.body
    if charge["status"] != "action_required":
        message = html.escape(f"Nothing to confirm: the charge is {charge['status']}.")
        return HtmlPage(200, DONE_PAGE.format(title="Nothing to do", message=message))
    return HtmlPage(
        200,
        ACTION_PAGE.format(
            amount=html.escape(charge["amount"]),
            currency=html.escape(charge["currency"]),
            charge=html.escape(charge["id"]),
        ),
    )


def _action(environ: dict[str, Any]) -> Any:
    """The action of a POST to a redirect page: a form field, JSON `action`, or the query."""
    if wanted := _query(environ).get("action"):
        return wanted
    if "form-urlencoded" in environ.get("CONTENT_TYPE", ""):
        try:
            length = min(int(environ.get("CONTENT_LENGTH") or 0), MAX_BODY_BYTES)
        except ValueError:
            length = 0
        raw = environ["wsgi.input"].read(length).decode("utf-8", "replace")
        return {k: v[0] for k, v in parse_qs(raw).items()}.get("action")
    body = _body(environ)
    return body.get("action") if isinstance(body, dict) else None


def _base_url(environ: dict[str, Any]) -> str:
    """How the caller reached this sandbox (scheme and Host), for the URLs it hands out."""
    host = environ.get("HTTP_HOST") or f"{environ['SERVER_NAME']}:{environ['SERVER_PORT']}"
    return f"{environ.get('wsgi.url_scheme', 'http')}://{host}"


def _query(environ: dict[str, Any]) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}


def make_app(db_path: str = ":memory:") -> SandboxApp:
    """Build the WSGI app over a SQLite file, or a private in-memory database."""
    return SandboxApp(SandboxProvider(db_path))


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    # Stopping does not wait for requests still sleeping in injected latency.
    block_on_close = False
    request_queue_size = 128


class _LoggingHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        logger.info("%s %s", self.address_string(), format % args)


def traced(app: Any) -> Any:
    """Continue callers' W3C trace context and record spans into the shared trace store.

    On when REDIS_URL is set and OTEL_ENABLED is not false: the sandbox then shows up in
    `/traces` as service `payment-sandbox`, inside the trace of the order it charges.
    """
    if os.environ.get("OTEL_ENABLED", "true").lower() in ("0", "false", "no"):
        return app
    url = os.environ.get("REDIS_URL")
    if not url:
        return app
    from opentelemetry import trace
    from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware

    from ecommerce.observability.tracing import RedisSpanStore, build_provider

    store = RedisSpanStore(
        url=url,
        prefix=os.environ.get("TRACES_KEY_PREFIX", os.environ.get("CACHE_KEY_PREFIX", "ecommerce")),
        max_traces=int(os.environ.get("TRACES_MAX_TRACES", "1000")),
        max_spans=int(os.environ.get("TRACES_MAX_SPANS_PER_TRACE", "256")),
        ttl_seconds=int(os.environ.get("TRACES_TTL_SECONDS", "3600")),
    )
    ratio = float(os.environ.get("OTEL_TRACES_SAMPLER_RATIO", "1.0"))
    trace.set_tracer_provider(
        build_provider(service_name="payment-sandbox", ratio=ratio, store=store)
    )
    return OpenTelemetryMiddleware(app)


def serve(host: str = "127.0.0.1", port: int = DEFAULT_PORT, db_path: str = ":memory:") -> None:
    """Serve the sandbox until SIGTERM or SIGINT, then close the socket and the database."""
    app = make_app(db_path)
    server = make_server(
        host, port, traced(app), server_class=_ThreadingWSGIServer, handler_class=_LoggingHandler
    )

    def stop(signum: int, _frame: Any) -> None:
        logger.info("payment sandbox stopping on signal %d", signum)
        # shutdown() waits for serve_forever() to return, which runs on this very thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
    logger.info("payment sandbox on http://%s:%d (db %s)", host, server.server_port, db_path)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        app.close()
        logger.info("payment sandbox stopped")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m apps.payments.sandbox", description="Run the payment sandbox."
    )
    parser.add_argument("--host", default="127.0.0.1", help="Interface (default 127.0.0.1).")
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        help="Port (default: PAYMENT_SANDBOX_PORT, else the port of PAYMENT_PROVIDER_URL, else "
        "8090).",
    )
    parser.add_argument("--db", default=":memory:", help="SQLite file (default: in memory).")
    args = parser.parse_args(argv)
    if args.port is None:
        try:
            args.port = default_port(os.environ)
        except ValueError:
            parser.error("PAYMENT_SANDBOX_PORT must be a port number")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    serve(args.host, args.port, args.db)
