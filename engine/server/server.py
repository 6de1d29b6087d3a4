"""The warm server: listens on the private socket, answers status and stop at once (a thread per connection)
and runs commands one at a time in the main thread, where a cancel can reach them as Ctrl-C would.

Cancelling. A client's Ctrl-C (or its going away) makes the connection's watcher thread raise
RequestCancelled in the main thread (via _thread.interrupt_main and a SIGUSR1 handler). It is a
KeyboardInterrupt, so the command stops exactly as it does on Ctrl-C in a plain process ("interrupted",
exit 130, outputs all written or none) and the server lives on with its models. It is raised only inside
the command and never halfway through sending a message (the handler re-arms itself until then), so the
client's stream and the server's own state stay whole.
"""
from __future__ import annotations

import _thread
import contextlib
import json
import logging
import os
import queue
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import ViewfinderError
from engine.server.lock import ServerLock
from engine.server.paths import ServerPaths, build_id
from engine.server.pool import LocalizerPool
from engine.server.protocol import ProtocolError, receive, send

log = logging.getLogger("engine.server")
#: A connection must say what it wants within this; a silent one is dropped.
GREETING_TIMEOUT_S = 10.0
POLL_S = 0.5


class AlreadyRunning(ViewfinderError):
    """Another server holds this folder's lock."""


class RequestCancelled(KeyboardInterrupt):
    """The client cancelled (or vanished, or the server is stopping): Ctrl-C for the command it runs."""


@dataclass
class Request:
    conn: socket.socket | None
    message: dict
    received: float = field(default_factory=time.monotonic)
    cancel_requested: bool = False
    cancellable: bool = False      # the command itself is running (not the set-up or tidying around it)
    delivered: bool = False
    done: bool = False

    @property
    def summary(self) -> str:
        return " ".join(map(str, self.message.get("argv", [])))[:200]


class Server:
    def __init__(self, paths: ServerPaths, idle_s: float, warm_up: bool = True) -> None:
        self.paths, self.idle_s, self.warm_up = paths, idle_s, warm_up
        self.lock = ServerLock(paths.lock)
        self.pool = LocalizerPool()
        self.build = build_id()
        self.started = time.time()
        self.state = "starting"
        self.served = 0
        self.stopping = False
        self.current: Request | None = None
        self.queue: queue.Queue[Request] = queue.Queue()
        self.last_active = time.monotonic()

    # ------------------------------------------------------------ life
    def run(self) -> None:
        """Serve until stopped or idle for idle_s. AlreadyRunning if another server has the folder."""
        if not self.lock.acquire():
            raise AlreadyRunning(running_pid(self.paths))
        listener = None
        try:
            listener = self._listen()
            self.paths.state.write_text(json.dumps({"pid": os.getpid(), "started": self.started,
                                                    "socket": str(self.paths.socket)}))
            self._install_signal_handlers()
            threading.Thread(target=self._accept, args=(listener,), daemon=True, name="server-accept").start()
            log.info("pid %d listening on %s (idle timeout %.0f s)", os.getpid(), self.paths.socket, self.idle_s)
            from engine.commands.localizers import use_source
            use_source(self.pool)
            if self.warm_up:
                self._warm_up()
            self.state = "ready"
            self._serve()
        finally:
            # the socket goes before the lock: a server starting next must not lose its new socket to us
            if listener is not None:
                _close(listener)           # shut down: wakes the accept thread
                self.paths.socket.unlink(missing_ok=True)
            self.paths.state.unlink(missing_ok=True)
            self._decline_queued("the server stopped before running it")
            self.lock.release()
            log.info("stopped after %d command(s)", self.served)

    def _listen(self) -> socket.socket:
        """Bind the socket 0600 (no moment where others could connect). A socket file left here is a dead
        server's: we hold the lock, so nobody else is using it."""
        path = self.paths.socket
        if path.is_symlink() or path.exists():
            log.info("replacing the stale socket %s", path)
            path.unlink()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        previous = os.umask(0o177)
        try:
            listener.bind(str(path))
        finally:
            os.umask(previous)
        os.chmod(path, 0o600)
        listener.listen(16)
        return listener

    def _install_signal_handlers(self) -> None:
        signal.signal(signal.SIGUSR1, self._on_cancel)
        signal.signal(signal.SIGINT, self._on_stop_signal)
        signal.signal(signal.SIGTERM, self._on_stop_signal)

    def _on_cancel(self, signum, frame) -> None:
        """Runs in the main thread: cancel the command running now if it is the one asked for."""
        request = self.current
        if request is None or request.done or request.delivered or not request.cancel_requested:
            return
        if not request.cancellable or (frame is not None and frame.f_code is send.__code__):
            _thread.interrupt_main(signal.SIGUSR1)     # not at a safe point yet: again at the next one
            return
        request.delivered = True
        raise RequestCancelled()

    def _on_stop_signal(self, signum, frame) -> None:
        log.info("%s: stopping", signal.Signals(signum).name)
        self.request_stop()

    def request_stop(self) -> None:
        """From any thread: stop after cancelling the command that runs."""
        self.stopping = True
        self._cancel(self.current)

    def _cancel(self, request: Request | None) -> None:
        if request is not None and not request.done and not request.cancel_requested:
            request.cancel_requested = True
            _thread.interrupt_main(signal.SIGUSR1)

    # ------------------------------------------------------------ main thread
    def _warm_up(self) -> None:
        from engine.commands.dispatch import run_here
        from engine.server.warmup import warm_up
        self.state = "warming up"
        self.current = request = Request(None, {"argv": ["(warm-up)"]}, cancellable=True)
        try:
            log.info("warm-up: %s", warm_up(run_here))
        except RequestCancelled:
            log.info("warm-up cancelled")
        except Exception as exc:           # a broken demo scene must not keep the server from serving
            log.warning("warm-up failed: %s", exc)
        finally:
            request.done, self.current = True, None
            self.last_active = time.monotonic()

    def _serve(self) -> None:
        while not self.stopping:
            try:
                request = self.queue.get(timeout=POLL_S)
            except queue.Empty:
                if time.monotonic() - self.last_active > self.idle_s:
                    log.info("idle for %.0f s: stopping", self.idle_s)
                    return
                continue
            try:
                self._handle(request)
            except RequestCancelled:       # a cancel that landed just as the command ended
                pass
            self.last_active = time.monotonic()

    def _handle(self, request: Request) -> None:
        from engine.server.request import run_for_client
        threading.Thread(target=self._watch, args=(request,), daemon=True, name="server-watch").start()
        started, code = time.monotonic(), 130
        try:
            self.current = request
            if not request.cancel_requested:
                code = run_for_client(request.message, request.conn, lambda: _cancellable(request))
        except RequestCancelled:           # cancelled outside the command's own Ctrl-C handling
            code = 130
        finally:
            self.current, request.done = None, True
            self.served += 1
            try:
                send(request.conn, {"type": "exit", "code": code})
            except OSError:
                pass
            _close(request.conn)
        log.info("exit %d after %.2f s: %s", code, time.monotonic() - started, request.summary)

    def _decline_queued(self, reason: str) -> None:
        while True:
            try:
                request = self.queue.get_nowait()
            except queue.Empty:
                return
            _reply_and_close(request.conn, {"type": "declined", "reason": reason})

    # ------------------------------------------------------------ other threads
    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return                      # closed: the server is stopping
            threading.Thread(target=self._greet, args=(conn,), daemon=True, name="server-greet").start()

    def _greet(self, conn: socket.socket) -> None:
        """Read what a new connection wants; status and stop are answered here, runs are queued."""
        try:
            if not _same_user(conn):
                raise ProtocolError("a connection from another user")
            conn.settimeout(GREETING_TIMEOUT_S)
            message = receive(conn)
            conn.settimeout(None)
        except OSError as exc:
            log.warning("dropped a connection: %s", exc)
            _close(conn)
            return
        kind = message and message["type"]
        if kind == "status":
            _reply_and_close(conn, self.status())
        elif kind == "stop":
            _reply_and_close(conn, {"type": "stopping", "pid": os.getpid()})
            log.info("stop requested")
            self.request_stop()
        elif kind == "run" and message.get("build") != self.build:
            _reply_and_close(conn, {"type": "declined", "reason": "the server runs other code (updated?)"})
            log.info("a client of other code: stopping so that it can start a new server")
            self.stopping = True           # after the command that runs, if any
        elif kind == "run" and not self.stopping:
            self.queue.put(Request(conn, message))
        elif kind == "run":
            _reply_and_close(conn, {"type": "declined", "reason": "the server is stopping"})
        else:
            _close(conn)

    def _watch(self, request: Request) -> None:
        """Until the command ends: a "cancel" from the client, or the client gone, cancels it."""
        try:
            while not request.done:
                message = receive(request.conn)
                if message is None or message["type"] == "cancel":
                    break
        except OSError:
            pass
        if not request.done:
            log.info("cancelled by the client: %s", request.summary)
            self._cancel(request)

    def status(self) -> dict:
        busy = self.current
        return {"type": "status", "pid": os.getpid(), "started": self.started,
                "uptime_s": time.time() - self.started, "state": "busy" if busy and busy.conn else self.state,
                "busy": busy.summary if busy else None,
                "busy_s": time.monotonic() - busy.received if busy else None,
                "queued": self.queue.qsize(), "served": self.served, "idle_timeout_s": self.idle_s,
                "idle_s": time.monotonic() - self.last_active, "models": self.pool.descriptions(),
                "socket": str(self.paths.socket), "log": str(self.paths.log), "python": sys.executable}


@contextlib.contextmanager
def _cancellable(request: Request) -> Iterator[None]:
    request.cancellable = True
    try:
        yield
    finally:
        request.cancellable = False


def running_pid(paths: ServerPaths) -> int | None:
    """The pid the running server recorded, if it did."""
    try:
        return int(json.loads(Path(paths.state).read_text())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _same_user(conn: socket.socket) -> bool:
    """The folder is private already; where the kernel tells the peer's uid (Linux), check it as well."""
    if not hasattr(socket, "SO_PEERCRED"):
        return True
    credentials = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", credentials)
    return uid == os.getuid()


def _reply_and_close(conn: socket.socket, message: dict) -> None:
    try:
        send(conn, message)
    except OSError:
        pass
    _close(conn)


def _close(conn: socket.socket | None) -> None:
    """Shut down first: a watcher blocked reading this connection wakes up (close alone may not wake it)."""
    if conn is None:
        return
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    conn.close()
