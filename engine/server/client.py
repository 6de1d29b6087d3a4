"""The client side of `--warm`: hand the command line to the warm server (starting one when none runs),
relay its output and exit code, turn Ctrl-C into a cancel. Standard library only, and nothing of the
engine but this package's small modules and engine.errors: the point is a process that is ready in a blink.

When no server can be had (it cannot start, or does not answer within START_TIMEOUT_S) the client says so
in one line and the caller runs the command itself: slower, same result. When the server dies in the
middle of a command, the client reports it (exit 1) and does not run the command again on its own: the
command may be what killed it, and part of its output has been shown already.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from engine.errors import ViewfinderError
from engine.server.lock import held_by_a_server
from engine.server.paths import ServerPaths, build_id, server_paths
from engine.server.protocol import receive, send

#: A cold server imports the engine before it answers a command, but it listens within a second.
START_TIMEOUT_S = 60.0
#: How long `serve --stop` (or a client replacing a server of other code) waits for the old one to go.
STOP_TIMEOUT_S = 30.0
LOG_KEEP_BYTES = 1 << 20
_DECLINED = object()


class ServerUnavailable(ViewfinderError):
    """No server could be reached or started."""


def forward(command: str, argv: list[str], quiet: bool = False) -> int | None:
    """Run `argv` on the warm server; its exit code. None when no server can be had (said on stderr in
    one line): the caller runs the command itself then."""
    try:
        paths = server_paths()
        message = {"type": "run", "argv": list(argv), "cwd": os.getcwd(), "env": dict(os.environ),
                   "umask": _umask(), "build": build_id(), "tty": {"out": _isatty(sys.stdout),
                                                                  "err": _isatty(sys.stderr)},
                   "terminal": _terminal_size()}
        for _attempt in range(3):     # a server of other code, or one stopping, declines: start another
            conn = connect_or_start(paths, announce=not quiet)
            with conn:
                try:
                    send(conn, message)
                except OSError:       # it went away between accepting and reading: as if it had declined
                    outcome = _DECLINED
                else:
                    outcome = _relay(conn, command, paths)
            if outcome is not _DECLINED:
                return outcome
            wait_until_gone(paths, STOP_TIMEOUT_S)
        raise ServerUnavailable("the server declined the command three times")
    except (ServerUnavailable, OSError) as exc:
        print(f"viewfinder {command}: warm server unavailable ({exc}); running in this process", file=sys.stderr)
        return None


def connect(paths: ServerPaths) -> socket.socket | None:
    """A connection to the running server, or None (no socket file, or a dead server's)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(paths.socket))
    except (FileNotFoundError, ConnectionRefusedError):
        sock.close()
        return None
    except OSError:
        sock.close()
        raise
    return sock


def connect_or_start(paths: ServerPaths, announce: bool = True) -> socket.socket:
    """Connect, starting a server in the background when none runs (and none is starting or stopping)."""
    deadline, process = time.monotonic() + START_TIMEOUT_S, None
    while True:
        conn = connect(paths)
        if conn is not None:
            return conn
        if not held_by_a_server(paths.lock):
            if process is None:
                # no warm-up: this client's own command warms the server as much, and sooner
                process = start_server(paths, ["--no-warm-up"])
                if announce:
                    print(f"viewfinder: starting the warm server (pid {process.pid}, log {paths.log})",
                          file=sys.stderr)
            elif process.poll() is not None:
                raise ServerUnavailable(f"the server exited as it started (code {process.returncode}); see "
                                        f"{paths.log}")
        if time.monotonic() > deadline:
            raise ServerUnavailable(f"no answer on {paths.socket} within {START_TIMEOUT_S:.0f} s")
        time.sleep(0.05)


def start_server(paths: ServerPaths, options: list[str] | tuple = ()) -> subprocess.Popen:
    """`viewfinder serve OPTIONS` detached from this terminal (its Ctrl-C is not the server's), output to its
    log. The engine is put on its PYTHONPATH: it runs in its own folder, not the client's."""
    engine_root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [engine_root, env.get("PYTHONPATH")]))
    argv = [sys.executable, "-m", "engine.cli", "serve", *options]
    mode = "w" if _size(paths.log) > LOG_KEEP_BYTES else "a"
    fd = os.open(paths.log, os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if mode == "w" else os.O_APPEND), 0o600)
    try:
        return subprocess.Popen(argv, cwd=paths.folder, env=env, stdin=subprocess.DEVNULL, stdout=fd, stderr=fd,
                                start_new_session=True)
    finally:
        os.close(fd)


def ask(paths: ServerPaths, message: dict, timeout_s: float = 10.0) -> dict | None:
    """One question (status, stop) and its answer; None when no server runs."""
    conn = connect(paths)
    if conn is None:
        return None
    with conn:
        conn.settimeout(timeout_s)
        send(conn, message)
        return receive(conn)


def wait_until_gone(paths: ServerPaths, timeout_s: float) -> bool:
    """Wait for the server holding the lock to end; whether it did."""
    deadline = time.monotonic() + timeout_s
    while held_by_a_server(paths.lock):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _relay(conn: socket.socket, command: str, paths: ServerPaths):
    """Show the command's output as it comes; its exit code, or _DECLINED. The first Ctrl-C asks the server
    to cancel (it answers "interrupted", exit 130, as a plain run would); a second one stops waiting."""
    interrupts = []

    def on_interrupt(signum, frame):
        interrupts.append(signum)
        if len(interrupts) > 1:
            raise KeyboardInterrupt
        try:
            send(conn, {"type": "cancel"})
        except OSError:
            pass

    previous = _set_sigint(on_interrupt)
    try:
        while True:
            message = receive(conn)
            if message is None:
                break
            kind = message["type"]
            if kind in ("out", "err"):
                stream = sys.stdout if kind == "out" else sys.stderr
                stream.write(message["text"])
                stream.flush()
            elif kind == "exit":
                return int(message["code"])
            elif kind == "declined":
                return _DECLINED
    except KeyboardInterrupt:
        print(f"viewfinder {command}: interrupted (the warm server finishes cancelling on its own)",
              file=sys.stderr)
        return 130
    except OSError:
        pass
    finally:
        _set_sigint(previous)
    print(f"viewfinder {command}: error: the warm server ended before the command did (see {paths.log}); "
          "run it again without --warm", file=sys.stderr)
    return 1


def _set_sigint(handler):
    """Install a SIGINT handler where Python allows it (the main thread); the previous one, or None."""
    try:
        return signal.signal(signal.SIGINT, handler)
    except (TypeError, ValueError):     # not the main thread, or no handler to put back
        return None


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _terminal_size() -> list[int] | None:
    """Columns and lines of the terminal stderr (where the progress bars go) is, if it is one."""
    try:
        size = os.get_terminal_size(sys.stderr.fileno())
    except (AttributeError, ValueError, OSError):
        return None
    return [size.columns, size.lines]


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
