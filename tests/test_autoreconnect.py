"""@autoreconnect: live connections ship as placeholders and are reopened in the child.

The PostgreSQL and Redis tests run against real private servers on loopback
(``tests/services.py``; ``tests/install_services.sh`` installs the binaries).
"""

from __future__ import annotations

import pickle
import socket
import sqlite3
import subprocess
import sys
import threading

import pytest

from suitkaise_nb._engine import _serial
from suitkaise_nb._engine._reconnect import (
    ReconnectError,
    Reconnector,
    reconnect_instance,
    reconnect_shipping,
    spec_of,
)
from suitkaise_nb.processing import (
    PreRunError,
    ProcessError,
    ShippingError,
    Skprocess,
    autoreconnect,
)
from tests.services import PG_USERS, REDIS_PASSWORD

pytestmark = pytest.mark.timeout(60)

MAIN_PW = PG_USERS["sk_main"]
ANALYTICS_PW = PG_USERS["sk_analytics"]


# -- processes used by the tests (module level: shipped by reference) -----------------------------


@autoreconnect(**{"sqlite3.Connection": {}})
class SqliteReader(Skprocess):
    def __init__(self, db):
        self.db = db
        self.process_config.runs = 1
        self.rows = None

    def __run__(self):
        self.rows = self.db.execute("SELECT name, qty FROM items ORDER BY name").fetchall()
        self.db.execute("INSERT INTO items VALUES ('from-child', 99)")
        self.db.commit()

    def __result__(self):
        return self.rows, type(self.db).__name__


@autoreconnect(
    **{"psycopg2.Connection": {"*": MAIN_PW, "analytics_db": ANALYTICS_PW}},
)
class Pg2Worker(Skprocess):
    def __init__(self, main_db, analytics_db):
        self.main_db = main_db
        self.analytics_db = analytics_db
        self.process_config.runs = 1

    def __run__(self):
        out = {}
        for name in ("main_db", "analytics_db"):
            conn = getattr(self, name)
            cur = conn.cursor()
            cur.execute("SELECT current_user, label FROM notes ORDER BY label")
            out[name] = cur.fetchall()
            cur.close()
        self.out = out

    def __result__(self):
        return self.out


@autoreconnect(
    **{"psycopg2.Connection": {"*": MAIN_PW, "analytics_db": "not-the-password"}},
)
class Pg2WrongPassword(Pg2Worker):
    pass


@autoreconnect(**{"psycopg.Connection": {"*": MAIN_PW, "analytics_db": ANALYTICS_PW}})
class Pg3Worker(Skprocess):
    def __init__(self, main_db, analytics_db):
        self.main_db = main_db
        self.analytics_db = analytics_db
        self.process_config.runs = 1

    def __run__(self):
        self.out = {
            name: getattr(self, name)
            .execute("SELECT current_user, label FROM notes ORDER BY label")
            .fetchall()
            for name in ("main_db", "analytics_db")
        }
        self.autocommit = self.main_db.autocommit

    def __result__(self):
        return self.out, self.autocommit


@autoreconnect(**{"psycopg.Connection": {"*": "wrong"}})
class Pg3WrongPassword(Skprocess):
    def __init__(self, db):
        self.db = db
        self.process_config.runs = 1

    def __prerun__(self):
        raise AssertionError("__prerun__ must not run when reconnecting failed")

    def __run__(self):
        pass


@autoreconnect(**{"redis.Redis": {"*": REDIS_PASSWORD}})
class RedisWorker(Skprocess):
    def __init__(self, cache):
        self.cache = cache
        self.process_config.runs = 1

    def __run__(self):
        self.seen = self.cache.get("sk:parent")
        self.cache.set("sk:child", "hello from the child")

    def __result__(self):
        return self.seen


@autoreconnect(**{"redis.Redis": {}})
class RedisNoPassword(RedisWorker):
    pass


@autoreconnect(
    start_threads=True,
    **{
        "psycopg2.Connection": {"*": MAIN_PW, "analytics_db": ANALYTICS_PW},
        "psycopg.Connection": {"*": MAIN_PW},
        "redis.Redis": {"*": REDIS_PASSWORD},
    },
)
class ThreadedWorker(Skprocess):
    def __init__(self, main_db, analytics_db, pg3, cache, lite, more):
        self.main_db = main_db
        self.analytics_db = analytics_db
        self.pg3 = pg3
        self.cache = cache
        self.lite = lite
        self.more = more  # a dict of connections: one level deep
        self.process_config.runs = 1

    def __run__(self):
        cur = self.main_db.cursor()
        cur.execute("SELECT current_user")
        a = cur.fetchone()[0]
        cur = self.analytics_db.cursor()
        cur.execute("SELECT current_user")
        b = cur.fetchone()[0]
        c = self.pg3.execute("SELECT current_user").fetchone()[0]
        d = self.cache.get("sk:parent")
        # sqlite3 objects are bound to their thread: this works only if it was opened here
        e = self.lite.execute("SELECT count(*) FROM items").fetchone()[0]
        f = self.more["lite"].execute("SELECT 1").fetchone()[0]
        g = self.more["r"].ping()
        self.out = (a, b, c, d, e, f, g, self.same_thread_ok())

    def same_thread_ok(self):
        return self.lite.execute("SELECT 1").fetchone()[0] == 1

    def __result__(self):
        return self.out


@autoreconnect(**{"redis.Redis": {"*": REDIS_PASSWORD}})
class ThreadedHolder(Skprocess):
    """Holds connections in a list, a dict and a tuple (one level deep)."""

    def __init__(self, conns, by_name, pair):
        self.conns = conns
        self.by_name = by_name
        self.pair = pair
        self.process_config.runs = 1

    def __run__(self):
        self.out = (
            [c.ping() for c in self.conns],
            {k: v.ping() for k, v in self.by_name.items()},
            type(self.pair).__name__,
            [c.ping() for c in self.pair],
            self.conns[0] is self.pair[0],
        )

    def __result__(self):
        return self.out


class PlainHolder(Skprocess):
    """Not decorated: a live socket cannot travel."""

    def __init__(self, sock):
        self.sock = sock
        self.process_config.runs = 1

    def __run__(self):
        pass


@autoreconnect
class DecoratedSocketHolder(PlainHolder):
    pass


# -- helpers --------------------------------------------------------------------------------------


@pytest.fixture
def sqlite_file(tmp_path):
    path = str(tmp_path / "data.db")
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE items (name TEXT, qty INTEGER)")
    conn.executemany("INSERT INTO items VALUES (?, ?)", [("apple", 3), ("pear", 5)])
    conn.commit()
    yield path, conn
    conn.close()


def _pg_prepare(conn, label_prefix):
    cur = conn.cursor()
    cur.execute("DROP TABLE IF EXISTS notes")
    cur.execute("CREATE TABLE notes (label TEXT)")
    cur.executemany(
        "INSERT INTO notes VALUES (%s)", [(f"{label_prefix}-1",), (f"{label_prefix}-2",)]
    )
    conn.commit()
    cur.close()


@pytest.fixture
def pg2_pair(postgres_server):
    import psycopg2

    main = psycopg2.connect(**postgres_server.params("sk_main"))
    analytics = psycopg2.connect(**postgres_server.params("sk_analytics"))
    _pg_prepare(main, "main")
    _pg_prepare(analytics, "analytics")
    yield main, analytics
    main.close()
    analytics.close()


@pytest.fixture
def pg3_pair(postgres_server):
    import psycopg

    main = psycopg.connect(**postgres_server.params("sk_main"))
    analytics = psycopg.connect(**postgres_server.params("sk_analytics"))
    _pg_prepare(main, "main")
    _pg_prepare(analytics, "analytics")
    yield main, analytics
    main.close()
    analytics.close()


@pytest.fixture
def redis_client(redis_server):
    import redis

    client = redis.Redis(**redis_server.params(), decode_responses=True)
    client.delete("sk:parent", "sk:child")
    yield client
    client.close()


# -- sqlite3 --------------------------------------------------------------------------------------


def test_sqlite_file_reconnected_in_child(sqlite_file):
    path, conn = sqlite_file
    proc = SqliteReader(conn)
    rows, typename = proc.run()
    assert rows == [("apple", 3), ("pear", 5)]
    assert typename == "Connection"
    # the child wrote through its own connection to the same file
    assert conn.execute("SELECT qty FROM items WHERE name = 'from-child'").fetchall() == [(99,)]
    # the parent's object still holds its own live connection
    assert isinstance(proc.db, sqlite3.Connection)


def test_sqlite_local_class_ships_by_value(sqlite_file):
    path, conn = sqlite_file

    @autoreconnect
    class Local(Skprocess):
        def __init__(self, db):
            self.db = db
            self.process_config.runs = 1

        def __run__(self):
            self.n = self.db.execute("SELECT sum(qty) FROM items").fetchone()[0]

        def __result__(self):
            return self.n

    assert Local(conn).run() == 8


def test_sqlite_memory_database_is_a_clear_error():
    conn = sqlite3.connect(":memory:")
    proc = SqliteReader(conn)
    with pytest.raises(ShippingError) as info:
        proc.start()
    msg = str(info.value)
    assert "SqliteReader.db" in msg
    assert "sqlite3.Connection" in msg
    assert ":memory:" in msg
    assert info.value.path == "SqliteReader.db"
    assert proc.model is None  # nothing was started


def test_sqlite_closed_connection_is_a_clear_error(sqlite_file):
    path, _ = sqlite_file
    conn = sqlite3.connect(path)
    conn.close()
    with pytest.raises(ShippingError, match=r"SqliteReader\.db \(sqlite3\.Connection\)"):
        SqliteReader(conn).start()


def test_sqlite_uncommitted_changes_warn(sqlite_file):
    path, conn = sqlite_file
    conn.execute("INSERT INTO items VALUES ('pending', 1)")
    with pytest.warns(UserWarning, match="uncommitted"):
        with reconnect_shipping(spec_of(SqliteReader), conn, "x"):
            _serial.dumps(conn)
    conn.rollback()


# -- PostgreSQL: psycopg2 -------------------------------------------------------------------------


@pytest.mark.services
def test_psycopg2_default_and_override_auth(pg2_pair):
    main, analytics = pg2_pair
    out = Pg2Worker(main, analytics).run()
    assert out["main_db"] == [("sk_main", "main-1"), ("sk_main", "main-2")]
    assert out["analytics_db"] == [("sk_analytics", "analytics-1"), ("sk_analytics", "analytics-2")]


@pytest.mark.services
def test_psycopg2_wrong_password_names_the_attribute(pg2_pair):
    main, analytics = pg2_pair
    proc = Pg2WrongPassword(main, analytics)
    with pytest.raises(PreRunError) as info:
        proc.run()
    err = info.value
    assert isinstance(err, ReconnectError)
    assert isinstance(err, ShippingError)
    msg = str(err)
    assert "Pg2WrongPassword.analytics_db" in msg
    assert "psycopg2" in msg
    assert "password authentication failed" in msg
    assert "'analytics_db'" in msg  # which auth entry was used
    assert "not-the-password" not in msg
    assert err.path == "Pg2WrongPassword.analytics_db"
    assert isinstance(proc.error, ReconnectError)


@pytest.mark.services
def test_seed_database_worker_runs(postgres_server):
    """The seed's DatabaseWorker (auth "secret") against a role whose password is "secret"."""
    import psycopg2

    db = psycopg2.connect(**postgres_server.params("sk_seed"))
    _pg_prepare(db, "seed")
    try:
        worker = DatabaseWorker(db, "SELECT label FROM notes ORDER BY label")
        assert worker.run() == [("seed-1",), ("seed-2",)]
    finally:
        db.close()


@pytest.mark.services
def test_password_never_travels(pg2_pair, redis_client):
    main, analytics = pg2_pair
    spec = spec_of(ThreadedWorker)
    item = (main, analytics, redis_client)
    with reconnect_shipping(spec, item, "item 0"):
        data, bufs = _serial.dumps(item)
    assert MAIN_PW.encode() not in data
    assert ANALYTICS_PW.encode() not in data
    assert REDIS_PASSWORD.encode() not in data
    shipped = pickle.loads(data, buffers=bufs)
    assert all(isinstance(x, Reconnector) for x in shipped)
    assert "password" not in repr(shipped)


# -- PostgreSQL: psycopg 3 ------------------------------------------------------------------------


@pytest.mark.services
def test_psycopg3_default_and_override_auth(pg3_pair):
    main, analytics = pg3_pair
    main.autocommit = True
    out, autocommit = Pg3Worker(main, analytics).run()
    assert out["main_db"] == [("sk_main", "main-1"), ("sk_main", "main-2")]
    assert out["analytics_db"] == [("sk_analytics", "analytics-1"), ("sk_analytics", "analytics-2")]
    assert autocommit is True  # session settings travel too


@pytest.mark.services
def test_psycopg3_wrong_password(pg3_pair):
    main, _ = pg3_pair
    with pytest.raises(ProcessError) as info:
        Pg3WrongPassword(main).run()
    msg = str(info.value)
    assert isinstance(info.value, PreRunError)
    assert "Pg3WrongPassword.db" in msg
    assert "psycopg.Connection" in msg
    assert "password authentication failed" in msg
    assert "__prerun__ must not run" not in msg


# -- Redis ----------------------------------------------------------------------------------------


@pytest.mark.services
def test_redis_set_in_parent_get_in_child(redis_client):
    redis_client.set("sk:parent", "hello from the parent")
    assert RedisWorker(redis_client).run() == "hello from the parent"  # decode_responses kept
    assert redis_client.get("sk:child") == "hello from the child"


@pytest.mark.services
def test_redis_without_password_names_the_attribute(redis_client):
    with pytest.raises(ReconnectError) as info:
        RedisNoPassword(redis_client).run()
    msg = str(info.value)
    assert "RedisNoPassword.cache" in msg
    assert "redis.client.Redis" in msg
    assert "no password" in msg


@pytest.mark.services
def test_redis_in_list_dict_and_tuple(redis_client):
    out = ThreadedHolder(
        [redis_client, redis_client], {"a": redis_client}, (redis_client, redis_client)
    ).run()
    assert out == ([True, True], {"a": True}, "tuple", [True, True], True)


# -- start_threads --------------------------------------------------------------------------------


@pytest.mark.services
def test_start_threads_reconnects_everything(pg2_pair, pg3_pair, redis_client, sqlite_file):
    main, analytics = pg2_pair
    pg3_main, _ = pg3_pair
    _, lite = sqlite_file
    redis_client.set("sk:parent", "threads")
    more = {"lite": lite, "r": redis_client}
    out = ThreadedWorker(main, analytics, pg3_main, redis_client, lite, more).run()
    assert out == ("sk_main", "sk_analytics", "sk_main", "threads", 2, 1, True, True)


@pytest.mark.services
def test_start_threads_uses_threads_in_process(pg2_pair, redis_client, sqlite_file, monkeypatch):
    """In-process check of the threaded path: network kinds open off the calling thread."""
    from suitkaise_nb._engine import _reconnect

    main, analytics = pg2_pair
    _, lite = sqlite_file
    threads = {}
    real = _reconnect._open

    def spy(owner, spec, slot):
        threads[slot.path] = threading.current_thread().name
        return real(owner, spec, slot)

    monkeypatch.setattr(_reconnect, "_open", spy)
    proc = ThreadedWorker(main, analytics, None, redis_client, lite, {})
    with reconnect_shipping(spec_of(ThreadedWorker), proc, "ThreadedWorker"):
        data, bufs = _serial.dumps(proc)
    clone = pickle.loads(data, buffers=bufs)
    assert isinstance(clone.main_db, Reconnector)
    paths = reconnect_instance(clone)
    try:
        assert sorted(paths) == ["analytics_db", "cache", "lite", "main_db"]
        assert threads["lite"] == threading.current_thread().name
        for name in ("main_db", "analytics_db", "cache"):
            assert threads[name].startswith("suitkaise_nb-reconnect")
        assert clone.lite.execute("SELECT count(*) FROM items").fetchone()[0] == 2
    finally:
        for name in ("main_db", "analytics_db", "cache", "lite"):
            getattr(clone, name).close()


# -- Pool-style items: constructor arguments ------------------------------------------------------


@pytest.mark.services
def test_items_ship_as_placeholders_then_instance_reconnects(pg2_pair):
    """What a Pool worker does: ship (args...) as an item, build the instance, reconnect it."""
    main, analytics = pg2_pair
    item = (main, analytics)
    with reconnect_shipping(spec_of(Pg2Worker), item, "item 0"):
        data, bufs = _serial.dumps(item)
    args = pickle.loads(data, buffers=bufs)
    proc = Pg2Worker(*args)
    assert isinstance(proc.main_db, Reconnector)
    assert reconnect_instance(proc, spec_of(Pg2Worker)) == ["main_db", "analytics_db"]
    try:
        cur = proc.analytics_db.cursor()
        cur.execute("SELECT current_user")
        assert cur.fetchone() == ("sk_analytics",)
    finally:
        proc.main_db.close()
        proc.analytics_db.close()


def test_item_error_names_the_item_path():
    conn = sqlite3.connect(":memory:")
    with pytest.raises(ShippingError) as info:
        with reconnect_shipping(spec_of(SqliteReader), ("q", [conn]), "item 3"):
            _serial.dumps(("q", [conn]))
    assert info.value.path == "item 3[1][0]"


def test_placeholder_explains_itself():
    r = Reconnector("sqlite3", "sqlite3.Connection", {"database": "/tmp/x.db"})
    with pytest.raises(AttributeError, match="placeholder"):
        r.execute
    assert "x.db" in repr(r)
    assert isinstance(pickle.loads(pickle.dumps(r)), Reconnector)


def test_reducers_import_only_named_or_loaded_drivers():
    code = """
import sys
from suitkaise_nb.processing import Skprocess, autoreconnect
from suitkaise_nb._engine._reconnect import reconnect_reducers, spec_of

@autoreconnect(**{"sqlite3.Connection": {}, "pymongo.MongoClient": {"*": "pw"}})
class P(Skprocess):
    def __run__(self):
        pass

names = sorted(f"{t.__module__}.{t.__qualname__}" for t in reconnect_reducers(spec_of(P)))
print(names)
assert "sqlite3.Connection" in names, names
assert not any(m in sys.modules for m in ("psycopg2", "psycopg", "redis")), "driver imported"
import redis  # once the program uses a driver, its connections are covered too
assert redis.Redis in reconnect_reducers(spec_of(P))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=50)
    assert out.returncode == 0, out.stderr


# -- what cannot travel ---------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [PlainHolder, DecoratedSocketHolder])
def test_socket_attribute_is_a_shipping_error(cls):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with pytest.raises(ShippingError) as info:
            cls(sock).start()
        msg = str(info.value)
        assert f"{cls.__name__}.sock" in msg
        assert "socket" in msg
        assert info.value.path == f"{cls.__name__}.sock"
    finally:
        sock.close()


# -- the decorator --------------------------------------------------------------------------------


def test_decorator_rejects_non_skprocess():
    with pytest.raises(TypeError, match="Skprocess"):

        @autoreconnect(**{"redis.Redis": {"*": "pw"}})
        class NotAProcess:
            pass

    with pytest.raises(TypeError, match="Skprocess"):
        autoreconnect()(lambda: None)


@pytest.mark.parametrize(
    "auth, match",
    [
        ({"psycopg2.Connection": "secret"}, "must be a dict"),
        ({"psycopg2.Connection": {"*": 123}}, "password"),
        ({"psycopg2.Connection": {1: "pw"}}, "keys must be"),
        ({"sqlite3.Connection": {"*": "pw"}}, "take no password"),
        ({"psycopg2.Connection": {}, "PSYCOPG2.connection": {}}, "same type"),
    ],
)
def test_decorator_rejects_bad_auth(auth, match):
    with pytest.raises(TypeError, match=match):
        autoreconnect(**auth)


def test_decorator_warns_for_an_unknown_type_and_reconnects_nothing_of_it():
    with pytest.warns(UserWarning, match="does not know 'mysql.Connection'.*sqlite3.Connection"):
        deco = autoreconnect(**{"mysql.Connection": {"*": "pw"}})
    assert callable(deco)


def test_decorator_bad_start_threads():
    with pytest.raises(TypeError, match="start_threads"):
        autoreconnect(start_threads="yes")


def test_type_names_match_case_insensitively_and_real_names():
    for key in (
        "psycopg2.Connection",
        "psycopg2.extensions.connection",
        "PSYCOPG.CONNECTION",
        "redis.Redis",
        "redis.StrictRedis",
        "sqlite3.connection",
        "pymongo.MongoClient",
    ):
        autoreconnect(**{key: {}})


def test_spec_repr_hides_passwords():
    spec = spec_of(Pg2Worker)
    assert spec is not None
    assert MAIN_PW not in repr(spec)
    assert spec.auth_for("psycopg2", "analytics_db", "analytics_db") == (
        ANALYTICS_PW,
        "analytics_db",
    )
    assert spec.auth_for("psycopg2", "main_db", "main_db") == (MAIN_PW, "*")
    assert spec.auth_for("redis", "x", "x") == (None, None)
    assert spec_of(Pg2WrongPassword).auth_for("psycopg2", "analytics_db", "analytics_db")[0] == (
        "not-the-password"
    )


# -- the seed's examples (import renamed) ---------------------------------------------------------


@autoreconnect(
    start_threads=False,
    **{
        "psycopg2.Connection": {"*": "secret"},  # auth value is the password string
    },
)
class DatabaseWorker(Skprocess):
    def __init__(self, db_connection, query: str):
        self.db = db_connection
        self.query = query
        self.process_config.runs = 1
        self.results = None

    def __run__(self):
        cursor = self.db.cursor()
        cursor.execute(self.query)
        self.results = cursor.fetchall()
        cursor.close()

    def __result__(self):
        return self.results


@autoreconnect(
    start_threads=False,
    **{
        "psycopg2.Connection": {
            "*": "default_pass",
            "analytics_db": "analytics_pass",
        },
        "redis.Redis": {"*": "redis_secret"},
        "pymongo.MongoClient": {"*": "mongo_pass"},
    },
)
class MultiDbWorker(Skprocess):
    def __init__(self, main_db, analytics_db, cache, mongo):
        self.main_db = main_db
        self.analytics_db = analytics_db
        self.cache = cache
        self.mongo = mongo
        self.process_config.runs = 1

    def __run__(self):
        pass

    def __result__(self):
        return "done"


def test_seed_classes_decorate():
    for cls in (DatabaseWorker, MultiDbWorker):
        spec = spec_of(cls)
        assert spec is not None and spec.start_threads is False
    assert spec_of(MultiDbWorker).auth_for("pymongo", "mongo", "mongo") == ("mongo_pass", "*")
    # the class still runs without any connection (placeholders only replace connections)
    assert MultiDbWorker(None, None, None, None).run() == "done"
