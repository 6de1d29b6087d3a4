"""Run benchmarks and write docs/bench/<name>.json plus the docs/benchmarks.md table.

`python -m tests.bench.run_all` runs all; `python -m tests.bench.run_all world render` runs some. Results of
benchmarks not run this time are kept from their last JSON, so the page always shows every benchmark.
Each bench module exposes run() -> list of {"section", "rows": [dict], "notes"}.
"""
from __future__ import annotations

import importlib
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
JSON_DIR = ROOT / "docs" / "bench"
PAGE = ROOT / "docs" / "benchmarks.md"
BENCHES = ["world", "synth", "render", "model", "pipeline", "startup", "accuracy", "pose"]
#: Run only when named (`make bench-accuracy`, `make bench-pose`): they take tens of minutes.
ON_DEMAND = {"accuracy", "pose"}


def machine() -> dict:
    import torch
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
            "gpu": gpu}


def _table(rows: list[dict]) -> str:
    if not rows:
        return "_no rows_\n"
    columns = list(dict.fromkeys(k for row in rows for k in row))
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_page() -> None:
    parts = ["# Benchmarks\n",
             "Measured by `make bench` (`python -m tests.bench.run_all [NAME ...]`); each section names the command "
             "that produced it, the machine and the date. Raw results: `docs/bench/*.json`.\n"]
    for name in BENCHES:
        path = JSON_DIR / f"{name}.json"
        if not path.exists():
            continue
        result = json.loads(path.read_text())
        m = result["machine"]
        where = f"{m['cpu']}, {m['cores']} cores" + (f", GPU {m['gpu']}" if m.get("gpu") else ", no GPU")
        for section in result["sections"]:
            parts.append(f"\n## {section['section']}\n")
            parts.append(f"Command: `{result['command']}` · {result['date']} · {where} · "
                         f"torch {m['torch']} · {result['seconds']:.0f} s\n\n")
            parts.append(_table(section["rows"]))
            if section.get("notes"):
                parts.append(f"\n{section['notes']}\n")
    PAGE.write_text("".join(parts))


def run(names: list[str]) -> None:
    JSON_DIR.mkdir(parents=True, exist_ok=True)
    info = machine()
    for name in names:
        module = importlib.import_module(f"tests.bench.bench_{name}")
        print(f"== bench {name}", flush=True)
        start = time.perf_counter()
        sections = module.run()
        result = {"command": f"python -m tests.bench.run_all {name}", "machine": info,
                  "date": datetime.now(UTC).strftime("%Y-%m-%d"),
                  "seconds": time.perf_counter() - start, "sections": sections}
        (JSON_DIR / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
        for section in sections:
            print(f"-- {section['section']}\n{_table(section['rows'])}", flush=True)
    write_page()


if __name__ == "__main__":
    wanted = sys.argv[1:] or [name for name in BENCHES if name not in ON_DEMAND]
    unknown = [n for n in wanted if n not in BENCHES]
    if unknown:
        sys.exit(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHES)}")
    run(wanted)
