"""The server's first localisation, before any client's: one demo photo on the demo map with the shipped
model, through the same command code. A process's first localisation pays for torch creating its CPU
kernels (oneDNN primitives, per input shape) and for loading the shipped models; the shapes are the
model's, not the photo's or the map's, so a client's first command then runs at warm speed. Nothing is
cached on disk (--no-cache) and nothing is kept but the warm model.
"""
from __future__ import annotations

import contextlib
import io
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


def warm_up(run_here: Callable[[list[str]], int], scene: Path | None = None) -> str:
    """Run it; what happened, in a few words (for the server log)."""
    if scene is None:
        from engine.commands.demo import DEMO_SCENE
        scene = DEMO_SCENE
    photos = sorted((scene / "photos").glob("*.jpg"))
    if not (scene / "map.tif").is_file() or not photos:
        return f"skipped: no demo scene in {scene}"
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="viewfinder-warm-up-") as folder:
        argv = ["localize", "--map", str(scene / "map.tif"), str(photos[0]),
                "--out", str(Path(folder) / "warm-up.geojson"), "--no-cache", "--quiet"]
        output = io.StringIO()
        with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
            code = run_here(argv)
    if code != 0:
        return f"exit {code} after {time.monotonic() - start:.1f} s: {output.getvalue().strip()[-300:]}"
    return f"done in {time.monotonic() - start:.1f} s"
