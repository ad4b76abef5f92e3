"""The database drivers ``@autoreconnect`` knows: how each live connection is described
(never its password), reopened, and recognised.

One :class:`Kind` per driver; the mechanism that uses them (placeholders, reducers, reopening
in the child) is ``_reconnect``. A driver module is imported only when the decorator names its
type or the program already imported it (``Kind.load``).

To support another driver, add a ``Kind`` to :data:`KINDS` with three functions: ``load`` (the
connection classes, importing the driver), ``describe`` (live object -> connect keywords without
secrets, options to apply after connecting, the subclass to build), ``connect`` (placeholder +
auth -> a new live connection).
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._errors import UnsupportedConnection

if TYPE_CHECKING:
    from ._reconnect import Reconnector

SECRET_KEYS = frozenset({"password", "sslpassword", "ssl_password"})


@dataclass(frozen=True)
class Kind:
    key: str
    label: str
    module: str
    aliases: frozenset[str]
    takes_password: bool
    threadable: bool
    load: Callable[[], tuple[type, ...]]
    describe: Callable[[Any], tuple[dict[str, Any], dict[str, Any], Any]]
    connect: Callable[[Reconnector, dict[str, Any]], Any]


def _strip(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k not in SECRET_KEYS}


def _plain(value: Any, depth: int = 0) -> bool:
    """Values that always pickle and mean the same in another process."""
    if value is None or isinstance(value, bool | int | float | str | bytes):
        return True
    if depth < 2 and isinstance(value, list | tuple):
        return all(_plain(v, depth + 1) for v in value)
    if depth < 2 and isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v, depth + 1) for k, v in value.items())
    return False


def _subclass_factory(obj: Any, base: type) -> Any:
    cls = type(obj)
    return None if cls is base else cls


# sqlite3 ---------------------------------------------------------------------------------------


def _sqlite_load() -> tuple[type, ...]:
    import sqlite3

    return (sqlite3.Connection,)


def _sqlite_describe(conn: Any) -> tuple[dict[str, Any], dict[str, Any], Any]:
    import sqlite3

    try:
        rows = conn.execute("PRAGMA database_list").fetchall()
        in_tx = conn.in_transaction
    except sqlite3.ProgrammingError as exc:
        raise UnsupportedConnection(f"the connection cannot be used ({exc})")
    main = next((r for r in rows if r[1] == "main"), None)
    if main is None or not main[2]:
        raise UnsupportedConnection(
            "it is an in-memory (':memory:') or temporary sqlite3 database, which exists "
            "only inside this process and cannot be reopened in another one",
            "use a database file, or open the connection in __prerun__ (it runs in the child)",
        )
    if in_tx:
        warnings.warn(
            f"the sqlite3 connection to {main[2]!r} has uncommitted changes: the child's "
            f"connection will not see them (call commit() before starting the process)",
            stacklevel=2,
        )
    attached = [(r[1], r[2]) for r in rows if r[1] not in ("main", "temp") and r[2]]
    options: dict[str, Any] = {}
    if attached:
        options["attach"] = attached
    if conn.row_factory is sqlite3.Row:
        options["row_factory"] = "Row"
    params = {"database": main[2], "isolation_level": conn.isolation_level}
    return params, options, _subclass_factory(conn, sqlite3.Connection)


def _sqlite_connect(r: Reconnector, auth: dict[str, Any]) -> Any:
    import sqlite3

    kwargs = {**r.params, **auth}
    kwargs.pop("password", None)
    if r.factory is not None:
        kwargs.setdefault("factory", r.factory)
    conn = sqlite3.connect(**kwargs)
    try:
        for name, path in r.options.get("attach", ()):
            conn.execute("ATTACH DATABASE ? AS " + _quote_ident(name), (path,))
        if r.options.get("row_factory") == "Row":
            conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA schema_version").fetchone()  # opens the file: fail here, not later
    except BaseException:
        conn.close()
        raise
    return conn


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# psycopg2 ---------------------------------------------------------------------------------------


def _pg2_load() -> tuple[type, ...]:
    import psycopg2.extensions

    return (psycopg2.extensions.connection,)


def _pg2_describe(conn: Any) -> tuple[dict[str, Any], dict[str, Any], Any]:
    import psycopg2.extensions

    if conn.closed:
        raise UnsupportedConnection("the connection is closed")
    resolved = conn.get_dsn_parameters()
    params = {k: resolved[k] for k in ("host", "port", "dbname", "user") if resolved.get(k)}
    params.update(_strip(psycopg2.extensions.parse_dsn(conn.dsn)))
    options: dict[str, Any] = {"autocommit": bool(conn.autocommit)}
    if conn.isolation_level is not None:
        options["isolation_level"] = int(conn.isolation_level)
    if conn.readonly is not None:
        options["readonly"] = bool(conn.readonly)
    if conn.deferrable is not None:
        options["deferrable"] = bool(conn.deferrable)
    return params, options, _subclass_factory(conn, psycopg2.extensions.connection)


def _pg2_connect(r: Reconnector, auth: dict[str, Any]) -> Any:
    import psycopg2

    kwargs = {**r.params, **auth}
    if r.factory is not None:
        kwargs.setdefault("connection_factory", r.factory)
    conn = psycopg2.connect(**kwargs)
    try:
        session = {
            k: r.options[k] for k in ("isolation_level", "readonly", "deferrable") if k in r.options
        }
        if session:
            conn.set_session(**session)
        conn.autocommit = bool(r.options.get("autocommit", False))
    except BaseException:
        conn.close()
        raise
    return conn


# psycopg 3 --------------------------------------------------------------------------------------


def _pg3_load() -> tuple[type, ...]:
    import psycopg

    return (psycopg.Connection,)


def _pg3_describe(conn: Any) -> tuple[dict[str, Any], dict[str, Any], Any]:
    import psycopg

    if conn.closed:
        raise UnsupportedConnection("the connection is closed")
    info = conn.info
    params = _strip(info.get_parameters())
    for key in ("host", "port", "dbname", "user"):
        value = getattr(info, key, None)
        if value not in (None, "") and key not in params:
            params[key] = str(value)
    options: dict[str, Any] = {"autocommit": bool(conn.autocommit)}
    if conn.read_only is not None:
        options["read_only"] = bool(conn.read_only)
    if conn.isolation_level is not None:
        options["isolation_level"] = int(conn.isolation_level)
    row_factory = getattr(conn, "row_factory", None)
    if (
        getattr(row_factory, "__module__", "") == "psycopg.rows"
        and getattr(row_factory, "__name__", "") != "tuple_row"
    ):
        options["row_factory"] = row_factory
    return params, options, _subclass_factory(conn, psycopg.Connection)


def _pg3_connect(r: Reconnector, auth: dict[str, Any]) -> Any:
    import psycopg

    cls = r.factory if r.factory is not None else psycopg.Connection
    kwargs = {**r.params, **auth}
    extra: dict[str, Any] = {"autocommit": bool(r.options.get("autocommit", False))}
    if "row_factory" in r.options:
        extra["row_factory"] = r.options["row_factory"]
    conn = cls.connect(**kwargs, **extra)
    try:
        if "read_only" in r.options:
            conn.read_only = r.options["read_only"]
        if "isolation_level" in r.options:
            conn.isolation_level = psycopg.IsolationLevel(r.options["isolation_level"])
    except BaseException:
        conn.close()
        raise
    return conn


# redis --------------------------------------------------------------------------------------------


def _redis_load() -> tuple[type, ...]:
    import redis

    return (redis.Redis,)


def _redis_describe(client: Any) -> tuple[dict[str, Any], dict[str, Any], Any]:
    import redis

    pool = client.connection_pool
    raw = dict(pool.connection_kwargs)
    cls_name = getattr(pool.connection_class, "__name__", "")
    if "path" in raw:
        raw["unix_socket_path"] = raw.pop("path")
    if cls_name.startswith("SSL"):
        raw["ssl"] = True
    max_conn = getattr(pool, "max_connections", None)
    if isinstance(max_conn, int) and max_conn < 2**31 - 1:
        raw["max_connections"] = max_conn
    if getattr(client, "single_connection_client", False):
        raw["single_connection_client"] = True
    accepted = _init_parameters(type(client))
    params = {
        k: v
        for k, v in _strip(raw).items()
        if (accepted is None or k in accepted)
        and _plain(v)
        and k not in ("lib_name", "lib_version")
    }
    return params, {}, _subclass_factory(client, redis.Redis)


def _init_parameters(cls: type) -> frozenset[str] | None:
    try:
        sig = inspect.signature(cls)
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        return None
    return frozenset(sig.parameters)


def _redis_connect(r: Reconnector, auth: dict[str, Any]) -> Any:
    import redis

    cls = r.factory if r.factory is not None else redis.Redis
    kwargs = {**r.params, **auth}
    accepted = _init_parameters(cls)
    if accepted is not None:  # tolerate another redis-py version in the child
        kwargs = {k: v for k, v in kwargs.items() if k in accepted}
    client = cls(**kwargs)
    try:
        client.ping()  # authenticate now: a wrong password fails here, naming the attribute
    except BaseException:
        client.close()
        raise
    return client


# pymongo ------------------------------------------------------------------------------------------


def _mongo_load() -> tuple[type, ...]:
    import pymongo

    return (pymongo.MongoClient,)


def _mongo_describe(client: Any) -> tuple[dict[str, Any], dict[str, Any], Any]:
    import pymongo

    seeds = getattr(getattr(client, "_topology_settings", None), "seeds", None)
    if not seeds:
        address = client.address
        seeds = [address] if address else []
    hosts = sorted(f"{h}:{p}" for h, p in seeds)
    if not hosts:
        raise UnsupportedConnection("its server addresses could not be read")
    from pymongo import common

    # options as validated by pymongo: timeouts given in ms are kept in seconds; undo that
    in_seconds = {
        getattr(common, n, None)
        for n in (
            "validate_timeout_or_none",
            "validate_timeout_or_zero",
            "validate_timeout_or_none_or_zero",
            "validate_timeoutms",
        )
    } - {None}
    validators = getattr(common, "VALIDATORS", {})
    params: dict[str, Any] = {}
    for key, value in (getattr(client.options, "_options", None) or {}).items():
        low = key.lower()  # pymongo options are case-insensitive; keep one spelling
        if low in SECRET_KEYS or low == "connect" or not _plain(value):
            continue
        if (
            validators.get(low) in in_seconds
            and isinstance(value, int | float)
            and not isinstance(value, bool)
        ):
            value = value * 1000
        params[low] = value
    cred = getattr(getattr(client.options, "pool_options", None), "_credentials", None)
    if cred is not None:
        if getattr(cred, "username", None):
            params.setdefault("username", cred.username)
        if getattr(cred, "source", None):
            params.setdefault("authsource", cred.source)
        mech = getattr(cred, "mechanism", None)
        if mech and mech != "DEFAULT":
            params.setdefault("authmechanism", mech)
    params["host"] = hosts
    return params, {}, _subclass_factory(client, pymongo.MongoClient)


def _mongo_connect(r: Reconnector, auth: dict[str, Any]) -> Any:
    import pymongo

    cls = r.factory if r.factory is not None else pymongo.MongoClient
    client = cls(**{**r.params, **auth})
    try:
        client.admin.command("ping")
    except BaseException:
        client.close()
        raise
    return client


KINDS: dict[str, Kind] = {
    k.key: k
    for k in (
        Kind(
            "sqlite3",
            "sqlite3.Connection",
            "sqlite3",
            frozenset({"sqlite3.connection"}),
            False,
            False,
            _sqlite_load,
            _sqlite_describe,
            _sqlite_connect,
        ),
        Kind(
            "psycopg2",
            "psycopg2.Connection",
            "psycopg2",
            frozenset(
                {
                    "psycopg2.connection",
                    "psycopg2.extensions.connection",
                    "psycopg2._psycopg.connection",
                }
            ),
            True,
            True,
            _pg2_load,
            _pg2_describe,
            _pg2_connect,
        ),
        Kind(
            "psycopg",
            "psycopg.Connection",
            "psycopg",
            frozenset(
                {"psycopg.connection", "psycopg.connection.connection", "psycopg3.connection"}
            ),
            True,
            True,
            _pg3_load,
            _pg3_describe,
            _pg3_connect,
        ),
        Kind(
            "redis",
            "redis.Redis",
            "redis",
            frozenset(
                {
                    "redis.redis",
                    "redis.strictredis",
                    "redis.client.redis",
                    "redis.client.strictredis",
                }
            ),
            True,
            True,
            _redis_load,
            _redis_describe,
            _redis_connect,
        ),
        Kind(
            "pymongo",
            "pymongo.MongoClient",
            "pymongo",
            frozenset(
                {
                    "pymongo.mongoclient",
                    "pymongo.mongo_client.mongoclient",
                    "pymongo.synchronous.mongo_client.mongoclient",
                }
            ),
            True,
            True,
            _mongo_load,
            _mongo_describe,
            _mongo_connect,
        ),
    )
}
ALIASES = {alias: k.key for k in KINDS.values() for alias in k.aliases}


def supported() -> str:
    return ", ".join(repr(k.label) for k in KINDS.values())
