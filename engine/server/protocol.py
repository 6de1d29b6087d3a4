"""Messages between client and server: a 4-byte big-endian length, then that many bytes of UTF-8 JSON (an
object with a "type"). Standard library only: the client imports this.

client -> server   {"type": "run", "argv": [...], "cwd": ..., "env": {...}, "umask": int, "build": ...,
                    "tty": {"out": bool, "err": bool}, "terminal": [columns, lines] | null}
                   {"type": "cancel"}    (Ctrl-C in the client, during a run)
                   {"type": "status"}  /  {"type": "stop"}
server -> client   {"type": "out" | "err", "text": ...}   the command's stdout / stderr, as written
                   {"type": "exit", "code": int}           the command ended
                   {"type": "declined", "reason": ...}      not run (the server runs other code, or is
                                                            stopping): wait for it to go, start another
                   {"type": "status", ...}  /  {"type": "stopping", "pid": int}
"""
from __future__ import annotations

import json
import socket
import struct

from engine.errors import ViewfinderError

HEADER = struct.Struct(">I")
#: A run request carries the client's environment; nothing legitimate comes near this.
MAX_MESSAGE = 16 * 1024 * 1024


class ProtocolError(ViewfinderError, OSError):
    """The other side sent something that is not a message of this protocol."""


def send(sock: socket.socket, message: dict) -> None:
    data = json.dumps(message, separators=(",", ":")).encode()
    sock.sendall(HEADER.pack(len(data)) + data)


def receive(sock: socket.socket) -> dict | None:
    """The next message, or None when the other side closed the connection cleanly between messages."""
    header = _read(sock, HEADER.size, allow_eof=True)
    if header is None:
        return None
    (length,) = HEADER.unpack(header)
    if length > MAX_MESSAGE:
        raise ProtocolError(f"message of {length} bytes refused (at most {MAX_MESSAGE})")
    try:
        message = json.loads(_read(sock, length))
    except ValueError as exc:
        raise ProtocolError(f"not a JSON message: {exc}") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ProtocolError("a message must be a JSON object with a type")
    return message


def _read(sock: socket.socket, size: int, allow_eof: bool = False) -> bytes | None:
    chunks, got = [], 0
    while got < size:
        chunk = sock.recv(min(size - got, 1 << 20))
        if not chunk:
            if allow_eof and got == 0:
                return None
            raise ProtocolError("connection closed in the middle of a message")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)
