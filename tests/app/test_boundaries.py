"""The app reaches the engine only through engine.pipeline and engine.train."""
from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "app"
ALLOWED = {"engine.pipeline", "engine.train"}


def engine_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names if alias.name.split(".")[0] == "engine")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] == "engine":
                names.add(node.module)
                if node.module == "engine":
                    names.update(f"engine.{alias.name}" for alias in node.names)
    return names


def test_app_imports_only_the_engine_api():
    offenders = {str(path.relative_to(APP.parent)): sorted(engine_imports(path) - ALLOWED)
                 for path in sorted(APP.rglob("*.py"))}
    offenders = {path: names for path, names in offenders.items() if names}
    assert offenders == {}, f"app/ may import only {sorted(ALLOWED)} from the engine: {offenders}"
    assert any(engine_imports(path) for path in APP.rglob("*.py"))


def test_the_checker_sees_every_form_of_engine_import(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import engine.model\nfrom engine.geo import raster\nfrom engine import index\n"
                      "from engine.pipeline import Localizer\n")
    assert engine_imports(sample) == {"engine.model", "engine.geo", "engine", "engine.index", "engine.pipeline"}
