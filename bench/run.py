"""Benchmarks of PERFORMANCE.md, each against a baseline measured in the same run.

    .venv/bin/python bench/run.py [--duration 10] [--connections 32]

Builds a throwaway PostgreSQL database (`ecommerce_bench`) with 1,000 one-variant products
(and 1,000 more for the bare baseline), serves the project with gunicorn (4 sync workers,
its real config, `/bench/` baselines mounted), drives it with wrk from a second process and
prints requests/s, p50/p99 and the ratio to each target, then checks stock against its
ledger per warehouse. Needs wrk (`apt-get install -y wrk`) and the local PostgreSQL and
Redis.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psycopg2
import redis

ROOT = Path(__file__).resolve().parents[1]
DB = "ecommerce_bench"
REDIS_DB, BROKER_DB = 9, 10
SKUS = 1000
PORT = 18765
PYTHON = sys.executable

ORDER_LUA = """
local skus = tonumber(os.getenv("BENCH_SKUS"))
local token = os.getenv("BENCH_TOKEN")
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
request = function()
  local sku = "bench" .. math.random(1, skus)
  local key = string.format("%x%x%x", math.random(0, 2^30), math.random(0, 2^30), os.time())
  local body = '{"items":[{"id":"' .. sku .. '","quantity":1}],"payment_token":"tok_success"}'
  return wrk.format("POST", "/api/orders", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token,
    ["Idempotency-Key"] = key,
  }, body)
end
"""
POST_LUA = 'wrk.method = "POST"\n'


def env_for(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_READ_DOT_ENV_FILE="0",
        DEBUG="0",
        SECRET_KEY="bench-secret-key-0123456789-not-for-production",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{DB}",
        REDIS_URL=f"redis://127.0.0.1:6379/{REDIS_DB}",
        CELERY_BROKER_URL=f"redis://127.0.0.1:6379/{BROKER_DB}",
        BENCH_ENDPOINTS_ENABLED="1",
        ACCESS_LOG="0",
        LOG_LEVEL="WARNING",
        WEB_CONCURRENCY="4",
        JWT_ACCESS_TOKEN_LIFETIME_SECONDS="7200",
        RATE_LIMIT_ENABLED="0",
        # Orders pay through the in-process sandbox; /metrics is read without a token.
        ALLOW_IN_PROCESS_PAYMENT_SANDBOX="1",
        METRICS_PUBLIC="1",
    )
    env.update(extra)
    return env


def manage(*args: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return result.stdout


SEED = f"""
from decimal import Decimal
from django.contrib.auth import get_user_model
from rest_framework_simplejwt.tokens import RefreshToken
from apps.catalog import services
User = get_user_model()
user, _ = User.objects.get_or_create(email="bench@example.com", defaults={{"name": "Bench"}})
for prefix in ("bench", "bare"):
    for n in range(1, {SKUS} + 1):
        services.create_product(name=f"Bench {{n}}", variants=[services.VariantSpec(
            sku=f"{{prefix}}{{n}}", price=Decimal("9.99") + n, initial_stock=10**8)])
print(RefreshToken.for_user(user).access_token)
"""


def prepare_database(env: dict[str, str]) -> str:
    conn = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        cursor.execute(f"CREATE DATABASE {DB}")
    conn.close()
    for db in (REDIS_DB, BROKER_DB):
        redis.Redis(db=db).flushdb()
    manage("migrate", "--noinput", env=env)
    manage("seed_demo", env=env)
    return manage("shell", "-c", SEED, env=env).strip().splitlines()[-1]


class Server:
    def __init__(self, env: dict[str, str], metrics_dir: str) -> None:
        env = {**env, "METRICS_DIR": metrics_dir, "PROMETHEUS_MULTIPROC_DIR": f"{metrics_dir}/web"}
        self.process = subprocess.Popen(
            [
                PYTHON,
                "-m",
                "gunicorn",
                "-c",
                "ecommerce/gunicorn.conf.py",
                "-b",
                f"127.0.0.1:{PORT}",
                "ecommerce.wsgi",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{PORT}/health/live", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not start")
            time.sleep(0.2)

    def worker_rss_mib(self) -> list[float]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        sizes = []
        for pid in children.read_text().split():
            status = Path(f"/proc/{pid}/status").read_text()
            kib = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
            sizes.append(kib / 1024)
        return sizes

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)


def wrk(
    path: str,
    *,
    duration: int,
    connections: int,
    lua: str | None = None,
    env: dict[str, str] | None = None,
) -> dict[str, float]:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(lua or "")
    if lua:
        command += ["-s", script.name]
    command.append(f"http://127.0.0.1:{PORT}{path}")
    output = subprocess.run(command, capture_output=True, text=True, env=env, check=True).stdout
    os.unlink(script.name)

    def millis(label: str) -> float:
        value, unit = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", output).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50": millis("50"),
        "p99": millis("99"),
        "errors": float(non2xx.group(1)) if non2xx else 0.0,
    }


def stock_consistency(env: dict[str, str]) -> str:
    """Per warehouse and variant of the bench* SKUs: stock equals its ledger and is never
    below zero (no unit sold twice)."""
    check = """
from django.db.models import Sum
from apps.inventory.models import Stock, StockMovement
# The bare baseline skips the ledger on purpose; every real order went to bench* SKUs.
ledger = {(w, v): total for w, v, total in
          StockMovement.objects.filter(variant__sku__startswith="bench")
          .values("warehouse_id", "variant_id").annotate(total=Sum("delta"))
          .values_list("warehouse_id", "variant_id", "total")}
rows = Stock.objects.filter(variant__sku__startswith="bench").values_list(
    "warehouse__slug", "warehouse_id", "variant__sku", "variant_id", "quantity")
bad = [f"{sku}@{slug}" for slug, w, sku, v, quantity in rows
       if quantity < 0 or ledger.pop((w, v), 0) != quantity]
bad += [f"variant {v}@warehouse {w} (ledger, no stock row)" for (w, v), t in ledger.items() if t]
print(f"ledger consistent over {len(rows)} stock rows" if not bad
      else f"LEDGER MISMATCH: {bad[:5]}")
"""
    return manage("shell", "-c", check, env=env).strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--sampler-ratio", default="1.0", help="OTEL_TRACES_SAMPLER_RATIO of the traced runs"
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install -y wrk")
    base_env = env_for()
    token = prepare_database(base_env)
    order_env = {**os.environ, "BENCH_TOKEN": token, "BENCH_SKUS": str(SKUS)}
    hot_env = {**order_env, "BENCH_SKUS": "1"}
    run = {"duration": args.duration, "connections": args.connections}
    results: dict[str, dict[str, float]] = {}
    rss: dict[str, list[float]] = {}

    for tracing in ("1", "0"):
        label = "traced" if tracing == "1" else "untraced"
        metrics_dir = tempfile.mkdtemp(prefix="bench-metrics-")
        server = Server(
            env_for(OTEL_ENABLED=tracing, OTEL_TRACES_SAMPLER_RATIO=args.sampler_ratio), metrics_dir
        )
        try:
            httpx.get(f"http://127.0.0.1:{PORT}/api/products/prod1")
            httpx.get(f"http://127.0.0.1:{PORT}/api/products?page_size=20")
            if tracing == "1":
                results["drf_static"] = wrk("/bench/drf", **run)
                results["bare_order"] = wrk("/bench/bare-order?skus=1000", lua=POST_LUA, **run)
                results["bare_order_hot"] = wrk("/bench/bare-order?skus=1", lua=POST_LUA, **run)
            results[f"detail_{label}"] = wrk("/api/products/prod1", **run)
            results[f"list_{label}"] = wrk("/api/products?page_size=20", **run)
            results[f"orders_{label}"] = wrk("/", lua=ORDER_LUA, env=order_env, **run)
            if tracing == "1":
                results["orders_hot"] = wrk("/", lua=ORDER_LUA, env=hot_env, **run)
                results["detail_half_rate"] = wrk(
                    "/api/products/prod1", duration=args.duration, connections=4
                )
            rss[label] = server.worker_rss_mib()
        finally:
            server.stop()
            shutil.rmtree(metrics_dir, ignore_errors=True)
        redis.Redis(db=BROKER_DB).flushdb()

    rows = [
        ("product detail, warm", "detail_traced", "drf_static", 0.90),
        ("product list (20), warm", "list_traced", "drf_static", 0.60),
        ("orders over 1,000 SKUs", "orders_traced", "bare_order", 0.50),
        ("orders on one hot SKU", "orders_hot", "bare_order_hot", 0.40),
        ("detail: tracing+metrics cost", "detail_traced", "detail_untraced", 0.85),
        ("orders: tracing+metrics cost", "orders_traced", "orders_untraced", 0.85),
    ]
    print(f"\n{'scenario':32} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
    for name, figures in results.items():
        print(
            f"{name:32} {figures['rps']:9.0f} {figures['p50']:8.1f} {figures['p99']:8.1f}"
            f" {figures['errors']:8.0f}"
        )
    print(f"\n{'target':32} {'ratio':>9} {'needed':>8}")
    for label, measured, baseline, needed in rows:
        ratio = results[measured]["rps"] / results[baseline]["rps"]
        mark = "ok" if ratio >= needed else "BELOW"
        print(f"{label:32} {ratio:9.2f} {needed:8.2f}  {mark}")
    print(f"\np99 at a quarter of the connections: {results['detail_half_rate']['p99']:.1f} ms")
    for label, sizes in rss.items():
        print(f"worker RSS ({label}): " + ", ".join(f"{size:.0f} MiB" for size in sizes))
    print(stock_consistency(base_env))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
