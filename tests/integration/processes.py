"""Real processes for the integration tests: the payment sandbox and Celery workers.

Every process is started here with `start_new_session=True`, so it leads its own process
group, and is stopped through the PID (or that group's id) it was given, never by name.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import kombu
import redis

from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
QUEUES = ("default", "payments", "notifications")
# kombu's Redis transport keeps delivered, not yet acknowledged messages in this hash.
UNACKED_KEY = "unacked"


def _stop(process: subprocess.Popen[bytes], *, grace_seconds: float) -> None:
    """SIGTERM the process, then SIGKILL its whole process group after `grace_seconds`."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        # Not reaped yet, so the group id is still this process's: nobody else's.
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


class SandboxServer:
    """`python -m apps.payments.sandbox` on 127.0.0.1, restartable on the same port.

    A restart loses every charge (the database is in memory), as a crashed provider
    without persistence would.
    """

    def __init__(self, *, log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.http = httpx.Client(base_url=self.url, timeout=5.0, trust_env=False)
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        command = [sys.executable, "-m", "apps.payments.sandbox"]
        command += ["--host", "127.0.0.1", "--port", str(self.port)]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + 10
        while True:
            try:
                if self.http.get("/health", timeout=0.5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"sandbox did not start: {self.log_path.read_text()}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process, grace_seconds=5)

    def close(self) -> None:
        self.stop()
        self.http.close()

    def configure(self, **config: Any) -> dict[str, Any]:
        response = self.http.post("/_sandbox/config", json=config)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def reset(self) -> None:
        assert self.http.post("/_sandbox/reset").status_code == 200

    def charges(self) -> dict[str, int]:
        """Charges recorded by status, with their total: what "exactly one charge" counts."""
        return dict(self.http.get("/_sandbox/stats").json()["charges"])

    def charge_for(self, idempotency_key: str) -> dict[str, Any] | None:
        response = self.http.get("/v1/charges", params={"idempotency_key": idempotency_key})
        data = response.json()["data"]
        return dict(data[0]) if data else None


class CeleryWorker:
    """`celery -A ecommerce worker` in its own process group, with its log as JSON lines."""

    def __init__(
        self,
        *,
        env: dict[str, str],
        nodename: str,
        log_path: Path,
        queues: Sequence[str] = QUEUES,
        concurrency: int = 2,
        wait: bool = True,
    ) -> None:
        self.env = env
        self.nodename = nodename
        self.log_path = log_path
        self.queues = tuple(queues)
        command = [sys.executable, "-m", "celery", "-A", "ecommerce", "worker"]
        command += ["-Q", ",".join(queues), "-n", nodename, "--pool", "prefork"]
        command += ["--concurrency", str(concurrency), "--without-gossip", "--without-mingle"]
        command += ["--without-heartbeat", "-l", "INFO"]
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if wait:
            self.wait_until_ready()

    def wait_until_ready(self) -> None:
        """Wait for the worker's "ready" line (after `wait=False`: others started meanwhile)."""
        ready = f"{self.nodename} ready."
        deadline = time.monotonic() + 30
        while not any(line.get("event") == ready for line in self.log()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"worker did not start:\n{self.log_path.read_text()}")
            time.sleep(0.05)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        """Warm shutdown (SIGTERM: running tasks finish, held messages go back to the broker)."""
        _stop(self.process, grace_seconds=15)

    def kill(self) -> None:
        """SIGKILL the main process and its pool children at once: nothing is acknowledged."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)

    def kill_pool(self) -> list[int]:
        """SIGKILL the pool's processes, as the OOM killer would; the main process lives on.

        Returns their PIDs: this worker's own children, read from /proc, never found by name.
        """
        pids = [
            int(pid)
            for children in Path(f"/proc/{self.process.pid}/task").glob("*/children")
            for pid in children.read_text().split()
        ]
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        return pids

    def log(self, *, since: int = 0) -> list[dict[str, Any]]:
        """The worker's structured log lines from the `since`-th on (plain text left out).

        `len(worker.log())` taken before an action marks where its lines start.
        """
        lines: list[dict[str, Any]] = []
        for raw in self.log_path.read_text(errors="replace").splitlines():
            if raw.startswith("{"):
                try:
                    lines.append(json.loads(raw))
                except ValueError:
                    continue  # a line still being written
        return lines[since:]

    def log_tail(self, lines: int = 40) -> str:
        """The last structured lines, for failure messages (mails the worker printed left out)."""
        raw = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join([line for line in raw if line.startswith("{")][-lines:])


class Broker:
    """One Redis database used as the Celery broker of one test process."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.redis = redis.Redis.from_url(url)

    def flush(self) -> None:
        """Empty the database: queues, unacknowledged messages, bindings. No worker running."""
        self.redis.flushdb()

    def purge_queues(self) -> None:
        """Drop waiting messages; the bindings a running worker declared stay."""
        for key in self.redis.scan_iter():
            if self.redis.type(key) == b"list":
                self.redis.delete(key)

    def backlog(self) -> int:
        """Messages waiting in a queue or delivered and not yet acknowledged."""
        waiting = sum(
            self.redis.llen(key)
            for key in self.redis.scan_iter()
            if self.redis.type(key) == b"list"
        )
        return waiting + int(self.redis.hlen(UNACKED_KEY))


class Workers:
    """At most one live worker per test process, restarted only when its settings change.

    Start-ups cost a second or two each, so tests share the worker started with the
    base environment; a test asking for other settings gets a fresh worker, and the next
    test asking for the base ones gets a fresh base worker again.
    """

    def __init__(self, *, env: dict[str, str], broker: Broker, log_dir: Path, name: str) -> None:
        self.env = env
        self.broker = broker
        self.log_dir = log_dir
        self.name = name
        self.started = 0
        self.current: CeleryWorker | None = None
        self._overrides: dict[str, str] = {}

    def running(self, **overrides: str) -> CeleryWorker:
        """A live worker whose environment is the base one updated with `overrides`.

        Messages still waiting in the queues are dropped when a worker is (re)started;
        delivered, unacknowledged ones stay for the broker to hand out again.
        """
        current = self.current
        if current is not None and current.alive and overrides == self._overrides:
            return current
        self.stop()
        self.broker.purge_queues()
        self.started += 1
        self.current = CeleryWorker(
            env={**self.env, **overrides},
            nodename=f"{self.name}-{self.started}@127.0.0.1",
            log_path=self.log_dir / f"{self.name}-{self.started}.log",
        )
        self._overrides = dict(overrides)
        return self.current

    def wait_idle(self, *, timeout_seconds: float) -> bool:
        """Wait until the live worker has acknowledged every message; False on timeout."""
        if self.current is None or not self.current.alive:
            return True
        deadline = time.monotonic() + timeout_seconds
        quiet_polls = 0
        # Twice in a row: a message moves from its queue to the unacked hash in two steps.
        while quiet_polls < 2:
            quiet_polls = 0 if self.broker.backlog() else quiet_polls + 1
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def stop(self) -> None:
        if self.current is not None:
            self.current.stop()
            self.current = None


RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"


def rabbitmq_missing() -> str | None:
    """Why the RabbitMQ tests cannot run here, or None: they need rabbitmq-server."""
    if not Path(RABBITMQ_SERVER).exists() and not shutil.which("rabbitmq-server"):
        return "rabbitmq-server is not installed (apt-get install rabbitmq-server)"
    return None


def amqp_ready(url: str, *, timeout: float = 0.5) -> bool:
    """True when an AMQP broker accepts a connection (login and vhost included) at `url`."""
    try:
        with kombu.Connection(url, connect_timeout=timeout) as connection:
            connection.ensure_connection(max_retries=1, timeout=timeout)
        return True
    except Exception:  # any failure means "not yet"
        return False


class RabbitServer:
    """A throwaway rabbitmq-server node on 127.0.0.1, on free ports, stopped by PID.

    Its own node name, ports, data and logs (in a scratch directory), no plugins and its
    own config file, so the machine's RabbitMQ is never touched. `restart_empty()` is the
    analogue of the Redis fault: SIGKILL, the data directory wiped, started again on the
    same port with nothing (no queue, no message, no binding). As root the node runs as
    the `rabbitmq` user (its Erlang cookie is there), like the packaged service.
    """

    def __init__(self, *, wait: bool = True) -> None:
        # Its own scratch directory under /tmp: the `rabbitmq` user cannot enter pytest's.
        directory = Path(tempfile.mkdtemp(prefix="rabbitmq-throwaway-"))
        self.directory = directory
        self.port = free_port()
        self.dist_port = free_port()
        self.node = f"throwaway-{uuid.uuid4().hex[:10]}@localhost"
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}//"
        (directory / "rabbitmq.conf").write_text(
            f"listeners.tcp.local = 127.0.0.1:{self.port}\nloopback_users = none\n"
        )
        (directory / "rabbitmq-env.conf").write_text("")
        (directory / "enabled_plugins").write_text("[].\n")
        self._as_root = os.geteuid() == 0
        if self._as_root:
            owner = pwd.getpwnam("rabbitmq")
            for path in (directory, *directory.iterdir()):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        self.process: subprocess.Popen[bytes] | None = None
        self.start(wait=wait)

    @property
    def mnesia(self) -> Path:
        return self.directory / "mnesia"

    def start(self, *, wait: bool = True) -> None:
        """Start the node; with `wait`, return once it accepts connections (else see
        `wait_until_ready`: the node boots in ten seconds or more on a busy machine)."""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": "/var/lib/rabbitmq" if self._as_root else os.environ.get("HOME", "."),
            "LANG": "C.UTF-8",
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONFIG_FILE": str(self.directory / "rabbitmq.conf"),
            "RABBITMQ_CONF_ENV_FILE": str(self.directory / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.directory / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(self.mnesia),
            "RABBITMQ_LOG_BASE": str(self.directory / "log"),
            "RABBITMQ_PID_FILE": str(self.directory / "node.pid"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_FLAGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }
        executable = RABBITMQ_SERVER if Path(RABBITMQ_SERVER).exists() else "rabbitmq-server"
        command = [executable]
        if self._as_root:
            command = ["runuser", "-u", "rabbitmq", "--", *command]
        with (self.directory / "server.out").open("ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=self.directory,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if wait:
            self.wait_until_ready()

    def wait_until_ready(self, *, timeout_seconds: float = 90.0) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout_seconds
        while not amqp_ready(self.url):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                out = (self.directory / "server.out").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"rabbitmq-server did not start:\n{out}")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL the node's whole process group (the group its start gave it)."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def restart_empty(self, *, wait: bool = True) -> None:
        """SIGKILL, wipe every queue and message, start again on the same port."""
        self.kill()
        shutil.rmtree(self.mnesia, ignore_errors=True)
        self.start(wait=wait)

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.directory, ignore_errors=True)


class RabbitVhost:
    """A virtual host of its own on the machine's RabbitMQ (127.0.0.1:5672, guest), so a
    run never sees another's queues; added and deleted through `rabbitmqctl`.

    `SHARED_RABBITMQ_URL` points elsewhere (its vhost path is replaced by this one's).
    """

    def __init__(self, name: str) -> None:
        base = os.environ.get("SHARED_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
        self.name = name
        self.url = f"{base.rsplit('/', 1)[0]}/{name}"
        self._ctl("add_vhost", name)
        self._ctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")

    @staticmethod
    def _ctl(*args: str) -> None:
        result = subprocess.run(
            ["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=60, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {result.stdout}{result.stderr}")

    def close(self) -> None:
        self._ctl("delete_vhost", self.name)


def shared_rabbitmq_missing() -> str | None:
    """Why the machine's RabbitMQ cannot serve these tests, or None."""
    missing = rabbitmq_missing()
    if missing:
        return missing
    if not shutil.which("rabbitmqctl"):
        return "rabbitmqctl is not installed"
    base = os.environ.get("SHARED_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
    if not amqp_ready(base, timeout=2.0):
        return f"no RabbitMQ answers at {base} (.ci/run starts one)"
    return None
