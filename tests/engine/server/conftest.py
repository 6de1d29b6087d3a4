"""A private runtime folder per test module (the user's real one is never touched), the shared small scene
and model (tests/engine/pipeline/scenes.py), and a helper to run `viewfinder` in a fresh process."""
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.engine.pipeline.scenes import scene, small_checkpoint  # noqa: F401

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def runtime():
    """VIEWFINDER_RUNTIME_DIR, XDG_RUNTIME_DIR and the gallery cache in a short temp folder (a socket path
    holds at most 103 bytes); any server left running at the end is stopped."""
    with tempfile.TemporaryDirectory(prefix="vf-") as folder, pytest.MonkeyPatch.context() as patch:
        folder = Path(folder)
        patch.setenv("VIEWFINDER_RUNTIME_DIR", str(folder / "run"))
        patch.setenv("XDG_RUNTIME_DIR", str(folder / "xdg"))
        patch.setenv("VIEWFINDER_CACHE", str(folder / "cache"))
        patch.delenv("VIEWFINDER_SERVER", raising=False)
        yield folder / "run"
        viewfinder("serve", "--stop")


def viewfinder(*argv, cwd=None, **kwargs) -> subprocess.CompletedProcess:
    """`viewfinder ARGV` in a new interpreter (as a user runs it), text output captured."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "engine.cli", *map(str, argv)], cwd=cwd or ROOT, env=env,
                          capture_output=True, text=True, timeout=300, **kwargs)
