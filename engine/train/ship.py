"""Ship a trained model as the app's default: weights (safetensors with JSON metadata), a JSON sidecar and a
model card (training data, command, time, hardware, benchmark table).

    python -m engine.train.ship out/bench-runs/c/last.safetensors --bench docs/bench/accuracy.json
writes resources/models/viewfinder-default.safetensors, viewfinder-default.json and MODEL_CARD.md.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from engine.atomic import write_text_atomic
from engine.errors import ViewfinderError
from engine.model import CheckpointError, CrossViewNet

REPO_ROOT = Path(__file__).resolve().parents[2]
RESOURCES_MODELS = REPO_ROOT / "resources" / "models"
DEFAULT_NAME = "viewfinder-default"
MAX_BYTES = 30 * 1024 * 1024
SHIPPED_ARM = "(c)"      # the benchmark arm whose recipe the shipped model is trained with


class ShipError(ViewfinderError, ValueError):
    """The model cannot be shipped (too large, not a trained checkpoint)."""


def portable(value: Any, root: Path = REPO_ROOT) -> Any:
    """`value` with this machine's paths taken out: paths under `root` become relative, other absolute paths
    keep only their last part (a shipped model travels to other machines)."""
    if isinstance(value, dict):
        return {key: portable(item, root) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [portable(item, root) for item in value]
    if not isinstance(value, str):
        return value
    value = value.replace(f"{root}/", "")
    return " ".join(Path(word).name if word.startswith("/") and len(word) > 1 else word for word in value.split(" "))


def _markdown_table(rows: list[dict]) -> str:
    if not rows:
        return "_no rows_\n"
    columns = list(dict.fromkeys(key for row in rows for key in row))
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else ("" if v is None else str(v))  # noqa: E731
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def model_card(metadata: dict[str, Any], size_bytes: int, sha256: str, name: str,
               benchmark: dict[str, Any] | None) -> str:
    training = metadata.get("training", {})
    config = training.get("config", {})
    data = config.get("data", {})
    hardware = training.get("hardware", {})
    hours = (training.get("training_seconds") or 0.0) / 3600.0
    lines = [
        f"# Model card: {name}",
        "",
        "Cross-view localisation model of Viewfinder: retrieves the satellite tile a ground photo was taken in "
        "(CAFR-style retrieval), explains the match (CAFR attention, CWR point) and places the camera on the tile "
        "(fine-localisation head).",
        "",
        "## Model",
        f"- Architecture: {metadata.get('architecture')} with a {metadata['config'].get('backbone')} backbone "
        f"(initial weights: {metadata['config'].get('backbone_weights')}), "
        f"{metadata.get('parameters', 0) / 1e6:.2f} M parameters.",
        f"- Inputs: ground photo {metadata['ground_input_hw'][1]} x {metadata['ground_input_hw'][0]} px, satellite "
        f"tile {metadata['satellite_input_hw'][1]} x {metadata['satellite_input_hw'][0]} px at "
        f"{metadata['metres_per_pixel']} m/px, RGB in [0, 1]; descriptor {metadata.get('descriptor_dim')}-d.",
        f"- File: `{name}.safetensors`, {size_bytes / 1e6:.1f} MB, sha256 `{sha256}`; metadata in its header and in "
        f"`{name}.json`.",
        "",
        "## Training",
        f"- Data: {data.get('kind')} at `{data.get('root')}` "
        f"({training.get('dataset', {}).get('pairs', '?')} training pairs).",
    ]
    if data.get("generate"):
        spec = data["generate"]
        lines.append(f"- Synthetic worlds: biomes {', '.join(spec['biomes'])}, {spec['worlds_per_biome']} world(s) per "
                     f"biome from seed {spec['first_seed']}, {spec['photos_per_world']} photos per world, "
                     f"FoV {spec['fov_range'][0]:g}-{spec['fov_range'][1]:g} deg, {spec['size_m']:g} m worlds.")
    lines += [
        f"- Command: `{training.get('command', '?')}`",
        f"- Schedule: {training.get('epochs_completed', '?')} epochs, {training.get('global_step', '?')} steps, "
        f"optimiser {config.get('optim', {}).get('optimizer')} lr {config.get('optim', {}).get('lr')}, batch "
        f"{config.get('train', {}).get('batch_size')}; loss weights {json.dumps(training.get('loss', {}))}.",
        f"- Time and hardware: {hours:.2f} h on {hardware.get('device', '?')} x {hardware.get('processes', 1)} "
        f"process(es), torch {hardware.get('torch', '?')}.",
        f"- Last validation metrics: {json.dumps(training.get('last_metrics', {}), sort_keys=True)}",
    ]
    if metadata.get("calibration"):
        lines.append(f"- Calibration: the fine head's median error on the true tile is "
                     f"{metadata['calibration']['fine_median_error_m']:.1f} m (benchmark below); the engine uses it "
                     "to weigh the model's camera position against a photo's GPS prior.")
    lines += [
        "",
        "## Benchmark",
    ]
    if benchmark:
        machine = benchmark.get("machine", {})
        lines.append(f"`{benchmark.get('command')}` on {benchmark.get('date')}, {machine.get('cpu')}"
                     + (f", GPU {machine['gpu']}" if machine.get("gpu") else "") + ".")
        for section in benchmark.get("sections", []):
            lines += ["", f"### {section['section']}", "", _markdown_table(section["rows"]).rstrip()]
            if section.get("notes"):
                lines += ["", section["notes"]]
    else:
        lines.append("No benchmark was attached (see docs/benchmarks.md).")
    lines += [
        "",
        "## Limitations",
        "- Trained on synthetic worlds only; accuracy on real photos and imagery is not measured here.",
        "- Maps must be resampled to the model's ground resolution (the engine does this).",
        "",
    ]
    return "\n".join(lines)


def measured_fine_error(benchmark: dict[str, Any], arm: str = SHIPPED_ARM) -> float | None:
    """The fine head's median error (m) on the true tile that the accuracy benchmark measured for `arm`."""
    for section in benchmark.get("sections", []):
        for row in section.get("rows", []):
            if str(row.get("arm", "")).startswith(arm) and row.get("fine median m") is not None:
                return float(row["fine median m"])
    return None


def ship_model(checkpoint: str | Path, folder: str | Path = RESOURCES_MODELS, *, name: str = DEFAULT_NAME,
               benchmark_json: str | Path | None = None, max_bytes: int = MAX_BYTES) -> dict[str, Path]:
    """Copy a trained checkpoint into `folder` as `name`.safetensors + `name`.json + MODEL_CARD.md."""
    model = CrossViewNet.load(checkpoint)
    training = portable(model.metadata.get("training", {}))
    if training.get("trainer") != "engine.train":
        raise ShipError(f"{checkpoint}: not a checkpoint written by the trainer (no training summary)")
    benchmark = json.loads(Path(benchmark_json).read_text()) if benchmark_json else None
    fine_error = measured_fine_error(benchmark) if benchmark else None
    if fine_error is not None:      # lets the engine weigh the model's positions against GPS priors
        model.metadata["calibration"] = {"fine_median_error_m": fine_error,
                                         "measured_by": benchmark.get("command", "accuracy benchmark")}
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / f"{name}.safetensors"
    model.save(weights, training)
    size = weights.stat().st_size
    if size > max_bytes:
        weights.unlink()
        raise ShipError(f"{checkpoint}: {size / 1e6:.1f} MB is more than the {max_bytes / 1e6:.0f} MB allowed")
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    metadata = CrossViewNet.read_metadata(weights)
    sidecar = folder / f"{name}.json"
    write_text_atomic(sidecar, json.dumps({**metadata, "file": weights.name, "bytes": size, "sha256": digest},
                                          indent=2, sort_keys=True) + "\n")
    card = folder / "MODEL_CARD.md"
    write_text_atomic(card, model_card(metadata, size, digest, name, benchmark))
    return {"weights": weights, "metadata": sidecar, "card": card}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.train.ship", description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path, help="a trained model (e.g. RUN/last.safetensors)")
    parser.add_argument("--out", type=Path, default=RESOURCES_MODELS, help="folder (default resources/models)")
    parser.add_argument("--name", default=DEFAULT_NAME)
    parser.add_argument("--bench", type=Path, help="benchmark JSON for the card (docs/bench/accuracy.json)")
    args = parser.parse_args(argv)
    try:
        paths = ship_model(args.checkpoint, args.out, name=args.name, benchmark_json=args.bench)
    except (CheckpointError, ShipError, OSError, ValueError) as exc:
        print(f"ship: error: {exc}", file=sys.stderr)
        return 2
    print(f"shipped {paths['weights']} ({paths['weights'].stat().st_size / 1e6:.1f} MB), {paths['metadata'].name}, "
          f"{paths['card'].name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
