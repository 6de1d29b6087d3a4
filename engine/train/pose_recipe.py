"""The CPU recipe for PoseNet: generate cached synthetic worlds, train the heads on a wall-clock budget, save.

    python -m engine.train.pose_recipe --worlds 160 --minutes 36 --out out/pose-run

Worlds are generated in chunks of 80 (one safetensors file each, reused when present), validation worlds
(seeds from 19000) are held out and evaluated every few hundred steps. On a 2-core CPU, 160 worlds (6400
photos) take about 10 minutes and the training budget is the rest; see docs/training.md.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import torch

from engine.model.pose_net import PoseNet
from engine.train.pose_data import PoseDataSpec, TRAIN_FIRST_SEED, load_worlds, make_worlds, save_worlds
from engine.train.pose_trainer import PoseTrainSpec, train_pose

log = logging.getLogger(__name__)
CHUNK = 80
VALIDATION_FIRST_SEED = 19_000


def ensure_chunks(folder: Path, worlds: int, processes: int) -> list[Path]:
    paths = []
    for chunk in range(-(-worlds // CHUNK)):
        path = folder / f"train-{chunk}.safetensors"
        if not path.exists():
            count = min(CHUNK, worlds - chunk * CHUNK)
            save_worlds(make_worlds(PoseDataSpec(worlds=count, first_seed=TRAIN_FIRST_SEED + CHUNK * chunk),
                                    processes=processes), path)
            log.info("wrote %s", path)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", type=int, default=160)
    parser.add_argument("--minutes", type=float, default=36.0, help="training wall-clock budget")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--processes", type=int, default=2, help="world-generation processes")
    parser.add_argument("--data", type=Path, default=Path("out/pose-data"))
    parser.add_argument("--out", type=Path, default=Path("out/pose-run"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(max(1, torch.get_num_threads()))
    args.data.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    files = ensure_chunks(args.data, args.worlds, args.processes)
    validation = args.data / "val.safetensors"
    if not validation.exists():
        save_worlds(make_worlds(PoseDataSpec(worlds=8, first_seed=VALIDATION_FIRST_SEED, photos_per_world=32),
                                processes=args.processes), validation)
    worlds = [w for f in files for w in load_worlds(f)]
    model = PoseNet()
    spec = PoseTrainSpec(steps=1_000_000, batch=args.batch, lr=args.lr, eval_every=200, eval_samples=192,
                         budget_minutes=args.minutes)
    summary = train_pose(model, worlds, spec, val_worlds=load_worlds(validation))
    summary["data"] = {"worlds": len(worlds), "first_seed": TRAIN_FIRST_SEED,
                       "validation_first_seed": VALIDATION_FIRST_SEED}
    model.metadata["training"] = summary
    model.save(args.out / "posenet.safetensors")
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    log.info("saved %s", args.out / "posenet.safetensors")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
