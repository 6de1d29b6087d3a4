"""The import contracts in pyproject.toml ([tool.importlinter]: the engine's layers, the app's way in, the
commands' use of training) hold, and lint-imports does catch a broken one."""
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """lint-imports on the packages under `root` with their pyproject.toml (no cache: a copy is new code)."""
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--no-logo"], cwd=root, capture_output=True, text=True,
                          timeout=300, env={"PATH": str(LINT_IMPORTS.parent), "PYTHONPATH": str(root)})


def test_the_import_contracts_hold():
    run = lint_imports(ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout


def test_a_lower_layer_importing_a_higher_one_breaks_the_layers(tmp_path):
    skip = shutil.ignore_patterns("__pycache__", "vendor", "resources")
    for package in ("engine", "app"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=skip)
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    tiling = tmp_path / "engine" / "geo" / "tiling.py"
    tiling.write_text(tiling.read_text() + "\nimport engine.pipeline  # noqa: E402\n")
    run = lint_imports(tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "The engine's layers BROKEN" in run.stdout
    assert "engine.geo.tiling -> engine.pipeline" in run.stdout
