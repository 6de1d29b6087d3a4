"""Writing a set of output files together or not at all.

Every target is checked before any work (its folder exists, is writable, the target is not a folder), each
file is written to a hidden temporary file beside its target, and only when every file is complete are they
renamed into place. A failure removes every temporary file and leaves earlier versions untouched.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from engine.atomic import current_umask
from engine.errors import ViewfinderError


class OutputError(ViewfinderError, ValueError):
    """An output path cannot be written; the message names it and why."""


def check_targets(targets: Iterable[str | os.PathLike | None], make_dirs: bool = False) -> list[Path]:
    """The usable targets (None skipped); OutputError for a missing folder (unless make_dirs), an unwritable
    folder, a target that is a folder, or the same file named twice."""
    checked: list[Path] = []
    for target in targets:
        if target is None:
            continue
        path = Path(target)
        if path.is_dir():
            raise OutputError(f"{path}: is a folder; give a file name")
        folder = path.parent if str(path.parent) else Path(".")
        if not folder.exists():
            if not make_dirs:
                raise OutputError(f"{path}: folder {folder} does not exist (create it, or pass --make-dirs)")
        elif not folder.is_dir():
            raise OutputError(f"{path}: {folder} is not a folder")
        elif not os.access(folder, os.W_OK | os.X_OK):
            raise OutputError(f"{path}: folder {folder} is not writable")
        if path.exists() and not os.access(path, os.W_OK):
            raise OutputError(f"{path}: file exists and is not writable")
        if any(os.path.abspath(path) == os.path.abspath(other) for other in checked):
            raise OutputError(f"{path}: named for two outputs")
        checked.append(path)
    return checked


def write_together(contents: dict[Path, bytes], make_dirs: bool = False) -> list[Path]:
    """Write every (target -> bytes) or none: staged beside each target, renamed when all are written."""
    targets = check_targets(contents, make_dirs)
    staged: list[tuple[Path, Path]] = []
    try:
        for target in targets:
            target.parent.mkdir(parents=True, exist_ok=True)     # only reached with make_dirs for new folders
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
            staged.append((Path(tmp), target))
            with os.fdopen(fd, "wb") as handle:
                handle.write(contents[target])
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o666 & ~current_umask())
        for tmp, target in staged:
            os.replace(tmp, target)
    except OSError as exc:
        raise OutputError(f"cannot write {getattr(exc, 'filename', None) or 'the outputs'}: "
                          f"{exc.strerror or exc}; no output was written") from None
    finally:
        for tmp, _ in staged:
            if tmp.exists():
                tmp.unlink()
    return targets
