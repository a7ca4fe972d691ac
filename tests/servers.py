"""Throwaway servers for tests: free ports, a real redis-server to kill, a silent socket."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A redis-server on 127.0.0.1:`port`, stopped by PID; it can be SIGKILLed and started
    again, empty, on the same port, or frozen (SIGSTOP) and thawed (SIGCONT)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._start()

    def _start(self) -> None:
        executable = shutil.which("redis-server")
        assert executable, "redis-server is not installed"
        self.process = subprocess.Popen(
            [
                executable,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 5
        while True:
            try:
                redis.Redis(port=self.port, socket_timeout=0.2).ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    self.kill()
                    raise
                time.sleep(0.02)

    def kill(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)  # frozen or not, it goes at once
            self.process.kill()
            self.process.wait(timeout=5)

    def restart_empty(self) -> None:
        self.kill()
        self._start()

    def freeze(self) -> None:
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)

    def cache_settings(self, *, timeout_seconds: float = 0.25, prefix: str = "t") -> dict[str, Any]:
        return {
            "default": {
                "BACKEND": "django_redis.cache.RedisCache",
                "LOCATION": self.url,
                "KEY_PREFIX": prefix,
                "OPTIONS": {
                    "CLIENT_CLASS": "django_redis.client.DefaultClient",
                    "SOCKET_CONNECT_TIMEOUT": timeout_seconds,
                    "SOCKET_TIMEOUT": timeout_seconds,
                },
            }
        }


@contextmanager
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    try:
        yield server
    finally:
        server.kill()


@contextmanager
def silent_tcp_server() -> Iterator[int]:
    """A port that completes the TCP handshake and then never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        yield int(server.getsockname()[1])


def database_url(db: dict[str, Any]) -> str:
    """A DATABASE_URL for a Django database settings dict (the test database, once set up)."""
    from urllib.parse import quote

    credentials = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        credentials += f":{quote(db['PASSWORD'], safe='')}"
    host = f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    return f"postgres://{credentials}@{host}/{quote(db['NAME'], safe='')}"


def project_env(**extra: str) -> dict[str, str]:
    """Environment for a project process that must share this test's database and Redis."""
    import os

    from django.conf import settings
    from django.db import connection

    env = dict(os.environ)
    env.update(
        DJANGO_READ_DOT_ENV_FILE="0",
        DATABASE_URL=database_url(connection.settings_dict),
        REDIS_URL=settings.CACHES["default"]["LOCATION"],
        CACHE_KEY_PREFIX=settings.CACHES["default"]["KEY_PREFIX"],
        CELERY_BROKER_URL="",
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.update(extra)
    return env


class GunicornServer:
    """The project under gunicorn on 127.0.0.1 with its real config; stopped by PID."""

    def __init__(
        self,
        *,
        workers: int,
        env: dict[str, str],
        log_path: Any,
        ready_path: str = "/health/live",
        start_timeout_seconds: float = 20.0,
    ) -> None:
        import sys
        from pathlib import Path

        import httpx

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        root = Path(__file__).resolve().parents[1]
        command = [sys.executable, "-m", "gunicorn", "--config", "ecommerce/gunicorn.conf.py"]
        command += ["--bind", f"127.0.0.1:{self.port}", "--workers", str(workers)]
        command += ["ecommerce.wsgi"]
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(
                command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + start_timeout_seconds
        while True:
            try:
                if httpx.get(f"{self.url}{ready_path}", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"gunicorn did not start:\n{Path(log_path).read_text()}")
            time.sleep(0.1)

    def stop(self) -> int | None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        return self.process.returncode


def _postgres_bin(name: str) -> str:
    """A binary of the newest local PostgreSQL (Debian keeps them off PATH)."""
    import glob

    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    assert found, f"PostgreSQL's {name} is not installed"
    return found[-1]


class PostgresServer:
    """A throwaway PostgreSQL cluster on 127.0.0.1:`port` (trust auth, user postgres).

    initdb refuses to run as root, so when the suite runs as root the cluster belongs to
    the `postgres` system user and its commands run through `runuser`. `stop()` is a clean
    shutdown (the data stays, `start()` brings it back: a database outage); `kill()` is
    SIGKILL of the postmaster by PID.
    """

    def __init__(self) -> None:
        import os
        import pwd
        import tempfile

        self.port = free_port()
        self._as_root = os.geteuid() == 0
        self.directory = tempfile.mkdtemp(prefix="pg-throwaway-")
        self.data = f"{self.directory}/data"
        if self._as_root:
            owner = pwd.getpwnam("postgres")
            os.chown(self.directory, owner.pw_uid, owner.pw_gid)
        self._run(
            [_postgres_bin("initdb"), "-D", self.data, "-U", "postgres", "-A", "trust"],
            timeout=60,
        )
        self.start()

    def _command(self, command: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *command] if self._as_root else command

    def _run(self, command: list[str], *, timeout: float) -> None:
        subprocess.run(
            self._command(command),
            check=True,
            timeout=timeout,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def url(self, name: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    @property
    def pid(self) -> int | None:
        from pathlib import Path

        pidfile = Path(self.data) / "postmaster.pid"
        try:
            return int(pidfile.read_text().split("\n", 1)[0])
        except (FileNotFoundError, ValueError):
            return None

    def start(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories="
            f"{self.directory} -c fsync=off -c synchronous_commit=off -c max_connections=100"
        )
        self._run(
            [
                _postgres_bin("pg_ctl"),
                "-D",
                self.data,
                "-o",
                options,
                "-w",
                "-t",
                "30",
                "start",
                "-l",
                f"{self.directory}/server.log",
            ],
            timeout=40,
        )

    def stop(self) -> None:
        """A fast shutdown: clients are disconnected, the cluster can start again."""
        if self.pid is not None:
            self._run(
                [_postgres_bin("pg_ctl"), "-D", self.data, "-m", "fast", "-w", "stop"], timeout=40
            )

    def kill(self) -> None:
        import os
        import signal

        pid = self.pid
        if pid is not None:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.05)

    def create_database(self, name: str) -> str:
        import psycopg2

        connection = psycopg2.connect(self.url(), connect_timeout=5)
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            connection.close()
        return self.url(name)

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.directory, ignore_errors=True)


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    try:
        yield server
    finally:
        server.close()
