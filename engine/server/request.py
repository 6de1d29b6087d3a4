"""One client command run in the server process, as it would have run in the client's: in the client's
folder, with its environment and umask, its stdout and stderr going to the client as they are written.
The server runs one at a time (all of these are process-wide) and puts its own back afterwards.

Not carried over: what was fixed when the server started (torch's thread count, OMP_*/CUDA_VISIBLE_DEVICES
read at import) and what C libraries print straight to file descriptor 2 (that lands in the server log).
"""
from __future__ import annotations

import contextlib
import io
import os
import socket
import sys
import traceback
from collections.abc import Iterator

from engine.server.protocol import send


class ClientStream(io.TextIOBase):
    """A text stream whose writes go to the client as "out" or "err" messages. A client gone away loses
    the rest quietly: the server notices it and cancels the command."""

    def __init__(self, conn: socket.socket, kind: str, tty: bool = False) -> None:
        super().__init__()
        self.conn, self.kind, self.tty, self.lost = conn, kind, tty, False

    @property
    def encoding(self) -> str:
        return "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        """Whether the client's stream is a terminal."""
        return self.tty

    def write(self, text: str) -> int:
        if text and not self.lost:
            try:
                send(self.conn, {"type": self.kind, "text": text})
            except OSError:
                self.lost = True
        return len(text)


@contextlib.contextmanager
def client_context(cwd: str, env: dict[str, str], umask: int, stdout, stderr) -> Iterator[None]:
    """Be the client's process for the duration; OSError if its folder cannot be entered."""
    saved_cwd, saved_env = os.getcwd(), dict(os.environ)
    saved_umask = os.umask(umask)
    saved_streams = sys.stdout, sys.stderr
    try:
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env)
        sys.stdout, sys.stderr = stdout, stderr
        yield
    finally:
        sys.stdout, sys.stderr = saved_streams
        os.environ.clear()
        os.environ.update(saved_env)
        os.umask(saved_umask)
        os.chdir(saved_cwd)


def run_for_client(message: dict, conn: socket.socket, cancellable=contextlib.nullcontext) -> int:
    """Run a "run" message's command line here; its exit code. Output goes to the client meanwhile.
    `cancellable()` is entered around the command itself: a cancel may interrupt that and nothing else."""
    from engine.commands.dispatch import run_here
    tty = message.get("tty", {})
    out, err = ClientStream(conn, "out", tty.get("out", False)), ClientStream(conn, "err", tty.get("err", False))
    env = dict(message["env"])
    if message.get("terminal") and "COLUMNS" not in env:   # progress bars as wide as the client's terminal
        env["COLUMNS"], env["LINES"] = map(str, message["terminal"])
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(client_context(message["cwd"], env, int(message["umask"]), out, err))
        except OSError as exc:       # the client's folder vanished, or is not ours to enter
            err.write(f"viewfinder: error: the warm server cannot work in {message['cwd']}: {exc}\n")
            return 1
        try:
            with cancellable():
                return run_here([str(arg) for arg in message["argv"]])
        except SystemExit as exc:    # what the interpreter would have made of it
            if exc.code is None or isinstance(exc.code, int):
                return exc.code or 0
            print(exc.code, file=sys.stderr)
            return 1
        except Exception:            # a bug: the traceback a plain run would print, exit 1
            traceback.print_exc()
            return 1
