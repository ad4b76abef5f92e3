"""Share security: only the owner's processes, as the same user, reach the server, and a client
talks only to its own server (SPEC §2 Share; issue 15 §3).

The attacker tests create a throw-away local user (CI runs as root) and remove it after."""

from __future__ import annotations

import os
import pickle
import shutil
import socket
import stat
import struct
import subprocess
import sys
import time
import uuid

import psutil
import pytest

from suitkaise_nb._share._link import Link as _Link
from suitkaise_nb._share._protocol import K_ERR, K_REQ
from suitkaise_nb.processing import Share, ShareError, Skprocess

from .classes import Counter

pytestmark = pytest.mark.timeout(120)

ATTACKER = os.path.join(os.path.dirname(__file__), "attacker.py")
SYSTEM_PYTHON = "/usr/bin/python3"


@pytest.fixture
def share(monkeypatch, tmp_path):
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setenv("TMPDIR", "/tmp")
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    s = Share()
    s.counter = Counter()
    s.n = 1
    yield s
    try:
        s.exit()
    except Exception:
        pass


@pytest.fixture
def other_user(tmp_path):
    """A throw-away local user, and a directory it can read the attacker script from."""
    if os.geteuid() != 0 or shutil.which("useradd") is None:
        pytest.skip("needs root and useradd to create a second local user")
    if not os.path.exists(SYSTEM_PYTHON):
        pytest.skip(f"{SYSTEM_PYTHON} is needed to run the attacker as another user")
    name = f"sknb{uuid.uuid4().hex[:8]}"
    subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/false", name], check=True)
    work = f"/tmp/{name}-work"
    os.makedirs(work)
    shutil.copy(ATTACKER, os.path.join(work, "attacker.py"))
    os.chmod(work, 0o777)
    os.chmod(os.path.join(work, "attacker.py"), 0o644)
    procs: list[subprocess.Popen] = []

    def run(*args: str) -> subprocess.Popen:
        p = subprocess.Popen(
            [SYSTEM_PYTHON, os.path.join(work, "attacker.py"), *args],
            user=name,
            group=name,
            cwd=work,
            env={"PATH": "/usr/bin:/bin"},
            stdin=subprocess.DEVNULL,
        )
        procs.append(p)
        return p

    try:
        yield name, work, run
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait(10)
        subprocess.run(["userdel", name], check=False)
        shutil.rmtree(work, ignore_errors=True)


def _wait_file(path: str, text: str, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path) as fh:
                got = fh.read()
            if text in got:
                return got
        except FileNotFoundError:
            pass
        time.sleep(0.02)
    raise AssertionError(f"{path} never said {text!r}")


class Prober(Skprocess):
    """A child that keeps its Share across the owner's stop()/start(), and reads through it
    when told to."""

    def __init__(self, share) -> None:
        self.share = share
        self.process_config.runs = 1

    def __run__(self) -> None:
        while True:
            msg = self.listen(timeout=60)
            if msg != "read":
                return
            try:
                self.tell(("ok", self.share.n))
            except Exception as exc:
                self.tell(("error", type(exc).__name__, str(exc)))


def test_another_user_cannot_connect(share, other_user):
    name, work, run = other_user
    out = os.path.join(work, "connect.out")
    run("connect", share._sk.link.path, out).wait(30)
    assert _wait_file(out, "refused").startswith("refused: PermissionError")
    d = os.path.dirname(share._sk.link.path)
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(share._sk.link.path).st_mode) == 0o600


def test_impostor_after_stop_start_is_refused_before_anything_is_unpickled(share, other_user):
    name, work, run = other_user
    path = share._sk.link.path
    d = os.path.dirname(path)
    marker = os.path.join(work, "pwned")
    p = Prober(share)
    p.start()
    try:
        p.tell("read")
        assert p.listen(timeout=30) == ("ok", 1)

        # 1. the same user's impostor in our own directory, without the key: the child's
        #    reconnect fails the handshake and unpickles nothing
        share.stop()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(4)
        import threading

        from tests.share.attacker import forged_frame

        accepted = []

        def serve() -> None:
            conn, _ = listener.accept()
            accepted.append(conn)
            conn.sendall(os.urandom(32))
            conn.recv(64)
            conn.sendall(os.urandom(32) + forged_frame(marker))

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        p.tell("read")
        got = p.listen(timeout=30)
        assert got[0] == "error" and "handshake" in got[2], got
        assert accepted and not os.path.exists(marker)
        for c in accepted:
            c.close()
        listener.close()
        os.unlink(path)

        # the real server again, in the same private directory: the child goes on with it
        share.start()
        p.tell("read")
        assert p.listen(timeout=30) == ("ok", 1)

        # 2. another user re-creates the directory after it vanished (a tmp cleaner, say)
        share.stop()
        shutil.rmtree(d)
        out = os.path.join(work, "impostor.out")
        run("impostor", d, out, marker)
        _wait_file(out, "listening")
        share.start()  # the owner does not reuse a directory it no longer owns
        assert os.path.dirname(share._sk.link.path) != d
        p.tell("read")
        got = p.listen(timeout=30)
        assert got[0] == "error" and "no longer a private directory" in got[2], got
        time.sleep(0.3)
        with open(out) as fh:
            assert "accepted" not in fh.read()  # refused before connecting at all
        assert not os.path.exists(marker)
    finally:
        p.tell("end")
        p.wait(timeout=30)
        if os.path.isdir(d) and os.stat(d).st_uid != os.geteuid():
            shutil.rmtree(d, ignore_errors=True)  # what the attacker made
    assert share.n == 1


def _server(share: Share) -> psutil.Process:
    return psutil.Process(share._sk.owner.spare.pid)


def _settled_fds(proc: psutil.Process, want: int, timeout: float = 5.0) -> int:
    deadline = time.monotonic() + timeout
    n = proc.num_fds()
    while n != want and time.monotonic() < deadline:
        time.sleep(0.02)
        n = proc.num_fds()
    return n


def test_pre_authentication_abuse_costs_only_its_connections(share):
    server = _server(share)
    base = server.num_fds()
    path = share._sk.link.path
    conns = []
    for k in range(5):
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.connect(path)
        c.recv(32)  # the server's nonce
        files = [os.open(os.devnull, os.O_RDONLY) for _ in range(60)]
        try:
            socket.send_fds(c, [b"\x00"], files)  # 60 descriptors before authenticating
        finally:
            for fd in files:
                os.close(fd)
        if k == 0:  # a frame header announcing an enormous body
            c.sendall(struct.pack("<BHIQ", K_REQ, 0, 0, 1 << 62))
        elif k == 1:  # garbage, more than the server reads before a proof
            c.sendall(os.urandom(4096))
        elif k == 2:  # a pickle that would run code, sent as a request without the key
            body = pickle.dumps(("get", ("n",), ()))
            c.sendall(struct.pack("<BHIQ", K_REQ, 0, 0, len(body)) + body + b"\x00" * 64)
        conns.append(c)
    # the server still answers, with its state, while the abusers are connected
    assert share.n == 1 and share.counter.value == 0
    share.counter.increment()
    assert server.num_fds() <= base + len(conns)  # no passed descriptor was kept
    for c in conns:
        c.close()
    assert _settled_fds(server, base) == base
    assert share.counter.value == 1


def test_authenticated_but_malformed_frames_cost_only_their_connection(share):
    server = _server(share)
    base = server.num_fds()
    for frame in [
        struct.pack("<BHIQ", K_REQ, 0, 0, 1 << 62),  # an impossible allocation
        struct.pack("<BHIQ", K_REQ, 0, 0, 5) + b"junk!",  # not a pickle
        struct.pack("<BHIQ", 99, 0, 0, 1) + b"x",  # an unknown frame kind
    ]:
        link = _Link(share._sk.link.path, share._sk.link.key)
        conn = link._live_conn()
        conn.sock.sendall(frame)
        conn.sock.settimeout(10)
        try:
            got = conn.sock.recv(100)
        except ConnectionResetError:
            got = b""
        # that connection is closed, or the request is answered with an error
        assert got == b"" or got[0] == K_ERR
        link.close()
        assert share.n == 1  # the server lives on, with its state
    assert _settled_fds(server, base) == base


def test_a_wrong_key_gets_nothing_and_a_clear_error(share):
    bad = _Link(share._sk.link.path, os.urandom(32))
    with pytest.raises(ShareError, match="handshake"):
        bad.request("get", ("n",))
    assert share.n == 1


def test_socket_directory_is_checked_before_every_reconnect(share):
    """A directory that became readable by others is refused before connecting."""
    link = _Link(share._sk.link.path, share._sk.link.key)
    assert link.request("get", ("n",)) == 1
    link.close()
    d = os.path.dirname(share._sk.link.path)
    os.chmod(d, 0o755)
    try:
        with pytest.raises(ShareError, match="no longer a private directory"):
            link.request("get", ("n",))
    finally:
        os.chmod(d, 0o700)
    assert link.request("get", ("n",)) == 1
    link.close()


def test_socket_directory_prefers_a_private_runtime_dir(monkeypatch, tmp_path):
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    s = Share()
    try:
        assert os.path.dirname(os.path.dirname(s._sk.link.path)) == str(runtime)
    finally:
        s.exit()
    os.chmod(runtime, 0o777)  # not private: not used
    s = Share()
    try:
        assert not s._sk.link.path.startswith(str(runtime))
    finally:
        s.exit()


if sys.platform != "linux":  # the attacker runs as another user through useradd
    pytestmark = [pytestmark, pytest.mark.skip(reason="Linux only")]
