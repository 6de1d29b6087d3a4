"""`viewfinder serve`: the warm engine server `viewfinder localize --warm` talks to (see engine/server)."""
from __future__ import annotations

import logging
import sys
import time

from engine.commands.common import EXIT_FAILED, EXIT_OK, UsageError, positive_float

DEFAULT_IDLE_MINUTES = 30.0


def add_parser(sub) -> None:
    p = sub.add_parser("serve", help="keep the engine loaded for `localize --warm` (a per-user server)",
                       description="Run the warm engine server: it imports the engine once, keeps models loaded "
                                   "and runs the commands `viewfinder localize --warm` sends it, one at a time, "
                                   "with their output, exit code and Ctrl-C carried back. It listens on a "
                                   "socket only this user can reach ($VIEWFINDER_RUNTIME_DIR, else "
                                   "$XDG_RUNTIME_DIR/viewfinder, else ~/.cache/viewfinder/server) and stops "
                                   "after --idle-minutes without commands. `localize --warm` starts one in "
                                   "the background when none runs; this command runs one in the foreground.")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--status", action="store_true", help="say whether a server runs: pid, uptime, models "
                                                            "loaded (exit 0 if one runs, else 1)")
    what.add_argument("--stop", action="store_true", help="stop the running server (it cancels the command it "
                                                          "runs, if any)")
    what.add_argument("--background", action="store_true", help="start the server detached from this terminal "
                                                                "and return once it answers")
    p.add_argument("--idle-minutes", type=positive_float, default=DEFAULT_IDLE_MINUTES, metavar="M",
                   help=f"stop after M minutes without commands (default {DEFAULT_IDLE_MINUTES:.0f})")
    p.add_argument("--no-warm-up", action="store_true",
                   help="skip the first localisation on the demo scene (the first command then pays for it)")


def run(args) -> int:
    from engine.server.paths import server_paths
    try:
        paths = server_paths()
    except OSError as exc:
        raise UsageError(str(exc)) from None
    if args.status:
        return _status(paths)
    if args.stop:
        return _stop(paths)
    if args.background:
        return _background(paths, args)
    return _serve(paths, args)


def _serve(paths, args) -> int:
    from engine.server.server import AlreadyRunning, Server
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s viewfinder serve: %(message)s", "%Y-%m-%d %H:%M:%S"))
    server_log = logging.getLogger("engine.server")
    # its own handler, not the root's: the engine's log records during a command belong to that command's
    # client (they go to its stderr when they would in a plain run), not to the server's log
    server_log.addHandler(handler)
    server_log.setLevel(logging.INFO)
    server_log.propagate = False
    try:
        Server(paths, idle_s=args.idle_minutes * 60.0, warm_up=not args.no_warm_up).run()
    except AlreadyRunning as exc:
        pid = f"pid {exc.args[0]}" if exc.args and exc.args[0] else "starting or stopping"
        print(f"viewfinder serve: error: a warm server already runs ({pid}, socket {paths.socket}); "
              "`viewfinder serve --stop` stops it", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:           # the socket cannot be bound, the folder is not writable, ...
        print(f"viewfinder serve: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        server_log.removeHandler(handler)
    return EXIT_OK


def _background(paths, args) -> int:
    from engine.server.client import START_TIMEOUT_S, connect, start_server
    from engine.server.lock import held_by_a_server
    from engine.server.server import running_pid
    if held_by_a_server(paths.lock):
        print(f"viewfinder serve: error: a warm server already runs (pid {running_pid(paths)}, socket "
              f"{paths.socket})", file=sys.stderr)
        return EXIT_FAILED
    extra = ["--idle-minutes", str(args.idle_minutes)] + (["--no-warm-up"] if args.no_warm_up else [])
    process = start_server(paths, extra)
    deadline = time.monotonic() + START_TIMEOUT_S
    while (conn := connect(paths)) is None:
        if process.poll() is not None or time.monotonic() > deadline:
            print(f"viewfinder serve: error: the server did not start (see {paths.log})", file=sys.stderr)
            return EXIT_FAILED
        time.sleep(0.05)
    conn.close()
    print(f"warm server started: pid {process.pid}, socket {paths.socket}, log {paths.log}")
    return EXIT_OK


def _status(paths) -> int:
    from engine.server.client import ask
    from engine.server.lock import held_by_a_server
    from engine.server.server import running_pid
    reply = ask(paths, {"type": "status"})
    if reply is None:
        if held_by_a_server(paths.lock):
            print(f"a warm server (pid {running_pid(paths)}) is starting or stopping and does not answer yet")
        elif paths.socket.exists():
            print(f"no warm server runs (a dead server's socket is left at {paths.socket}; the next server "
                  "replaces it)")
        else:
            print("no warm server runs")
        return EXIT_FAILED
    busy = f"busy for {reply['busy_s']:.0f} s with: {reply['busy']}" if reply["busy"] else "idle"
    print(f"warm server: pid {reply['pid']}, up {_duration(reply['uptime_s'])}, {reply['state']}, {busy}")
    print(f"commands served: {reply['served']}, queued: {reply['queued']}; stops after "
          f"{_duration(reply['idle_timeout_s'])} idle (idle for {_duration(reply['idle_s'])})")
    print(f"models loaded: {'; '.join(reply['models']) or 'none yet'}")
    print(f"socket: {reply['socket']}  log: {reply['log']}")
    return EXIT_OK


def _stop(paths) -> int:
    from engine.server.client import STOP_TIMEOUT_S, ask, wait_until_gone
    reply = ask(paths, {"type": "stop"})
    if reply is None:
        print("no warm server runs")
        return EXIT_OK
    if not wait_until_gone(paths, STOP_TIMEOUT_S):
        print(f"viewfinder serve: error: the warm server (pid {reply.get('pid')}) was asked to stop and still "
              f"runs after {STOP_TIMEOUT_S:.0f} s", file=sys.stderr)
        return EXIT_FAILED
    print(f"stopped the warm server (pid {reply.get('pid')})")
    return EXIT_OK


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"
