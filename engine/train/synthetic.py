"""Synthetic training and evaluation data made on demand: worlds of every biome exported in the CVNAF layout.

A `SyntheticDataSpec` names everything that decides the data (biomes, seeds, world size, photo count, chip
geometry); `ensure_synthetic_dataset` writes the export once and reuses it while the spec is unchanged (the
spec is stored in the export's dataset.json). Training and held-out evaluation sets differ by `first_seed`.
"""
from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.atomic import write_text_atomic
from engine.model.config import dataclass_from_dict, dataclass_to_dict
from engine.progress import CancelToken, ProgressCallback

logger = logging.getLogger(__name__)
SPEC_KEY = "viewfinder_train_spec"


def _registered_biomes() -> tuple[str, ...]:
    from engine.synth.biomes.registry import biome_names  # here, not at the top: it loads every biome module
    return biome_names()


@dataclass(frozen=True)
class SyntheticDataSpec:
    """World i of biome b gets seed first_seed + 1000 * b + i, so sets with different first seeds never share
    a world as long as first seeds differ by more than worlds_per_biome."""

    biomes: tuple[str, ...] = dataclasses.field(default_factory=_registered_biomes)
    first_seed: int = 100
    worlds_per_biome: int = 1
    photos_per_world: int = 500
    size_m: float = 1000.0
    resolution_m: float = 0.5
    #: Chips are larger than the model tile so that off-centre windows keep the whole tile on the map.
    chip_px: int = 256
    chip_metres_per_px: float = 1.0
    photo_size: tuple[int, int] = (192, 128)      # width, height
    fov_range: tuple[float, float] = (40.0, 110.0)
    #: Fraction of each world's photos in img_info_eval.csv (1.0 for held-out evaluation worlds).
    eval_fraction: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "biomes", tuple(self.biomes))
        object.__setattr__(self, "photo_size", tuple(int(v) for v in self.photo_size))
        object.__setattr__(self, "fov_range", tuple(float(v) for v in self.fov_range))
        registered = _registered_biomes()
        unknown = [b for b in self.biomes if b not in registered]
        if unknown or not self.biomes:
            raise ValueError(f"unknown biome(s) {unknown or self.biomes}; choose from {', '.join(registered)}")
        if min(self.worlds_per_biome, self.photos_per_world, self.chip_px) < 1:
            raise ValueError("worlds_per_biome, photos_per_world and chip_px must be at least 1")
        if not 0.0 <= self.eval_fraction <= 1.0:
            raise ValueError(f"eval_fraction must be in [0, 1], got {self.eval_fraction}")

    def world_seeds(self) -> list[tuple[str, int]]:
        return [(biome, self.first_seed + 1000 * index + world)
                for index, biome in enumerate(self.biomes) for world in range(self.worlds_per_biome)]

    def to_dict(self) -> dict[str, Any]:
        return dataclass_to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SyntheticDataSpec:
        return dataclass_from_dict(cls, data, "synthetic data")


def _export_info(root: Path) -> dict | None:
    """dataset.json of a synthetic export at `root`, None when there is none."""
    try:
        info = json.loads((Path(root) / "dataset.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and info.get("generator") == "viewfinder synth" else None


def ensure_synthetic_dataset(spec: SyntheticDataSpec, root: str | Path, *,
                             progress: ProgressCallback | None = None,
                             cancel: CancelToken | None = None) -> Path:
    """The CVNAF-layout export of `spec` at `root`: reused when it was made from the same spec, else (re)made.

    Only a synthetic export (of another spec, or unfinished) is replaced; any other non-empty folder is an error.
    """
    from engine.synth.export import export_cvnaf
    from engine.synth.generate import generate_world
    from engine.synth.photos import PhotoSpec

    root = Path(root)
    wanted = spec.to_dict()
    info = _export_info(root)
    if info is not None and info.get(SPEC_KEY) == wanted:
        return root
    if root.exists() and not root.is_dir():
        raise ValueError(f"{root}: exists and is not a folder")
    if root.is_dir() and any(root.iterdir()) and info is None:
        raise ValueError(f"{root}: folder is not empty and holds no synthetic dataset; choose another data root")
    logger.info("generating synthetic dataset %s (%d worlds x %d photos)", root,
                len(spec.world_seeds()), spec.photos_per_world)
    worlds = []
    seeds = spec.world_seeds()
    for done, (biome, seed) in enumerate(seeds):
        if cancel is not None:
            cancel.raise_if_cancelled()
        if progress is not None:
            progress("synthetic worlds", done, len(seeds))
        worlds.append(generate_world(biome, seed, size_m=spec.size_m, resolution_m=spec.resolution_m))
    if progress is not None:
        progress("synthetic worlds", len(seeds), len(seeds))

    def photo_progress(stage: str, done: int, total: int) -> None:
        if cancel is not None:
            cancel.raise_if_cancelled()
        if progress is not None:
            progress(stage, done, total)

    photo_spec = PhotoSpec(spec.photos_per_world, spec.fov_range, spec.photo_size)
    export_cvnaf(worlds, photo_spec, spec.first_seed, root, chip_px=spec.chip_px,
                 chip_metres_per_px=spec.chip_metres_per_px, eval_fraction=spec.eval_fraction,
                 force=info is not None, progress=photo_progress)
    # the spec is written last: an export interrupted before this point is remade next time
    info = json.loads((root / "dataset.json").read_text(encoding="utf-8"))
    info[SPEC_KEY] = wanted
    write_text_atomic(root / "dataset.json", json.dumps(info, indent=2, sort_keys=True) + "\n")
    return root
