"""Architecture rules that keep the engine usable without a GUI."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN_IN_ENGINE = ("PySide6", "PyQt5", "PyQt6", "pyqtgraph", "qtpy", "shiboken6")


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_engine_never_imports_qt():
    offenders = {}
    for path in sorted((ROOT / "engine").rglob("*.py")):
        bad = _imported_modules(path) & set(FORBIDDEN_IN_ENGINE)
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert offenders == {}, f"engine/ must not import Qt or pyqtgraph: {offenders}"


def test_the_checker_sees_qt_imports(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import os\nfrom PySide6.QtCore import QObject\nimport pyqtgraph as pg\n")
    assert {"PySide6", "pyqtgraph"} <= _imported_modules(sample)
