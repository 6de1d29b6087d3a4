"""Output folders that appear whole or not at all: work happens in a hidden sibling, renamed at the end."""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from engine.atomic import current_umask
from engine.errors import ViewfinderError


class OutputFolderError(ViewfinderError, ValueError):
    """The output folder cannot be used (not writable, not empty, not a folder)."""


def check_output_folder(out: Path, force: bool) -> None:
    """Fail early, before any work, if `out` cannot receive the export."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputFolderError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise OutputFolderError(f"{out}: folder is not empty (use --force to replace it)")
    ancestor = out.absolute().parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise OutputFolderError(f"{out}: cannot create the output folder, {ancestor} is not a folder")
    try:  # a real write probe: permission bits say nothing for root or on read-only mounts
        os.rmdir(tempfile.mkdtemp(prefix=".viewfinder-probe-", dir=ancestor))
    except OSError as exc:
        raise OutputFolderError(f"{out}: output folder is not writable ({exc.strerror})") from None


@contextlib.contextmanager
def staged_output_folder(out: str | os.PathLike, force: bool = False) -> Iterator[Path]:
    """Yield a temporary folder; on success it becomes `out` (replacing it when `force`), else it is removed."""
    out = Path(out)
    check_output_folder(out, force)
    out.absolute().parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.absolute().parent))
    try:
        yield staging
        os.chmod(staging, 0o777 & ~current_umask())  # mkdtemp makes 0700 folders
        if out.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.absolute().parent))
            os.replace(out, retired / out.name)
            os.replace(staging, out)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, out)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
