"""Where the server's socket, lock, state and log live: a folder only this user can enter.

$VIEWFINDER_RUNTIME_DIR, else $XDG_RUNTIME_DIR/viewfinder (per-user, in memory, cleared at logout), else
$XDG_CACHE_HOME/viewfinder/server (~/.cache/...). The folder is made 0700; one owned by someone else, or
open to others, is refused: whoever can reach the socket can run commands as this user.
"""
from __future__ import annotations

import hashlib
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from engine.errors import ViewfinderError

RUNTIME_ENV = "VIEWFINDER_RUNTIME_DIR"
#: sun_path holds 108 bytes on Linux (104 on macOS), the terminating NUL included.
MAX_SOCKET_PATH = 103


class ServerPathError(ViewfinderError, OSError):
    """The server folder cannot be used safely (someone else's, open to others, path too long)."""


@dataclass(frozen=True)
class ServerPaths:
    folder: Path

    @property
    def socket(self) -> Path:
        return self.folder / "server.sock"

    @property
    def lock(self) -> Path:
        return self.folder / "server.lock"

    @property
    def state(self) -> Path:
        """JSON with the running server's pid and start time (for messages while it cannot answer)."""
        return self.folder / "server.json"

    @property
    def log(self) -> Path:
        """The background server's own stdout and stderr (its clients' output goes to them)."""
        return self.folder / "server.log"


def runtime_folder() -> Path:
    if os.environ.get(RUNTIME_ENV):
        return Path(os.environ[RUNTIME_ENV]).expanduser()
    if os.environ.get("XDG_RUNTIME_DIR"):
        return Path(os.environ["XDG_RUNTIME_DIR"]) / "viewfinder"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "viewfinder" / "server"


def server_paths(create: bool = True) -> ServerPaths:
    """The paths, with the folder made (0700) and checked when `create`."""
    paths = ServerPaths(runtime_folder())
    if len(os.fsencode(paths.socket)) > MAX_SOCKET_PATH:
        raise ServerPathError(f"{paths.socket}: path too long for a Unix socket; set {RUNTIME_ENV} to a "
                              "shorter folder")
    if create:
        paths.folder.parent.mkdir(parents=True, exist_ok=True)
        try:
            paths.folder.mkdir(mode=0o700)
        except FileExistsError:
            pass
        _check_private(paths.folder)
    return paths


def _check_private(folder: Path) -> None:
    info = folder.lstat()
    if not stat.S_ISDIR(info.st_mode):
        raise ServerPathError(f"{folder}: not a folder; the server needs a private folder there")
    if info.st_uid != os.getuid():
        raise ServerPathError(f"{folder}: belongs to another user; set {RUNTIME_ENV} to a folder of yours")
    if info.st_mode & 0o077:     # ours but open to others (made by hand?): close it before using it
        os.chmod(folder, 0o700)


def build_id() -> str:
    """Which interpreter and engine source a process runs: a server built from other code (an upgrade, an
    edit in a checkout) must not answer for this one. Stats ~130 files: about 2 ms."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256(f"{sys.executable}\n{root}\n".encode())
    for folder, subfolders, files in os.walk(root):
        subfolders.sort()
        for name in sorted(files):
            if name.endswith(".py"):
                info = os.stat(os.path.join(folder, name))
                digest.update(f"{folder}/{name} {info.st_size} {info.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]
