"""Frames of the Share protocol, and the handshake that opens every connection.

client ↔ server (unix socket)::

    server → client   nonce_s (32 bytes)                                  ┐ raw bytes, no
    client → server   HMAC(key, "client" + nonce_s) + nonce_c (64 bytes)  │ framing, nothing
    server → client   HMAC(key, "server" + nonce_c + nonce_s) (32 bytes)  ┘ unpickled
    then frames:
    REQ (op, path, args)  →  OK value | REF | ERR (type, message, traceback, pickled exception)
    (path: attribute names, and ``Item`` steps for subscripts)

Both sides prove they know the Share's key before either reads a frame: the server reads at
most 64 bytes from a peer that has not proved it (with ``recv``, so descriptors passed along
are discarded by the kernel), and the client checks the server's proof before it sends a
request or unpickles an answer (as ``multiprocessing.connection`` does both ways).

``REF`` answers a read whose value is mutable: the client makes a live handle to that path
(``Ref(i)`` marks such elements in the answer to an iteration).

parent ↔ server (the server's own channel from the zygote)::

    server → parent: READY, STATS {changed, ops, per_client, reprs},
                     STATE [(name, pickle, first buffer, buffer count)] | STATE_ERR message
    parent → server: SNAPSHOT (send the state, then wait: EXIT, or RESUME when the parent
                     could not take it), EXIT (exit, no state)
"""

from __future__ import annotations

import hashlib
import hmac
import os
import socket

from .._errors import HandshakeError

K_REQ = 40
K_OK = 41
K_ERR = 42
K_READY = 44
K_STATS = 45
K_STATE = 46
K_SNAPSHOT = 47
K_EXIT = 48
K_REF = 49
K_STATE_ERR = 50
K_RESUME = 51

NONCE = 32
HELLO = 2 * NONCE  # what the server reads from a peer before it is authenticated
HANDSHAKE_TIMEOUT = 10.0


#: ``handle <op> other`` runs on the server as ``operator.<op>(obj, other)`` (``r<op>``: the
#: operands swapped); unary ones as ``operator.<op>(obj)`` or the builtin of that name
BINARY_OPS = (
    "lt",
    "le",
    "eq",
    "ne",
    "gt",
    "ge",
    "add",
    "sub",
    "mul",
    "truediv",
    "floordiv",
    "mod",
    "pow",
    "lshift",
    "rshift",
    "and_",
    "or_",
    "xor",
    "matmul",
)
REFLECTED_OPS = tuple(
    "r" + name.rstrip("_") for name in BINARY_OPS[6:]
)  # radd ... rmatmul (comparisons reflect into each other by themselves)
UNARY_OPS = ("neg", "pos", "abs", "invert", "index", "int", "float", "complex")


def client_proof(key: bytes, nonce_s: bytes) -> bytes:
    return hmac.new(key, b"client" + nonce_s, hashlib.sha256).digest()


def server_proof(key: bytes, nonce_c: bytes, nonce_s: bytes) -> bytes:
    return hmac.new(key, b"server" + nonce_c + nonce_s, hashlib.sha256).digest()


def recv_exact(sock: socket.socket, n: int) -> bytes:
    """``n`` raw bytes (``recv``: any descriptor sent along is closed by the kernel)."""
    got = b""
    while len(got) < n:
        chunk = sock.recv(n - len(got))
        if not chunk:
            raise HandshakeError("the peer closed the connection during the handshake")
        got += chunk
    return got


def client_handshake(sock: socket.socket, key: bytes) -> None:
    """Prove the key to the server and check its proof; raises :class:`HandshakeError`."""
    sock.settimeout(HANDSHAKE_TIMEOUT)
    try:
        nonce_s = recv_exact(sock, NONCE)
        nonce_c = os.urandom(NONCE)
        sock.sendall(client_proof(key, nonce_s) + nonce_c)
        proof = recv_exact(sock, NONCE)
    except TimeoutError:
        raise HandshakeError("the peer did not complete the handshake in time") from None
    except OSError as exc:
        if isinstance(exc, HandshakeError):
            raise
        raise HandshakeError(f"the handshake failed: {exc}") from None
    if not hmac.compare_digest(proof, server_proof(key, nonce_c, nonce_s)):
        raise HandshakeError("the peer could not prove that it knows the Share's key")
    sock.settimeout(None)


class Item:
    """A subscript step in a Share path: ``share.d[k].append(x)`` walks ``("d", Item(k))``."""

    __slots__ = ("key",)

    def __init__(self, key: object) -> None:
        self.key = key

    def __reduce__(self) -> tuple[type[Item], tuple[object]]:
        return (Item, (self.key,))

    def __eq__(self, other: object) -> bool:
        return type(other) is Item and bool(other.key == self.key)

    def __hash__(self) -> int:
        return hash((Item, self.key))

    def __repr__(self) -> str:
        return f"[{self.key!r}]"


class Ref:
    """In an iteration's answer: element ``index`` is mutable; the client makes a handle."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index

    def __reduce__(self) -> tuple[type[Ref], tuple[int]]:
        return (Ref, (self.index,))
