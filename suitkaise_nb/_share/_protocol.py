"""Frames of the Share protocol.

client ↔ server (unix socket, after the HMAC handshake):
    REQ (op, path, args)  →  OK value | ERR (type, message, traceback, pickled exception)
    (path: attribute names, and ``Item`` steps for subscripts)
parent ↔ server (the server's own channel from the zygote):
    server → parent: READY, STATS {changed, ops, per_client, reprs}, STATE (snapshot)
    parent → server: SNAPSHOT (send the state and exit), EXIT (exit, no state)
"""

from __future__ import annotations

K_REQ = 40
K_OK = 41
K_ERR = 42
K_HELLO = 43
K_READY = 44
K_STATS = 45
K_STATE = 46
K_SNAPSHOT = 47
K_EXIT = 48


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
