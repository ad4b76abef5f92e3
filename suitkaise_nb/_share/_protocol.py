"""Frames of the Share protocol.

client ↔ server (unix socket, after the HMAC handshake):
    REQ (op, path, args)  →  OK value | ERR (type, message, traceback, pickled exception)
parent ↔ server (the server's own channel from the zygote):
    server → parent: READY, STATS {changed, ops, per_client, reprs}, STATE (snapshot)
    parent → server: SNAPSHOT (send the state and exit), EXIT (exit, no state)
"""

K_REQ = 40
K_OK = 41
K_ERR = 42
K_HELLO = 43
K_READY = 44
K_STATS = 45
K_STATE = 46
K_SNAPSHOT = 47
K_EXIT = 48
