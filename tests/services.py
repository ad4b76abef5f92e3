"""Real PostgreSQL and Redis servers for the ``services`` tests.

Each test session that asks for ``postgres_server`` / ``redis_server`` starts a private
instance in a temporary directory, listening only on 127.0.0.1 on a free port, with password
authentication, and stops it (by PID) when the session ends. Nothing system-wide is touched:
the Debian packages only provide the binaries (``tests/install_services.sh`` installs them;
``.ci/run`` calls it).

PostgreSQL refuses to run as root, so when the tests run as root ``initdb`` and ``postgres``
run as the ``postgres`` system user (created by the Debian package; created here with
``useradd`` if it is missing), through ``subprocess.Popen(user=..., group=...)``.

Usage in a test module::

    from services import postgres_server, redis_server  # noqa: F401  (pytest fixtures)
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

INSTALL_HINT = (
    "run `bash tests/install_services.sh` (as root: it apt-get installs postgresql and "
    "redis-server), then run the tests again"
)
START_TIMEOUT = 30.0

# Login roles of the test PostgreSQL (each owns a database of the same name) and their
# passwords. Fixed, so that module-level @autoreconnect classes in tests can name them; the
# servers only listen on 127.0.0.1 and live for one test session.
PG_USERS = {"sk_main": "main-secret", "sk_analytics": "analytics-secret", "sk_seed": "secret"}
REDIS_PASSWORD = "redis-secret"


# -- helpers ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _postgres_bindir() -> str | None:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/postgres"),
        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0,
    )
    for path in reversed(found):
        bindir = os.path.dirname(path)
        if all(os.access(os.path.join(bindir, b), os.X_OK) for b in ("initdb", "postgres")):
            return bindir
    return None


def _stop_pid(proc: subprocess.Popen[Any], sig: int, grace: float = 15.0) -> None:
    """Stop one server we started, by its PID: ``sig`` first, SIGKILL after ``grace`` s."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, sig)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(5)


def _tail(path: str, n: int = 30) -> str:
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return "(no log)"


def _as_user(name: str) -> dict[str, Any]:
    """Popen arguments that run the program as ``name`` (only when we are root)."""
    if os.geteuid() != 0:
        return {}
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            check=True,
        )
        pw = pwd.getpwnam(name)
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}


def _chown_tree(path: str, kwargs: dict[str, Any]) -> None:
    if "user" not in kwargs:
        return
    for root, dirs, files in os.walk(path):
        os.chown(root, kwargs["user"], kwargs["group"])
        for name in dirs + files:
            os.chown(os.path.join(root, name), kwargs["user"], kwargs["group"])


# -- PostgreSQL ---------------------------------------------------------------------------------


@dataclass
class PostgresServer:
    """A running private PostgreSQL server.

    ``users`` maps each login role to its password; every role owns a database of the same
    name. ``user``/``password``/``dbname`` are the first (main) role.
    """

    host: str
    port: int
    pid: int
    datadir: str
    users: dict[str, str] = field(default_factory=dict)

    @property
    def user(self) -> str:
        return next(iter(self.users))

    @property
    def password(self) -> str:
        return self.users[self.user]

    @property
    def dbname(self) -> str:
        return self.user

    def params(self, user: str | None = None, *, password: bool = True) -> dict[str, Any]:
        """Keyword arguments for ``psycopg2.connect`` / ``psycopg.connect``."""
        user = user or self.user
        out: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "dbname": user,
            "user": user,
            "connect_timeout": 10,
        }
        if password:
            out["password"] = self.users[user]
        return out


def _psql(bindir: str, port: int, superuser: str, superpw: str, sql: str) -> None:
    env = dict(os.environ, PGPASSWORD=superpw, PGCONNECT_TIMEOUT="10")
    subprocess.run(
        [
            os.path.join(bindir, "psql"),
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            superuser,
            "-d",
            "postgres",
            "-c",
            sql,
        ],
        env=env,
        check=True,
        capture_output=True,
        timeout=30,
    )


@contextlib.contextmanager
def start_postgres(users: dict[str, str] | None = None) -> Iterator[PostgresServer]:
    bindir = _postgres_bindir()
    if bindir is None or not os.access(os.path.join(bindir, "psql"), os.X_OK):
        pytest.fail(
            f"PostgreSQL binaries not found under /usr/lib/postgresql/*/bin: {INSTALL_HINT}"
        )
    run_as = _as_user("postgres")
    tmp = tempfile.mkdtemp(prefix="suitkaise_nb_pg_")
    os.chmod(tmp, 0o755)
    datadir = os.path.join(tmp, "data")
    log = os.path.join(tmp, "postgres.log")
    superuser, superpw = "sk_super", secrets.token_hex(12)
    pwfile = os.path.join(tmp, "pwfile")
    with open(pwfile, "w") as f:
        f.write(superpw + "\n")
    _chown_tree(tmp, run_as)
    proc: subprocess.Popen[Any] | None = None
    try:
        init = subprocess.run(
            [
                os.path.join(bindir, "initdb"),
                "-D",
                datadir,
                "-U",
                superuser,
                f"--pwfile={pwfile}",
                "--auth-local=scram-sha-256",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ],
            capture_output=True,
            text=True,
            cwd=tmp,
            timeout=120,
            **run_as,
        )
        if init.returncode != 0:
            pytest.fail(f"initdb failed ({init.returncode}):\n{init.stdout}\n{init.stderr}")
        os.unlink(pwfile)
        port = free_port()
        with open(log, "w") as logf:
            _chown_tree(log, run_as)
            proc = subprocess.Popen(
                [
                    os.path.join(bindir, "postgres"),
                    "-D",
                    datadir,
                    "-p",
                    str(port),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "unix_socket_directories=",
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                    "-c",
                    "shared_buffers=16MB",
                    "-c",
                    "max_connections=50",
                    "-c",
                    "dynamic_shared_memory_type=mmap",
                    "-c",
                    "password_encryption=scram-sha-256",
                ],
                stdout=logf,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=tmp,
                start_new_session=True,
                **run_as,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"postgres exited with {proc.returncode}:\n{_tail(log)}")
            try:
                _psql(bindir, port, superuser, superpw, "SELECT 1")
                break
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
                if time.monotonic() > deadline:
                    err = getattr(exc, "stderr", b"") or b""
                    pytest.fail(
                        f"postgres did not accept connections within {START_TIMEOUT} s: "
                        f"{err.decode(errors='replace')}\n{_tail(log)}"
                    )
                time.sleep(0.2)
        users = dict(PG_USERS if users is None else users)
        for role, pw in users.items():
            _psql(bindir, port, superuser, superpw, f"CREATE ROLE {role} LOGIN PASSWORD '{pw}'")
            _psql(bindir, port, superuser, superpw, f"CREATE DATABASE {role} OWNER {role}")
        yield PostgresServer("127.0.0.1", port, proc.pid, datadir, users)
    finally:
        if proc is not None:
            _stop_pid(proc, signal.SIGINT)  # SIGINT = PostgreSQL's "fast" shutdown
        shutil.rmtree(tmp, ignore_errors=True)


# -- Redis -----------------------------------------------------------------------------------------


@dataclass
class RedisServer:
    """A running private Redis server (``requirepass`` = ``password``)."""

    host: str
    port: int
    pid: int
    password: str

    def params(self, *, password: bool = True) -> dict[str, Any]:
        """Keyword arguments for ``redis.Redis``."""
        out: dict[str, Any] = {"host": self.host, "port": self.port, "socket_timeout": 10}
        if password:
            out["password"] = self.password
        return out


def _redis_ping(port: int, password: str) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as s:
            s.sendall(f"AUTH {password}\r\nPING\r\n".encode())
            data = b""
            while data.count(b"\r\n") < 2:
                chunk = s.recv(1024)
                if not chunk:
                    break
                data += chunk
            return data.startswith(b"+OK\r\n+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def start_redis(password: str = REDIS_PASSWORD) -> Iterator[RedisServer]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail(f"redis-server not found: {INSTALL_HINT}")
    tmp = tempfile.mkdtemp(prefix="suitkaise_nb_redis_")
    port = free_port()
    log = os.path.join(tmp, "redis.log")
    proc: subprocess.Popen[Any] | None = None
    try:
        with open(log, "w") as logf:
            proc = subprocess.Popen(
                [
                    binary,
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--requirepass",
                    password,
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--daemonize",
                    "no",
                    "--dir",
                    tmp,
                ],
                stdout=logf,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=tmp,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not _redis_ping(port, password):
            if proc.poll() is not None:
                pytest.fail(f"redis-server exited with {proc.returncode}:\n{_tail(log)}")
            if time.monotonic() > deadline:
                pytest.fail(f"redis-server did not answer within {START_TIMEOUT} s:\n{_tail(log)}")
            time.sleep(0.05)
        yield RedisServer("127.0.0.1", port, proc.pid, password)
    finally:
        if proc is not None:
            _stop_pid(proc, signal.SIGTERM)
        shutil.rmtree(tmp, ignore_errors=True)


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A private PostgreSQL on 127.0.0.1 with the roles of ``PG_USERS``."""
    with start_postgres() as server:
        yield server


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A private Redis on 127.0.0.1 with the password ``REDIS_PASSWORD``."""
    with start_redis() as server:
        yield server
