"""mypy on engine/ with a per-module ratchet: the modules listed in pyproject's [[tool.mypy.overrides]]
(ignore_errors) are the only ones allowed to fail, and each of them must still fail (a module that has become
clean leaves the list, so the list only shrinks)."""
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ERROR_LINE = re.compile(r"^(engine/[^:]+\.py):\d+: error:", re.MULTILINE)


def _ratchet(config: dict) -> list[str]:
    overrides = [o for o in config["tool"]["mypy"].get("overrides", []) if o.get("ignore_errors")]
    return sorted(m for o in overrides for m in o["module"])


def _module_name(path: str) -> str:
    name = path.removesuffix(".py").replace("/", ".")
    return name.removesuffix(".__init__")


@pytest.mark.slow       # about a minute on 2 cores without a cache
def test_mypy_fails_exactly_on_the_ratchet_modules(tmp_path):
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    ratchet = _ratchet(config)
    missing = [m for m in ratchet if not (ROOT / Path(*m.split("."))).with_suffix(".py").is_file()
               and not (ROOT / Path(*m.split(".")) / "__init__.py").is_file()]
    assert missing == [], f"modules in the mypy ratchet that no longer exist: {missing}"

    settings = {k: v for k, v in config["tool"]["mypy"].items() if k != "overrides"}
    lines = ["[mypy]"] + [f"{k} = {str(v).lower() if isinstance(v, bool) else v}" for k, v in settings.items()
                          if not isinstance(v, list)]
    unchecked = tmp_path / "mypy.ini"            # the same settings without the ratchet: every error shows
    unchecked.write_text("\n".join(lines) + "\n", encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(unchecked),
                          "--cache-dir", str(ROOT / ".mypy_cache"), "engine"],
                         cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert run.returncode in (0, 1), run.stdout + run.stderr
    failing = sorted({_module_name(p) for p in ERROR_LINE.findall(run.stdout)})
    new = sorted(set(failing) - set(ratchet))
    clean = sorted(set(ratchet) - set(failing))
    assert new == [], "mypy errors in modules outside the ratchet:\n" + "\n".join(
        line for line in run.stdout.splitlines() if any(line.startswith(m.replace(".", "/")) for m in new))
    assert clean == [], f"these modules type-check now: remove them from the ratchet in pyproject.toml: {clean}"
