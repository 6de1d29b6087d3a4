"""Start-up: `viewfinder localize` of one photo on a map already in the gallery cache, from a fresh process.

The analyst's wait from Enter to the first result. Each run is a new interpreter (imports and the model load
count, as they do for a user); a second child reports where the time goes. Target: <= 3 s wall on 2 cores.
The same command with --warm runs on the warm server (`viewfinder serve`, engine/server): measured with a
server that has warmed up but never seen this command, with none running (the client starts one), and the
server's own start.

`python -m tests.bench.bench_startup` writes docs/bench/startup.json and its section of docs/benchmarks.md;
VIEWFINDER_BENCH_BUSY names what else ran on the machine, for the notes.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEMO_MAP = ROOT / "resources" / "demo" / "map.tif"
PHOTO = ROOT / "resources" / "demo" / "photos" / "urban_s7_0000.jpg"
RUNS = 3
TARGET_S = 3.0
SECTION = "Start-up: first result of `viewfinder localize` on a cached map"
#: What else kept the machine busy, for the notes (say "a model-training job on the same cores").
BUSY_ENV = "VIEWFINDER_BENCH_BUSY"

# Runs in a fresh interpreter: the phases of the same work the command does, timed one by one.
PHASES = r"""
import json, sys, time
t0 = time.perf_counter()
import engine.cli  # noqa: F401
from engine.commands import localize  # noqa: F401
t1 = time.perf_counter()
from engine.pipeline import Localizer, LocalizerConfig, write_results_geojson
t2 = time.perf_counter()
localizer = Localizer(config=LocalizerConfig(cache_dir=sys.argv[1]))
t3 = time.perf_counter()
gallery = localizer.index_map(sys.argv[2])
t4 = time.perf_counter()
result = localizer.localize(sys.argv[3], gallery)
t5 = time.perf_counter()
write_results_geojson([result], sys.argv[4])
t6 = time.perf_counter()
print(json.dumps({"cli imports": t1 - t0, "engine imports (torch, timm, ...)": t2 - t1, "model load": t3 - t2,
                  "gallery from cache": t4 - t3, "localise": t5 - t4, "export": t6 - t5,
                  "steps_ms": result.timings_ms, "from_cache": gallery.from_cache}))
"""


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _viewfinder(*argv, env: dict) -> float:
    """Wall seconds of one `viewfinder ARGV` in a new interpreter."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "engine.cli", *map(str, argv)], check=True, cwd=ROOT, env=env,
                   capture_output=True)
    return time.perf_counter() - start


def _until_ready(env: dict, timeout_s: float = 300.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = subprocess.run([sys.executable, "-m", "engine.cli", "serve", "--status"], cwd=ROOT, env=env,
                                capture_output=True, text=True)
        if status.returncode == 0 and ", ready, idle" in status.stdout:
            return
        time.sleep(0.1)
    raise TimeoutError("the warm server did not finish warming up")


def _warm_rows(localize: list, env: dict) -> list[dict]:
    """The --warm rows: no server (the client starts one), the server's start, then a warm server."""
    auto_start = _viewfinder(*localize, "--warm", env=env)
    _viewfinder("serve", "--stop", env=env)
    start = time.perf_counter()
    _viewfinder("serve", "--background", env=env)
    answering = time.perf_counter() - start
    _until_ready(env)
    ready = time.perf_counter() - start
    warm = [_viewfinder(*localize, "--warm", env=env) for _ in range(RUNS)]
    ask = min(_viewfinder("serve", "--status", env=env) for _ in range(RUNS))
    _viewfinder("serve", "--stop", env=env)
    return [{"run": "viewfinder localize --warm, 1 photo, cached map, server warm (wall, fresh client process)",
             "first (s)": warm[0], "best (s)": min(warm), "median (s)": statistics.median(warm),
             "target (s)": TARGET_S, "meets target": "yes" if warm[0] <= TARGET_S else "no"},
            {"run": "viewfinder localize --warm with no server running (the client starts one, cold)",
             "best (s)": auto_start},
            {"run": "viewfinder serve --background: start until it answers", "best (s)": answering},
            {"run": "viewfinder serve: start until warm (engine imports + warm-up on the demo scene)",
             "best (s)": ready},
            {"run": "for scale: a client that only asks the server (`viewfinder serve --status`)", "best (s)": ask}]


def run() -> list[dict]:
    with tempfile.TemporaryDirectory() as work:
        cache, out = Path(work) / "cache", Path(work) / "r.geojson"
        # the bench's own server folder: it never meets (or stops) a server the user runs
        env = {**_env(), "VIEWFINDER_RUNTIME_DIR": str(Path(work) / "run")}
        _viewfinder("index", DEMO_MAP, "--cache-dir", cache, "--quiet", env=env)
        localize = ["localize", "--map", DEMO_MAP, PHOTO, "--out", out, "--cache-dir", cache, "--quiet"]
        walls = [_viewfinder(*localize, env=env) for _ in range(RUNS)]
        warm_rows = _warm_rows(localize, env)
        child = subprocess.run([sys.executable, "-c", PHASES, str(cache), str(DEMO_MAP), str(PHOTO), str(out)],
                               check=True, cwd=ROOT, env=_env(), capture_output=True, text=True)
        phases = json.loads(child.stdout.strip().splitlines()[-1])
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import torch"], check=True, env=_env(), capture_output=True)
        torch_alone = time.perf_counter() - start
    load = os.getloadavg()[0]
    rows = [{"run": "viewfinder localize, 1 photo, cached map (wall, fresh process)", "first (s)": walls[0],
             "best (s)": min(walls), "median (s)": statistics.median(walls), "target (s)": TARGET_S,
             "meets target": "yes" if min(walls) <= TARGET_S else "no"}]
    rows += warm_rows
    rows.append({"run": "for scale: `python -c 'import torch'` alone (wall)", "best (s)": torch_alone})
    rows += [{"run": f"phase: {name}", "best (s)": float(seconds)} for name, seconds in phases.items()
             if isinstance(seconds, float)]
    rows += [{"run": f"localise step: {name}", "best (s)": ms / 1000.0} for name, ms in phases["steps_ms"].items()]
    nice, what = os.nice(0), os.environ.get(BUSY_ENV, "").strip()
    busy = (f"Load average {load:.1f} on {os.cpu_count()} cores at the end"
            + (f", and this benchmark ran at nice {nice}" if nice else "")
            + (f": the machine was busy with other work{f' ({what})' if what else ''}, so these are slower "
               "than an idle machine's; `import torch` alone shows the scale." if load >= 1.0 else "."))
    notes = (f"Shipped model, demo map (600 m, 117 tiles of 128 m, loaded from the gallery cache: "
             f"{phases['from_cache']}), one 512 x 384 photo with EXIF GPS. {RUNS} runs of the command, each a new "
             "process; the phases are one more process doing the same work step by step (the command adds the "
             "interpreter's start, argument parsing and the index plan). "
             "--warm: the same command sent to the warm server by a fresh client process (standard library "
             "only, no torch). 'server warm' means started with `viewfinder serve --background` and warmed up "
             "(its warm-up localises the first demo photo on the demo map without the gallery cache and keeps "
             "nothing but the loaded models) but never given a command; 'first' is the "
             f"first of its {RUNS} runs, and the --warm row's target is judged on it. With no server running the "
             "client starts one without warm-up and waits for it: that run pays the cold start once, the next "
             "ones are warm. " + busy)
    return [{"section": SECTION, "rows": rows, "notes": notes}]


def main() -> None:
    from datetime import datetime

    from tests.bench.run_all import JSON_DIR, PAGE, _table, machine
    start = time.perf_counter()
    sections = run()
    info = machine()
    result = {"command": "python -m tests.bench.bench_startup", "machine": info,
              "date": datetime.now(UTC).strftime("%Y-%m-%d"), "seconds": time.perf_counter() - start,
              "sections": sections}
    JSON_DIR.mkdir(parents=True, exist_ok=True)
    (JSON_DIR / "startup.json").write_text(json.dumps(result, indent=1))
    where = f"{info['cpu']}, {info['cores']} cores" + (f", GPU {info['gpu']}" if info.get("gpu") else ", no GPU")
    section = sections[0]
    text = (f"\n## {section['section']}\nCommand: `{result['command']}` · {result['date']} · {where} · "
            f"torch {info['torch']} · {result['seconds']:.0f} s\n\n{_table(section['rows'])}\n{section['notes']}\n")
    page = PAGE.read_text() if PAGE.exists() else "# Benchmarks\n"
    head = f"\n## {SECTION}\n"
    if head in page:       # replace this section only, up to the next one, where it stands
        before, rest = page.split(head, 1)
        after = rest.split("\n## ", 1)
        page = before.rstrip("\n") + "\n" + text + (("\n## " + after[1]) if len(after) > 1 else "")
    else:
        page = page.rstrip("\n") + "\n" + text
    PAGE.write_text(page)
    print(_table(section["rows"]))


if __name__ == "__main__":
    main()
