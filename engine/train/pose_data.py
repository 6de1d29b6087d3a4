"""Training data for PoseNet: many small synthetic worlds, their frozen trunk features cached.

The trunk is frozen, so every photo and every map is pushed through it once; training then runs only the
small heads. Worlds vary biome, cell size (the map is resampled to the model's input resolution, as any map
is), sun, photo size and aspect, FoV, eye height, pitch and roll, so no world is seen twice.
"""
from __future__ import annotations

import logging
import math
import multiprocessing as mp
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from engine.model.pose_net import photo_tensor
from engine.progress import CancelToken, ProgressCallback

log = logging.getLogger(__name__)

#: Worlds for training draw seeds from here on; held-out benchmark worlds use HELD_OUT_FIRST_SEED.
TRAIN_FIRST_SEED = 20_000
HELD_OUT_FIRST_SEED = 90_000


@dataclass(frozen=True)
class PoseDataSpec:
    worlds: int = 200
    first_seed: int = TRAIN_FIRST_SEED
    photos_per_world: int = 40
    size_m: float = 288.0
    #: cameras stay this far inside the world so training crops (half the 96 m BEV + 16 m of search) fit
    border_margin_m: float = 66.0
    resolutions_m: tuple[float, ...] = (0.4, 0.5, 0.6)
    photo_sizes: tuple[tuple[int, int], ...] = ((384, 256), (320, 240))
    fov_range: tuple[float, float] = (40.0, 110.0)

    def world_params(self, index: int) -> tuple[str, int, float]:
        from engine.synth.biomes.registry import biome_names

        biomes = biome_names()
        seed = self.first_seed + index
        rng = np.random.default_rng([seed, 77])
        return biomes[index % len(biomes)], seed, float(rng.choice(self.resolutions_m))


@dataclass
class PoseWorld:
    """One world's cached trunk features and truth, map on the BEV grid (1 cell = 2 input pixels)."""

    biome: str
    seed: int
    map_f2: torch.Tensor          # (16, H, W) float16, BEV cells
    map_f4: torch.Tensor          # (24, H/2, W/2) float16
    ground_f8: torch.Tensor       # (P, 40, h, w) float16
    ground_f16: torch.Tensor      # (P, 112, h/2, w/2) float16
    fov_deg: torch.Tensor         # (P,)
    original_wh: torch.Tensor     # (P, 2)
    camera_cells: torch.Tensor    # (P, 2) camera (col, row) in BEV cells from the map's NW corner
    heading_deg: torch.Tensor     # (P,)


def resample_map(rgb: np.ndarray, from_m: float, to_m: float) -> np.ndarray:
    """An orthophoto at from_m metres per pixel resampled to to_m (area-averaged when shrinking)."""
    if abs(from_m - to_m) < 1e-9:
        return rgb
    h, w = rgb.shape[:2]
    size = (max(1, round(w * from_m / to_m)), max(1, round(h * from_m / to_m)))
    method = Image.Resampling.BOX if to_m > from_m else Image.Resampling.BILINEAR
    return np.asarray(Image.fromarray(rgb).resize(size, method))


def make_world(spec: PoseDataSpec, index: int, model) -> PoseWorld:
    """Generate world `index` of `spec` and push its map and photos through the model's frozen trunks."""
    from engine.synth.generate import generate_world
    from engine.synth.ortho import render_orthophoto
    from engine.synth.photos import PhotoSpec, generate_photos

    biome, seed, resolution = spec.world_params(index)
    rng = np.random.default_rng([seed, 78])
    world = generate_world(biome, seed, size_m=spec.size_m, resolution_m=resolution)
    ortho = render_orthophoto(world, sun_azimuth_deg=float(rng.uniform(0, 360)),
                              sun_elevation_deg=float(rng.uniform(30, 75)), rng=rng)
    map_px = model.config.map_metres_per_pixel
    ortho = resample_map(ortho, resolution, map_px)
    photo_size = spec.photo_sizes[int(rng.integers(len(spec.photo_sizes)))]
    photos = list(generate_photos(world, PhotoSpec(count=spec.photos_per_world, size=photo_size,
                                                   fov_range=spec.fov_range,
                                                   border_margin_m=spec.border_margin_m), seed=seed))
    cell = model.config.grid.cell_m
    x0, y0 = world.origin_xy
    with torch.inference_mode():
        f2, f4 = model.map_trunk_features(torch.from_numpy(ortho.copy()).permute(2, 0, 1)[None])
        images = torch.stack([photo_tensor(image, model.config.ground_hw) for _, image in photos])
        f8, f16 = model.ground_trunk_features(images)
    truths = [truth for truth, _ in photos]
    return PoseWorld(
        biome=biome, seed=seed, map_f2=f2[0].half(), map_f4=f4[0].half(), ground_f8=f8.half(),
        ground_f16=f16.half(), fov_deg=torch.tensor([t.fov_deg for t in truths], dtype=torch.float32),
        original_wh=torch.tensor([[t.width, t.height] for t in truths], dtype=torch.float32),
        camera_cells=torch.tensor([[(t.x - x0) / cell, (y0 - t.y) / cell] for t in truths], dtype=torch.float32),
        heading_deg=torch.tensor([t.heading_deg for t in truths], dtype=torch.float32))


_WORKER_MODEL = None


def _worker_init() -> None:
    global _WORKER_MODEL
    torch.set_num_threads(1)
    from engine.model.pose_net import PoseNet
    _WORKER_MODEL = PoseNet()


def _worker_make(args: tuple[PoseDataSpec, int]) -> PoseWorld:
    spec, index = args
    return make_world(spec, index, _WORKER_MODEL)


def make_worlds(spec: PoseDataSpec, processes: int = 2, progress: ProgressCallback | None = None,
                cancel: CancelToken | None = None) -> list[PoseWorld]:
    """All worlds of `spec`, generated in `processes` worker processes (each single-threaded)."""
    jobs = [(spec, index) for index in range(spec.worlds)]
    worlds: list[PoseWorld] = []
    if processes <= 1:
        _worker_init()
        iterator = map(_worker_make, jobs)
        pool = None
    else:
        pool = mp.get_context("spawn").Pool(processes, initializer=_worker_init)
        iterator = pool.imap(_worker_make, jobs)
    try:
        for world in iterator:
            worlds.append(world)
            if progress:
                progress("generating pose worlds", len(worlds), spec.worlds)
            if cancel is not None:
                cancel.raise_if_cancelled()
    finally:
        if pool is not None:
            pool.terminate()
    return worlds


def save_worlds(worlds: list[PoseWorld], path: str | Path) -> Path:
    """Cache worlds in one safetensors file (no pickles)."""
    from engine.model.checkpoint import write_checkpoint
    tensors, meta = {}, []
    for i, w in enumerate(worlds):
        for name in ("map_f2", "map_f4", "ground_f8", "ground_f16", "fov_deg", "original_wh", "camera_cells",
                     "heading_deg"):
            tensors[f"{i}.{name}"] = getattr(w, name)
        meta.append({"biome": w.biome, "seed": w.seed})
    return write_checkpoint(path, tensors, {"pose_worlds": meta})


def load_worlds(path: str | Path) -> list[PoseWorld]:
    from engine.model.checkpoint import read_checkpoint
    tensors, metadata = read_checkpoint(path)
    return [PoseWorld(biome=m["biome"], seed=m["seed"],
                      **{name: tensors[f"{i}.{name}"] for name in ("map_f2", "map_f4", "ground_f8", "ground_f16",
                                                                   "fov_deg", "original_wh", "camera_cells",
                                                                   "heading_deg")})
            for i, m in enumerate(metadata["pose_worlds"])]


def sample_crops(worlds: list[PoseWorld], batch: int, rng: np.random.Generator, crop_cells: int,
                 template_cells: int) -> dict[str, torch.Tensor]:
    """A training batch: random photos, each with a map crop that puts its camera at a random placement.

    Placement (a, b) has its camera at crop point (col b + S/2, row a + S/2); the label is the nearest one.
    Crop origins are even so the stride-4 features line up with the stride-2 ones.
    """
    span = crop_cells - template_cells            # placements per axis - 1
    half = template_cells / 2.0
    out: dict[str, list] = {k: [] for k in ("f8", "f16", "f2", "f4", "fov", "wh", "label_ab", "heading")}
    for _ in range(batch):
        w = worlds[int(rng.integers(len(worlds)))]
        p = int(rng.integers(w.fov_deg.shape[0]))
        cx, cy = (float(v) for v in w.camera_cells[p])
        h, wd = w.map_f2.shape[-2:]
        c0 = 2 * math.floor((cx - half - rng.uniform(0, span)) / 2.0)
        r0 = 2 * math.floor((cy - half - rng.uniform(0, span)) / 2.0)
        c0 = int(np.clip(c0, 0, wd - crop_cells) // 2 * 2)
        r0 = int(np.clip(r0, 0, h - crop_cells) // 2 * 2)
        a, b = cy - r0 - half, cx - c0 - half
        out["f8"].append(w.ground_f8[p])
        out["f16"].append(w.ground_f16[p])
        out["f2"].append(w.map_f2[:, r0:r0 + crop_cells, c0:c0 + crop_cells])
        out["f4"].append(w.map_f4[:, r0 // 2:(r0 + crop_cells) // 2, c0 // 2:(c0 + crop_cells) // 2])
        out["fov"].append(w.fov_deg[p])
        out["wh"].append(w.original_wh[p])
        out["label_ab"].append(torch.tensor([a, b]))
        out["heading"].append(w.heading_deg[p])
    return {k: torch.stack(v) for k, v in out.items()}
