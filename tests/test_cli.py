"""The `viewfinder` command: bad input gives one clear line and exit 2; good input writes complete outputs."""
import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli import main
from engine.errors import ViewfinderError
from engine.progress import Cancelled

ROOT = Path(__file__).resolve().parents[1]

SMALL = ["--size-m", "200", "--photos", "3", "--photo-size", "96x64", "--quiet"]


@pytest.mark.parametrize("argv,needle", [
    (["--fov", "0-50"], "1-179"),
    (["--fov", "200"], "1-179"),
    (["--fov", "abc"], "DEGREES"),
    (["--biome", "lunar"], "unknown biome"),
    (["--photos", "0"], "at least 1"),
    (["--photo-size", "10x10"], "16-8192"),
    (["--layout", "shapefile"], "invalid choice"),
])
def test_bad_synth_arguments(tmp_path, capsys, argv, needle):
    out = tmp_path / "out"
    assert main(["synth", *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("viewfinder") and needle in err
    assert not out.exists()


def test_unwritable_output_folder(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert main(["synth", *SMALL, "--out", str(blocker / "out")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert main(["synth", *SMALL, "--out", "/proc/viewfinder-out"]) == 2
    err = capsys.readouterr().err
    assert "not writable" in err and len(err.strip().splitlines()) == 1


def test_non_empty_output_folder_is_kept(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    assert main(["synth", *SMALL, "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert (out / "precious.txt").read_text() == "keep me"


def _digest_tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_scene_is_complete_and_deterministic(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["synth", "--biome", "suburban", "--seed", "5", *SMALL, "--out", str(a)]) == 0
    assert main(["synth", "--biome", "suburban", "--seed", "5", *SMALL, "--out", str(b)]) == 0
    files = _digest_tree(a)
    assert {"map.tif", "truth.geojson", "truth.csv", "scene.json"} <= set(files)
    assert sum(name.startswith("photos/") for name in files) == 3
    assert files == _digest_tree(b)
    # Nothing but the output folders is left behind (no staging folders).
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]


class BrokenInput(ViewfinderError, ValueError):
    """An engine error no command catches itself."""


def _raise(error: BaseException):
    def run(args):
        raise error
    return run


def test_an_engine_error_is_one_line_and_exit_2(monkeypatch, capsys):
    monkeypatch.setattr("engine.commands.synth.run", _raise(BrokenInput("map.tif: no georeferencing\n(detail)")))
    assert main(["synth", "--out", "unused"]) == 2
    err = capsys.readouterr().err
    assert err == "viewfinder synth: error: map.tif: no georeferencing\n(detail)\n"


@pytest.mark.parametrize("error", [KeyboardInterrupt(), Cancelled("cancelled")])
def test_ctrl_c_and_a_cancel_are_interrupted_and_exit_130(monkeypatch, capsys, error):
    monkeypatch.setattr("engine.commands.synth.run", _raise(error))
    assert main(["synth", "--out", "unused"]) == 130
    assert capsys.readouterr().err == "viewfinder synth: interrupted\n"


def test_a_bug_keeps_its_traceback(monkeypatch):
    monkeypatch.setattr("engine.commands.synth.run", _raise(ZeroDivisionError("a bug")))
    with pytest.raises(ZeroDivisionError):
        main(["synth", "--out", "unused"])


def test_torchrun_target_is_the_train_command():
    """`python -m engine.commands.train` (torchrun's -m target) parses as `viewfinder train` does."""
    run = subprocess.run([sys.executable, "-m", "engine.commands.train", "--epochs", "0", "config.toml"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert run.stderr.startswith("python -m engine.commands.train: error: argument --epochs: must be at least 1")
    assert len(run.stderr.strip().splitlines()) == 1
