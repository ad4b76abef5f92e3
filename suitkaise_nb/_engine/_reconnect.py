"""``@autoreconnect``: live connections travel as placeholders and are reopened in the child.

A database connection cannot be pickled: it is a socket (or a file handle) plus a session
on a server. On an ``@autoreconnect`` class, shipping the process (``Skprocess.start()``, or a
Pool item) replaces every supported live connection by a :class:`Reconnector`, a small
picklable placeholder that holds the type and the connection parameters read from the live
object -- never the password. In the child, :func:`reconnect_instance` walks the rebuilt
process (its attributes, and one level into lists, tuples and dicts) and replaces every
placeholder by a new live connection, authenticated with the password given to the decorator::

    @autoreconnect(**{
        "psycopg2.Connection": {"*": "default_pass", "analytics_db": "analytics_pass"},
        "redis.Redis": {"*": "redis_secret"},
    })
    class Worker(Skprocess): ...

Auth lookup for a placeholder found at ``self.<attr>`` (or ``self.<attr>[i]``): the exact
path (``"conns[0]"``), then the attribute name, then ``"*"``; with none of them the
connection is reopened without a password. An auth value is the password string, ``None``,
or a dict of connection keywords that override what was read from the live object (for
instance ``{"password": "pw", "host": "replica"}``).

Supported types (the key is matched case-insensitively, real class names work too):

=============================  ============================================================
``sqlite3.Connection``         the database file (``PRAGMA database_list``), isolation level,
                               row factory, attached database files; ``:memory:`` and
                               temporary databases cannot be reopened (a clear error)
``psycopg2.Connection``        ``conn.dsn`` (password masked) + ``get_dsn_parameters()``
                               (host, port, dbname, user), autocommit / session settings
``psycopg.Connection``         ``conn.info.get_parameters()`` + host/port/dbname/user,
                               autocommit, read-only, isolation level, row factory
``redis.Redis``                the pool's ``connection_kwargs`` minus the password (host,
                               port, db, username, unix socket, TLS, decoding...)
``pymongo.MongoClient``        seeds, user name, auth source/mechanism, plain options
                               (only when pymongo is installed)
=============================  ============================================================

No driver is imported unless the decorator names it or the program already imported it.

``start_threads=True`` opens the network connections concurrently, one thread each, so that
a process holding several connections pays one round of connection/TLS/auth latency instead
of one per connection. sqlite3 connections are always opened in the calling thread (the
lifecycle's thread): sqlite3 objects may only be used in the thread that created them.

A connection that cannot be shipped raises :class:`ShippingError` in the parent, naming the
attribute (``Worker.db (sqlite3.Connection)``). One that cannot be reopened in the child (a
wrong password, a server that is down) fails the process with :class:`ReconnectError` -- a
:class:`PreRunError` and a :class:`ShippingError` -- that names the attribute, the type and
the reason; ``__prerun__`` never runs.
"""

from __future__ import annotations

import sys
import traceback
import warnings
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from .._errors import (
    NotShippable,
    ProcessError,
    ReconnectError,
    ShippingError,
    UnsupportedConnection,
)
from . import _serial
from ._drivers import ALIASES, KINDS, Kind, supported
from ._section import is_skprocess_class

__all__ = [
    "AutoreconnectSpec",
    "ReconnectError",
    "Reconnector",
    "autoreconnect",
    "reconnect_in_child",
    "reconnect_instance",
    "reconnect_reducers",
    "reconnect_shipping",
    "spec_of",
]

_SPEC_ATTR = "_sk_autoreconnect"


# -- errors -------------------------------------------------------------------------------------


# -- the placeholder ---------------------------------------------------------------------------


class Reconnector:
    """Stands for a live connection while the process travels; see :func:`autoreconnect`.

    ``kind`` is the driver key ("psycopg2", "redis"...), ``params`` the keyword arguments of
    the connect call (never a password), ``options`` settings applied after connecting and
    ``factory`` the connection class when it is a subclass of the driver's own.
    """

    __slots__ = ("factory", "kind", "options", "params", "type_name")

    def __init__(
        self,
        kind: str,
        type_name: str,
        params: dict[str, Any],
        options: dict[str, Any] | None = None,
        factory: Any = None,
    ) -> None:
        self.kind = kind
        self.type_name = type_name
        self.params = params
        self.options = options or {}
        self.factory = factory

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            Reconnector,
            (self.kind, self.type_name, self.params, self.options, self.factory),
        )

    def reconnect(self, auth: Any = None) -> Any:
        """Open a new live connection; ``auth`` is a password, None, or a dict of keywords."""
        kind = KINDS[self.kind]
        return kind.connect(self, _auth_kwargs(auth))

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{k}={v!r}"
            for k, v in self.params.items()
            if k in ("database", "host", "port", "dbname", "user", "db", "username", "path")
        )
        return f"<Reconnector for {self.type_name} ({shown})>"

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in Reconnector.__slots__:
            raise AttributeError(name)
        raise AttributeError(
            f"{self!r} has no attribute {name!r}: it is the placeholder @autoreconnect ships "
            f"instead of the live connection. It is replaced by a live connection after "
            f"__init__ and before __prerun__, for placeholders held directly by the process "
            f"(self.x, or one level into a list/tuple/dict); call .reconnect(password) to "
            f"open one yourself"
        )


# -- the decorator and its spec ---------------------------------------------------------------


class AutoreconnectSpec:
    """What ``@autoreconnect(...)`` stored on a class (``cls._sk_autoreconnect``).

    ``auth`` maps a driver key ("psycopg2", "redis"...) to ``{"*" or attribute: value}``;
    ``names`` keeps the type names as the user wrote them (for messages). The repr never shows
    a password.
    """

    __slots__ = ("auth", "names", "start_threads")

    def __init__(
        self,
        start_threads: bool,
        auth: dict[str, dict[str, Any]],
        names: dict[str, str],
    ) -> None:
        self.start_threads = start_threads
        self.auth = auth
        self.names = names

    def __reduce__(self) -> tuple[Any, ...]:
        return (AutoreconnectSpec, (self.start_threads, self.auth, self.names))

    def __repr__(self) -> str:
        shown = {self.names.get(k, k): sorted(v) for k, v in self.auth.items()}
        return f"AutoreconnectSpec(start_threads={self.start_threads}, auth keys={shown})"

    def auth_for(self, kind: str, path: str, attr: str) -> tuple[Any, str | None]:
        """The auth value for a placeholder at ``path`` (attribute ``attr``) and its key."""
        table = self.auth.get(kind, {})
        for key in (path, attr, "*"):
            if key in table:
                return table[key], key
        return None, None


def _auth_kwargs(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, str):
        return {"password": value}
    return dict(value)


def _check_auth_value(type_key: str, kind: Kind, attr: Any, value: Any) -> None:
    where = f"@autoreconnect auth for {type_key!r}"
    if not isinstance(attr, str) or not attr:
        raise TypeError(f"{where}: keys must be '*' or attribute names (str), got {attr!r}")
    if value is None:
        return
    if isinstance(value, str):
        if not kind.takes_password:
            raise TypeError(
                f"{where}[{attr!r}]: {kind.label} connections take no password; "
                f"use None, or a dict of connect() keywords"
            )
        return
    if isinstance(value, Mapping):
        bad = [k for k in value if not isinstance(k, str)]
        if bad:
            raise TypeError(f"{where}[{attr!r}]: keyword names must be str, got {bad[0]!r}")
        return
    raise TypeError(
        f"{where}[{attr!r}] must be the password (str), None, or a dict of connect() "
        f"keywords; got {type(value).__name__}"
    )


def _build_spec(start_threads: Any, auth: dict[str, Any]) -> AutoreconnectSpec:
    if not isinstance(start_threads, bool):
        raise TypeError(f"autoreconnect(start_threads=...) must be a bool, got {start_threads!r}")
    table: dict[str, dict[str, Any]] = {}
    names: dict[str, str] = {}
    for type_key, per_attr in auth.items():
        kind_key = ALIASES.get(type_key.lower())
        if kind_key is None:  # as suitkaise: the class stays usable, the key does nothing
            warnings.warn(
                f"@autoreconnect does not know {type_key!r}, so it reconnects nothing of that "
                f"type: supported types are {supported()} (written as 'module.Type')",
                UserWarning,
                stacklevel=4,
            )
            continue
        kind = KINDS[kind_key]
        if kind_key in table:
            raise TypeError(
                f"@autoreconnect got {names[kind_key]!r} and {type_key!r}, which name the same "
                f"type; give its auth once"
            )
        if not isinstance(per_attr, Mapping):
            example = '{"*": "password", "attr_name": "other password"}'
            raise TypeError(
                f"@autoreconnect auth for {type_key!r} must be a dict like {example}, "
                f"got {type(per_attr).__name__}"
            )
        for attr, value in per_attr.items():
            _check_auth_value(type_key, kind, attr, value)
        table[kind_key] = dict(per_attr)
        names[kind_key] = type_key
    return AutoreconnectSpec(start_threads, table, names)


def autoreconnect(cls: Any = None, /, *, start_threads: bool = False, **auth: Any) -> Any:
    """Class decorator: ship this Skprocess's live connections and reopen them in the child.

    ``auth`` keys are "module.Type" names (``"psycopg2.Connection"``, ``"psycopg.Connection"``,
    ``"redis.Redis"``, ``"sqlite3.Connection"``, ``"pymongo.MongoClient"``); each value maps
    ``"*"`` (default) and attribute names (overrides) to the password. ``start_threads=True``
    reopens network connections concurrently. Also usable bare: ``@autoreconnect``.
    """
    spec = _build_spec(start_threads, auth)

    def decorate(klass: Any) -> Any:
        if not is_skprocess_class(klass):
            what = klass.__qualname__ if isinstance(klass, type) else repr(klass)
            raise TypeError(f"@autoreconnect decorates Skprocess subclasses; {what} is not one")
        setattr(klass, _SPEC_ATTR, spec)
        return klass

    if cls is not None:
        return decorate(cls)
    return decorate


def spec_of(cls: type) -> AutoreconnectSpec | None:
    """The ``@autoreconnect`` spec of a class (inherited by subclasses), or None."""
    spec = getattr(cls, _SPEC_ATTR, None)
    return spec if isinstance(spec, AutoreconnectSpec) else None


# -- parent side: reducers -------------------------------------------------------------------------


def _type_name(obj: Any) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def _with_subclasses(base: type) -> Iterator[type]:
    seen: set[type] = set()
    todo = [base]
    while todo:
        t = todo.pop()
        if t in seen:
            continue
        seen.add(t)
        yield t
        try:
            todo.extend(t.__subclasses__())
        except TypeError:
            pass


def _reducer(kind: Kind) -> Callable[[Any], tuple[Any, ...]]:
    def reduce(obj: Any) -> tuple[Any, ...]:
        tname = _type_name(obj)
        try:
            params, options, factory = kind.describe(obj)
        except UnsupportedConnection as exc:
            raise NotShippable(obj, tname, exc.reason, exc.hint)
        except Exception as exc:
            raise NotShippable(
                obj, tname, f"its connection parameters could not be read ({exc!r})", ""
            )
        return (Reconnector, (kind.key, tname, params, options, factory))

    return reduce


def reconnect_reducers(spec: AutoreconnectSpec | None) -> dict[type, Any]:
    """``{type: reducer}`` for :func:`_serial.extra_reducers`: live connections → placeholders.

    Covers the kinds the spec names (their driver is imported if installed) and those whose
    driver the program already imported; never imports another driver.
    """
    if spec is None:
        return {}
    table: dict[type, Any] = {}
    for kind in KINDS.values():
        if kind.key not in spec.auth and kind.module not in sys.modules:
            continue
        try:
            bases = kind.load()
        except ImportError:
            continue
        red = _reducer(kind)
        for base in bases:
            for t in _with_subclasses(base):
                table[t] = red
    return table


def _locate(root: Any, target: Any, what: str, depth: int = 6) -> str | None:
    """Path of ``target`` inside ``root`` by identity (``what.attr[0]``), None if not found."""
    todo: list[tuple[Any, str, int]] = [(root, what, 0)]
    seen: set[int] = set()
    while todo:
        obj, path, level = todo.pop(0)
        if obj is target:
            return path
        if id(obj) in seen or level >= depth:
            continue
        seen.add(id(obj))
        children: Iterator[tuple[str, Any]]
        if isinstance(obj, dict):
            children = ((f"[{k!r}]", v) for k, v in list(obj.items())[:1000])
        elif isinstance(obj, list | tuple | set | frozenset):
            children = ((f"[{i}]", v) for i, v in enumerate(list(obj)[:1000]))
        else:
            state = getattr(obj, "__dict__", None)
            if not isinstance(state, dict):
                continue
            children = ((f".{k}", v) for k, v in state.items() if not k.startswith("_sk"))
        for suffix, child in children:
            todo.append((child, path + suffix, level + 1))
    return None


@contextmanager
def reconnect_shipping(spec: AutoreconnectSpec | None, root: Any, what: str) -> Iterator[None]:
    """Serialize ``root`` inside this context to ship live connections as placeholders.

    ``what`` names the root in errors (the class name for a process, e.g. "item 3" for a Pool
    item); a connection that cannot be shipped raises :class:`ShippingError` naming its path.
    No-op when ``spec`` is None.
    """
    if spec is None:
        yield
        return
    with _serial.extra_reducers(reconnect_reducers(spec)):
        try:
            yield
        except NotShippable as exc:
            path = _locate(root, exc.obj, what) or f"an object inside {what}"
            hint = exc.hint or (
                "create the connection in __prerun__ (it runs in the child) instead"
            )
            raise ShippingError(
                f"cannot ship {path} ({exc.type_name}) to another process: {exc.reason}. "
                f"Hint: {hint}.",
                path=path,
                type_name=exc.type_name,
            ) from None


# -- child side -------------------------------------------------------------------------------


@dataclass
class _Slot:
    path: str
    attr: str
    placeholder: Reconnector
    container: Any
    key: Any


def _slots(state: dict[str, Any]) -> tuple[list[_Slot], list[tuple[str, list[Any]]]]:
    """Placeholders in ``state`` and one level below; tuples are edited as lists then rebuilt."""
    slots: list[_Slot] = []
    tuples: list[tuple[str, list[Any]]] = []
    for name, value in list(state.items()):
        if name.startswith("_sk"):
            continue
        if isinstance(value, Reconnector):
            slots.append(_Slot(name, name, value, state, name))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                if isinstance(v, Reconnector):
                    slots.append(_Slot(f"{name}[{i}]", name, v, value, i))
        elif isinstance(value, dict):
            for k, v in value.items():
                if isinstance(v, Reconnector):
                    slots.append(_Slot(f"{name}[{k!r}]", name, v, value, k))
        elif isinstance(value, tuple) and any(isinstance(v, Reconnector) for v in value):
            items = list(value)
            tuples.append((name, items))
            for i, v in enumerate(items):
                if isinstance(v, Reconnector):
                    slots.append(_Slot(f"{name}[{i}]", name, v, items, i))
    return slots, tuples


def _close_quietly(obj: Any) -> None:
    close = getattr(obj, "close", None)
    if close is not None:
        try:
            close()
        except Exception:
            pass


def _open(owner: str, spec: AutoreconnectSpec, slot: _Slot) -> Any:
    r = slot.placeholder
    kind = KINDS.get(r.kind)
    path = f"{owner}.{slot.path}"
    if kind is None:
        raise ReconnectError(
            f"cannot reconnect {path} ({r.type_name}): unknown kind {r.kind!r}",
            path=path,
            type_name=r.type_name,
        )
    value, key = spec.auth_for(kind.key, slot.path, slot.attr)
    try:
        return kind.connect(r, _auth_kwargs(value))
    except Exception as exc:
        label = spec.names.get(kind.key, kind.label)
        if key is not None:
            used = f"auth from @autoreconnect {label!r} key {key!r}"
        elif kind.takes_password:
            used = f"no password: @autoreconnect has no {label!r} auth for {slot.attr!r} or '*'"
        else:
            used = "no auth"
        raise ReconnectError(
            f"could not reconnect {path} ({r.type_name}) in the child process "
            f"({used}): {type(exc).__name__}: {str(exc).strip()}",
            path=path,
            type_name=r.type_name,
            original_error=exc,
            remote_traceback="".join(traceback.format_exception(exc)),
        ) from exc


def reconnect_instance(proc: Any, spec: AutoreconnectSpec | None = None) -> list[str]:
    """Replace the :class:`Reconnector` placeholders of ``proc`` by live connections.

    Looks at ``proc.__dict__`` and one level into its lists, tuples and dicts. Returns the
    reconnected paths. Raises :class:`ReconnectError` (naming attribute, type and reason) on
    the first failure, after closing the connections it had opened.
    """
    spec = spec if spec is not None else spec_of(type(proc))
    if spec is None:
        spec = AutoreconnectSpec(False, {}, {})
    owner = type(proc).__name__
    state = proc.__dict__
    slots, tuples = _slots(state)
    if not slots:
        return []
    # one connection per placeholder object (pickle keeps identity: self.a = self.b = conn)
    first: dict[int, _Slot] = {}
    for slot in slots:
        first.setdefault(id(slot.placeholder), slot)
    unique = list(first.values())
    opened: dict[int, Any] = {}
    errors: dict[int, BaseException] = {}

    def run(slot: _Slot) -> None:
        try:
            opened[id(slot.placeholder)] = _open(owner, spec, slot)
        except BaseException as exc:
            errors[id(slot.placeholder)] = exc

    threaded = [s for s in unique if _threadable(s)] if spec.start_threads else []
    if len(threaded) > 1:
        with ThreadPoolExecutor(
            max_workers=min(len(threaded), 16), thread_name_prefix="suitkaise_nb-reconnect"
        ) as pool:
            futures = [pool.submit(run, s) for s in threaded]
            in_threads = {id(s) for s in threaded}
            for s in unique:  # sqlite3 stays in this thread (its objects are thread-bound)
                if id(s) not in in_threads and not errors:
                    run(s)
            for f in futures:
                f.result()
    else:
        for s in unique:
            run(s)
            if errors:
                break
    if errors:
        for live in opened.values():
            _close_quietly(live)
        failed = next(s for s in unique if id(s.placeholder) in errors)
        raise errors[id(failed.placeholder)]
    for slot in slots:
        slot.container[slot.key] = opened[id(slot.placeholder)]
    for name, items in tuples:
        old = state[name]
        state[name] = type(old)._make(items) if hasattr(old, "_fields") else type(old)(items)
    return [s.path for s in slots]


def _threadable(slot: _Slot) -> bool:
    kind = KINDS.get(slot.placeholder.kind)
    return kind is not None and kind.threadable


def reconnect_in_child(proc: Any) -> ProcessError | None:
    """Child hook: reconnect ``proc``'s placeholders; the error to fail the process with."""
    spec = spec_of(type(proc))
    try:
        reconnect_instance(proc, spec)
    except ProcessError as exc:
        return exc
    except BaseException as exc:
        return ReconnectError(
            f"@autoreconnect failed in {type(proc).__name__}: {type(exc).__name__}: {exc}",
            original_error=exc,
            remote_traceback="".join(traceback.format_exception(exc)),
        )
    return None
