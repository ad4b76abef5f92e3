"""A hostile local peer, run by the security tests as another user (stdlib only).

Modes:
  connect PATH OUT           try to connect to the Share's socket; write the outcome to OUT
  impostor DIR OUT MARKER    create DIR (if missing) and listen on DIR/share.sock as if it were
                             the Share's server: send a nonce, read the client's proof, answer
                             with a forged proof and then a pickle that would create MARKER;
                             every accepted connection is logged to OUT
"""

import os
import pickle
import socket
import struct
import sys
import time


def forged_frame(marker: str) -> bytes:
    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    body = pickle.dumps(Evil(), protocol=5)
    return struct.pack("<BHIQ", 41, 0, 0, len(body)) + body  # an "OK" frame


def main() -> None:
    mode = sys.argv[1]
    if mode == "connect":
        path, out = sys.argv[2], sys.argv[3]
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            result = "connected"
        except OSError as exc:
            result = f"refused: {type(exc).__name__}"
        with open(out, "w") as fh:
            fh.write(result)
        return
    d, out, marker = sys.argv[2], sys.argv[3], sys.argv[4]
    os.makedirs(d, exist_ok=True)
    os.chmod(d, 0o755)
    path = os.path.join(d, "share.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    os.chmod(path, 0o777)
    listener.listen(8)
    listener.settimeout(0.2)
    with open(out, "w") as fh:
        fh.write("listening\n")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        with open(out, "a") as fh:
            fh.write("accepted\n")
        conn.settimeout(2)
        try:
            conn.sendall(os.urandom(32))
            conn.recv(64)
            conn.sendall(os.urandom(32) + forged_frame(marker))
            conn.recv(1 << 16)
        except OSError:
            pass
        conn.close()


if __name__ == "__main__":
    main()
