"""A shop's mixed traffic for Locust: the visitor steps of the load scenario (docs/capacity.md).

bench/load.py (`make load`) runs it headless against the stack it starts, and checks the
thresholds; it writes the scenario file this reads. By hand, against a stack on loopback:

    LOAD_SCENARIO=scenario.json .venv/bin/locust -f bench/locustfile.py --headless \\
        --users 64 --spawn-rate 64 --run-time 32s --host http://127.0.0.1:8000

LOAD_SCENARIO names a JSON file: {"rate": iterations/s, "duration": s, "seed": n,
"skus": [...], "tokens": [customer access tokens], "words": [...], "things": [...],
"results": path}. Each user is paced by constant_throughput(rate / users), and user i makes
its first iteration i / rate seconds after the start: iterations arrive evenly at `rate` per
second, whatever the server's speed, as long as one takes less than users / rate seconds (one
that takes longer makes its user miss its next arrival: counted). No iteration starts after
`duration` seconds. An iteration is one visitor step, drawn as a shop's traffic is (MIX).
At the end the file `results` gets the iterations started per kind, the failed ones and the
orders placed (id and the customer's token), for bench/load.py to wait for their payment.

Bounded: --host on loopback only, at most 200 iterations/s for 300 s.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import random
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import gevent
from gevent.queue import Queue
from locust import FastHttpUser, constant_throughput, events, task
from locust.env import Environment
from locust.stats import CSV_STATS_INTERVAL_SEC

# Weights of the iteration kinds, per 100.
MIX = {"browse": 30, "product": 35, "search": 10, "cart": 17, "checkout": 5, "order": 3}
MAX_RATE = 200.0
MAX_DURATION_SECONDS = 300
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
ADDRESS = {
    "first_name": "Load",
    "last_name": "Test",
    "street_address_1": "Unter den Linden 1",
    "city": "Berlin",
    "postal_code": "10117",
    "country": "DE",
}

scenario: dict[str, Any] = {}
tokens: Queue = Queue()  # customers' access tokens: one checkout at a time per customer
started_at = [0.0]
tally: dict[str, Any] = {"iterations": defaultdict(int), "failed_iterations": 0, "orders": []}
user_numbers = itertools.count()


def check_host(host: str | None) -> None:
    """Exits unless the target is on loopback."""
    if urlsplit(host or "").hostname not in LOOPBACK:
        sys.exit(f"locustfile: loopback only, refusing --host {host!r}")


def check_bounds(rate: float, duration: float) -> None:
    if not 0 < rate <= MAX_RATE or not 0 < duration <= MAX_DURATION_SECONDS:
        sys.exit(
            f"locustfile: rate in (0, {MAX_RATE:.0f}], duration in (0, {MAX_DURATION_SECONDS}]"
        )


@events.init.add_listener
def load_scenario(environment: Environment, **_: Any) -> None:
    check_host(environment.host)
    path = os.environ.get("LOAD_SCENARIO")
    if not path:
        sys.exit("locustfile: LOAD_SCENARIO must name the scenario file (bench/load.py writes it)")
    scenario.update(json.loads(Path(path).read_text()))
    check_bounds(float(scenario["rate"]), float(scenario["duration"]))
    users = environment.parsed_options.num_users if environment.parsed_options else None
    scenario["users"] = int(users or scenario.get("users") or 1)
    Shopper.wait_time = constant_throughput(scenario["rate"] / scenario["users"])
    random.seed(scenario.get("seed", 2026))
    for token in scenario["tokens"]:
        tokens.put(token)


@events.test_start.add_listener
def start_clock(**_: Any) -> None:
    started_at[0] = time.monotonic()


@events.test_stop.add_listener
def write_results(**_: Any) -> None:
    if scenario.get("results"):
        Path(scenario["results"]).write_text(json.dumps(tally))
    # Every user has stopped: let --csv's writer (it rewrites the files once a second, and
    # the process exits without a last pass) record the requests of the last second too.
    gevent.sleep(CSV_STATS_INTERVAL_SEC + 0.5)


class Failed(Exception):
    """A request of the iteration answered otherwise than expected (recorded by Locust)."""


def visit(weight: int) -> Callable[[Callable[[Shopper], None]], Callable[[Shopper], None]]:
    """A task of that weight running the flow as one iteration: counted, skipped after the
    scenario's duration, failed (not raised) when a request fails."""

    def decorate(flow: Callable[[Shopper], None]) -> Callable[[Shopper], None]:
        @functools.wraps(flow)
        def iteration(user: Shopper) -> None:
            if not user.arrival_is_due():
                return
            tally["iterations"][flow.__name__] += 1
            try:
                flow(user)
            except Failed:
                tally["failed_iterations"] += 1
            except Exception:
                tally["failed_iterations"] += 1
                raise  # Locust records it among the exceptions

        return task(weight)(iteration)

    return decorate


class Shopper(FastHttpUser):
    """One of `users` visitors, each making an iteration every users / rate seconds."""

    wait_time = constant_throughput(1.0)  # set from the scenario at init
    network_timeout = 15.0
    connection_timeout = 5.0
    first_arrival = 0.0
    period = 1.0

    def on_start(self) -> None:
        number = next(user_numbers)
        rate = float(scenario["rate"])
        self.period = scenario["users"] / rate
        self.first_arrival = started_at[0] + number / rate
        gevent.sleep(max(0.0, self.first_arrival - time.monotonic()))
        # constant_throughput paces from the user's creation: restart it at the first arrival,
        # or the staggered users would all make their second iteration together.
        self._cp_last_run = time.perf_counter()
        self._cp_last_wait_time = 0.0

    def arrival_is_due(self) -> bool:
        """False for arrivals scheduled at or after the scenario's duration (the slot nearest
        to now, so a few ms of pacing drift do not move an arrival across the end)."""
        slot = round((time.monotonic() - self.first_arrival) / self.period)
        arrival = self.first_arrival + max(0, slot) * self.period
        return arrival < started_at[0] + float(scenario["duration"])

    def call(
        self, name: str, method: str, path: str, expect: int, token: str = "", **kw: Any
    ) -> Any:
        """One request under `name` in Locust's statistics, failed unless it answers `expect`."""
        headers = kw.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        with self.client.request(
            method, path, name=name, headers=headers, catch_response=True, **kw
        ) as response:
            if response.status_code != expect:
                response.failure(f"{response.status_code} {(response.text or '')[:200]}")
                raise Failed(name)
            response.success()
            return response.json() if response.content else None

    @visit(MIX["browse"])
    def browse(self) -> None:
        ordering = random.choice(["", "&ordering=price", "&ordering=-price", "&ordering=newest"])
        page = random.randint(1, 8)
        self.call("/api/products", "GET", f"/api/products?page_size=20&page={page}{ordering}", 200)

    @visit(MIX["product"])
    def product(self) -> None:
        sku = random.choice(scenario["skus"])
        self.call("/api/products/{sku}", "GET", f"/api/products/{sku}", 200)

    @visit(MIX["search"])
    def search(self) -> None:
        if random.random() < 0.7:
            term = random.choice(scenario["things"])
        else:
            term = " ".join(random.sample(scenario["words"], 2))
        query = urlencode({"search": term})
        self.call("/api/products?search", "GET", f"/api/products?{query}", 200)

    @visit(MIX["cart"])
    def cart(self) -> None:
        token = self.call("/api/carts", "POST", "/api/carts", 201)["token"]
        for sku in random.sample(scenario["skus"], random.randint(1, 2)):
            body = {"sku": sku, "quantity": random.randint(1, 3)}
            self.call("/api/carts/{t}/lines", "POST", f"/api/carts/{token}/lines", 200, json=body)
        self.call("/api/carts/{t}", "GET", f"/api/carts/{token}", 200)

    @visit(MIX["checkout"])
    def checkout(self) -> None:
        access = tokens.get(timeout=15)
        try:
            cart = self.call("/api/carts", "POST", "/api/carts", 201, access)
            path = f"/api/carts/{cart['token']}"
            for sku in random.sample(scenario["skus"], random.randint(1, 3)):
                body = {"sku": sku, "quantity": 1}
                self.call("/api/carts/{t}/lines", "POST", f"{path}/lines", 200, access, json=body)
            priced = self.call(
                "/api/carts/{t}", "PATCH", path, 200, access, json={"shipping_address": ADDRESS}
            )
            method = priced["shipping_methods"][0]["id"]
            self.call(
                "/api/carts/{t}", "PATCH", path, 200, access, json={"shipping_method": method}
            )
            order = self.call(
                "/api/carts/{t}/checkout",
                "POST",
                f"{path}/checkout",
                201,
                access,
                json={"payment_token": "tok_success"},
                headers={"Idempotency-Key": str(uuid.uuid4())},
            )
            tally["orders"].append((order["id"], access))
        finally:
            tokens.put(access)

    @visit(MIX["order"])
    def order(self) -> None:
        access = tokens.get(timeout=15)
        try:
            body = {
                "items": [{"id": sku, "quantity": 1} for sku in random.sample(scenario["skus"], 2)],
                "shipping_country": "DE",
                "payment_token": "tok_success",
            }
            placed = self.call(
                "/api/orders",
                "POST",
                "/api/orders",
                201,
                access,
                json=body,
                headers={"Idempotency-Key": str(uuid.uuid4())},
            )
            tally["orders"].append((placed["id"], access))
        finally:
            tokens.put(access)
