"""Read scaling against a real streaming replica of the local PostgreSQL.

The replica is a `pg_basebackup -R -X stream` of the cluster the tests run on, started on a
free port as the `postgres` system user. Replay is paused to make it lag on purpose: a read
that misses a committed row came from the replica, one that sees it came from the primary.
Skipped, with the reason, only where the base backup cannot be taken (no PostgreSQL server
binaries, or no `host replication` entry for 127.0.0.1 in pg_hba.conf: `.ci/run` adds it).
"""

from __future__ import annotations

import contextlib
import copy
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg2
import pytest
from django.core.signals import request_started
from django.db import connections, transaction
from rest_framework.test import APIClient

from apps.catalog.models import Category
from ecommerce import caching
from ecommerce.api.permissions import Role
from ecommerce.db import router
from ecommerce.db.router import REPLICA_DB_ALIAS, read_alias, use_replica
from tests.catalog.factories import make_product
from tests.ecommerce.helpers import LogLines
from tests.servers import free_port
from tests.users.factories import UserFactory

# Hot standby refuses to start with any of these below the primary's value.
_MATCHED_SETTINGS = (
    "max_connections",
    "max_worker_processes",
    "max_wal_senders",
    "max_prepared_transactions",
    "max_locks_per_transaction",
)


def _server_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def _query(dsn: dict[str, Any], sql: str, params: tuple[Any, ...] = ()) -> Any:
    connection = psycopg2.connect(connect_timeout=5, **dsn)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()[0] if cursor.description else None
    finally:
        connection.close()


class StreamingReplica:
    """A hot standby of the primary in a temporary directory, on 127.0.0.1:`port`."""

    def __init__(self, primary: dict[str, Any], database: str) -> None:
        self.primary = primary
        self.database = database
        self.port = free_port()
        self._as_root = os.geteuid() == 0
        self.directory = tempfile.mkdtemp(prefix="pg-replica-")
        self.data = f"{self.directory}/data"
        if self._as_root:
            owner = pwd.getpwnam("postgres")
            os.chown(self.directory, owner.pw_uid, owner.pw_gid)

    def _command(self, command: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *command] if self._as_root else command

    def _run(self, command: list[str], *, timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self._command(command), capture_output=True, text=True, timeout=timeout, check=False
        )

    def base_backup(self, pg_basebackup: str) -> str | None:
        """Copy the primary; the reason it could not, or None."""
        done = self._run(
            [
                pg_basebackup,
                "-h",
                str(self.primary["host"]),
                "-p",
                str(self.primary["port"]),
                "-U",
                str(self.primary["user"]),
                "-D",
                self.data,
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
                "--no-sync",
            ],
            timeout=300,
        )
        return None if done.returncode == 0 else done.stderr.strip()

    def start(self, pg_ctl: str) -> None:
        matched = {
            name: _query({**self.primary, "dbname": "postgres"}, f"SHOW {name}")
            for name in _MATCHED_SETTINGS
        }
        # Debian keeps the configuration files outside the data directory: write our own.
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.directory}'",
            "hot_standby": "on",
            "shared_buffers": "32MB",
            "fsync": "off",
            **matched,
        }
        conf = "".join(f"{name} = {value}\n" for name, value in settings.items())
        hba = "local all all trust\nhost all all 127.0.0.1/32 trust\n"
        for name, text in (("postgresql.conf", conf), ("pg_hba.conf", hba), ("pg_ident.conf", "")):
            subprocess.run(
                self._command(["sh", "-c", f"cat > {self.data}/{name}"]),
                input=text,
                text=True,
                check=True,
                timeout=10,
            )
        started = self._run(
            [
                pg_ctl,
                "-D",
                self.data,
                "-l",
                f"{self.directory}/server.log",
                "-w",
                "-t",
                "60",
                "start",
            ],
            timeout=90,
        )
        assert started.returncode == 0, started.stderr + self.log()
        assert _query(self.dsn(), "SELECT pg_is_in_recovery()") is True

    def log(self) -> str:
        try:
            with open(f"{self.directory}/server.log") as handle:
                return handle.read()[-4000:]
        except OSError:
            return ""

    def dsn(self) -> dict[str, Any]:
        return {"host": "127.0.0.1", "port": self.port, "user": "postgres", "dbname": self.database}

    @property
    def pid(self) -> int | None:
        """The running postmaster's PID, or None once it has stopped."""
        try:
            with open(f"{self.data}/postmaster.pid") as handle:
                pid = int(handle.readline())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        return pid

    def pause_replay(self) -> None:
        _query(self.dsn(), "SELECT pg_wal_replay_pause()")
        deadline = time.monotonic() + 10
        while _query(self.dsn(), "SELECT pg_get_wal_replay_pause_state()") != "paused":
            assert time.monotonic() < deadline, "replay did not pause"
            time.sleep(0.05)

    def resume_replay(self) -> None:
        _query(self.dsn(), "SELECT pg_wal_replay_resume()")

    def catch_up(self) -> None:
        """Wait until the replica has replayed everything the primary has written."""
        target = _query(self.primary_dsn(), "SELECT pg_current_wal_lsn()::text")
        deadline = time.monotonic() + 30
        while not _query(
            self.dsn(), "SELECT pg_wal_lsn_diff(pg_last_wal_replay_lsn(), %s) >= 0", (target,)
        ):
            assert time.monotonic() < deadline, "the replica did not catch up"
            time.sleep(0.05)

    def primary_dsn(self) -> dict[str, Any]:
        return {**self.primary, "dbname": self.database}

    def stop(self) -> None:
        """Stop the postmaster by its PID (immediate shutdown) and wait for it to go."""
        pid = self.pid
        if pid is None:
            return
        try:
            os.kill(pid, signal.SIGQUIT)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture(scope="module")
def streaming_replica(django_db_setup: None) -> Iterator[StreamingReplica]:
    primary_settings = connections["default"].settings_dict
    if primary_settings["ENGINE"].rsplit(".", 1)[-1] != "postgresql":
        pytest.skip("a streaming replica needs PostgreSQL (DATABASE_URL is not PostgreSQL)")
    pg_basebackup, pg_ctl = _server_bin("pg_basebackup"), _server_bin("pg_ctl")
    if pg_basebackup is None or pg_ctl is None:
        pytest.skip("PostgreSQL's server binaries (pg_basebackup, pg_ctl) are not installed")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root with no `postgres` system user to own the replica")
    primary = {
        "host": primary_settings["HOST"] or "127.0.0.1",
        "port": int(primary_settings["PORT"] or 5432),
        "user": primary_settings["USER"] or "postgres",
    }
    replica = StreamingReplica(primary, primary_settings["NAME"])
    try:
        reason = replica.base_backup(pg_basebackup)
        if reason is not None:
            pytest.skip(
                "pg_basebackup could not copy the primary (replication connections from "
                f"127.0.0.1 need a `host replication` line in pg_hba.conf): {reason}"
            )
        replica.start(pg_ctl)
        yield replica
    finally:
        replica.close()


@pytest.fixture(scope="module")
def replica_alias(streaming_replica: StreamingReplica) -> Iterator[StreamingReplica]:
    """The `replica` alias, as DATABASE_REPLICA_URL configures it, for this module's tests.

    A mirror of the test database (as in settings): the test case never creates or flushes
    it. Registered before the test case is set up so the tests may declare it.
    """
    settings_dict = copy.deepcopy(connections.settings["default"])
    settings_dict.update(HOST="127.0.0.1", PORT=str(streaming_replica.port))
    settings_dict["TEST"] = {**settings_dict.get("TEST", {}), "MIRROR": "default"}
    configured = connections.settings.get(REPLICA_DB_ALIAS)  # DATABASE_REPLICA_URL's mirror
    forget_replica_connection()
    connections.settings[REPLICA_DB_ALIAS] = settings_dict
    try:
        yield streaming_replica
    finally:
        forget_replica_connection()
        if configured is None:
            del connections.settings[REPLICA_DB_ALIAS]
        else:
            connections.settings[REPLICA_DB_ALIAS] = configured


def forget_replica_connection() -> None:
    """Close this thread's `replica` connection so the next one reads the alias anew."""
    if REPLICA_DB_ALIAS in connections.settings:
        connections[REPLICA_DB_ALIAS].close()
        with contextlib.suppress(AttributeError):
            del connections[REPLICA_DB_ALIAS]


@pytest.fixture
def replica(replica_alias: StreamingReplica) -> Iterator[StreamingReplica]:
    """The replica, caught up, with replay running again and its connection closed after."""
    router.mark_replica_up()
    replica_alias.catch_up()
    try:
        yield replica_alias
    finally:
        if replica_alias.pid is not None:
            replica_alias.resume_replay()
        connections[REPLICA_DB_ALIAS].close()
        router.mark_replica_up()
        caching.reset_bypass()


# The replica is declared so the test case lets the router use it; as a mirror it is never
# flushed (the primary's flush reaches it by replication).
replica_db = pytest.mark.django_db(transaction=True, databases=["default", REPLICA_DB_ALIAS])


def new_request() -> None:
    """What Django does when a request starts (the router forgets earlier writes)."""
    request_started.send(sender=APIClient)


def category_names(client: APIClient) -> set[str]:
    response = client.get("/api/categories")
    assert response.status_code == 200, response.content
    names: set[str] = set()
    stack = list(response.json())
    while stack:
        node = stack.pop()
        names.add(node["name"])
        stack.extend(node.get("children", []))
    return names


@replica_db
def test_public_category_tree_is_read_from_the_replica(
    replica: StreamingReplica, client_for: Callable[[Any], APIClient]
) -> None:
    Category.objects.create(name="Tees", slug="tees")
    replica.catch_up()
    replica.pause_replay()
    Category.objects.create(name="Hats", slug="hats")  # committed on the primary only

    assert category_names(APIClient()) == {"Tees"}  # stale: the replica answered
    manager = client_for(UserFactory(roles=[Role.CATALOG_MANAGER]))
    assert category_names(manager) == {"Tees", "Hats"}  # staff read the primary

    replica.resume_replay()
    replica.catch_up()
    assert category_names(APIClient()) == {"Tees", "Hats"}


@replica_db
def test_product_list_reads_the_replica_only_when_the_cache_is_down(
    replica: StreamingReplica,
) -> None:
    make_product(sku="old", stock=1)
    replica.catch_up()
    replica.pause_replay()
    make_product(sku="new", stock=1)

    # A page that fills the shared cache is read from the primary: a stale fill would be
    # served for the cache's whole TTL, long after the replica caught up.
    assert APIClient().get("/api/products").json()["count"] == 2

    caching._start_bypass()  # Redis unreachable: every page is a query
    assert APIClient().get("/api/products").json()["count"] == 1  # the paused replica


@replica_db
def test_no_read_goes_to_the_replica_in_a_transaction_or_after_a_write(
    replica: StreamingReplica,
) -> None:
    replica.pause_replay()
    Category.objects.create(name="Caps", slug="caps")
    new_request()

    assert read_alias() == "default"  # not opted in
    with use_replica():
        assert read_alias() == REPLICA_DB_ALIAS
        assert not Category.objects.filter(slug="caps").exists()  # stale: replica
        with transaction.atomic():
            assert read_alias() == "default"
            assert Category.objects.filter(slug="caps").exists()
            # Writes inside the transaction go to the primary (the replica is read-only).
            Category.objects.create(name="Socks", slug="socks")
        # The request has written now: the rest of it reads what it wrote.
        assert read_alias() == "default"
        assert Category.objects.filter(slug__in=["caps", "socks"]).count() == 2
        new_request()
        assert Category.objects.filter(slug__in=["caps", "socks"]).count() == 0  # replica
    assert connections[REPLICA_DB_ALIAS].connection is not None  # it was really used
    assert Category.objects.filter(slug__in=["caps", "socks"]).count() == 2


@replica_db
def test_an_order_just_placed_is_read_back_from_the_primary(
    replica: StreamingReplica, client_for: Callable[[Any], APIClient]
) -> None:
    make_product(sku="lamp", stock=5, price="12.00")
    replica.catch_up()
    replica.pause_replay()
    client = client_for(UserFactory(roles=[Role.CUSTOMER]))

    placed = client.post(
        "/api/orders",
        {"items": [{"id": "lamp", "quantity": 1}], "payment_token": "tok_success"},
        format="json",
    )
    assert placed.status_code == 201, placed.content
    order_id = placed.json()["id"]

    detail = client.get(f"/api/orders/{order_id}")
    assert detail.status_code == 200
    assert detail.json()["id"] == order_id
    assert order_id in [order["id"] for order in client.get("/api/orders").json()["results"]]
    # The replica has not seen the order: whatever read it above was the primary.
    assert (
        _query(replica.dsn(), "SELECT count(*) FROM orders_order WHERE public_id = %s", (order_id,))
        == 0
    )


@replica_db
def test_reads_fall_back_to_the_primary_when_the_replica_is_down(
    replica: StreamingReplica, log_lines: LogLines
) -> None:
    Category.objects.create(name="Tees", slug="tees")
    replica.catch_up()
    assert category_names(APIClient()) == {"Tees"}
    assert connections[REPLICA_DB_ALIAS].connection is not None  # connected, kept open

    replica.stop()  # the replica's postmaster is gone; our open connection is dead
    Category.objects.create(name="Hats", slug="hats")

    started = time.monotonic()
    assert category_names(APIClient()) == {"Tees", "Hats"}  # from the primary
    assert category_names(APIClient()) == {"Tees", "Hats"}  # skipped without a new attempt
    assert time.monotonic() - started < 5
    new_request()
    with use_replica():
        assert read_alias() == "default"
    outages = [line for line in log_lines() if line["event"] == "replica_unavailable"]
    assert len(outages) == 1  # once per outage, not once per read
    assert APIClient().get("/health/ready").status_code == 200  # readiness ignores the replica
