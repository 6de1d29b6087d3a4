"""A VIGOR-style fine-grained dataset: satellite tiles on a half-overlapping grid, photos labelled with the
positive tile, three semi-positives and their pixel offsets from each tile's centre.

Layout: {City}/satellite/satellite_{lat}_{lon}.png (tile centre), {City}/panorama/{name},{lat},{lon},.jpg,
splits/{City}/satellite_list.txt, pano_label_balanced.txt, same_area_balanced_train.txt and
same_area_balanced_test.txt (label line: photo, then 4 x (tile, row offset, column offset)).
Metres per pixel per city go in meters_per_pixel.json (VIGOR's readers hard-code them per city).
"""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image

from engine.atomic import write_bytes_atomic, write_text_atomic
from engine.data.geometry import map_to_lonlat
from engine.geo.geojson import write_geojson
from engine.synth.export.common import (
    ProgressCallback,
    orthophoto_of,
    save_photo,
    split_indices,
    truth_frame,
    world_name,
    world_summary,
    write_json,
)
from engine.synth.export.staging import staged_output_folder
from engine.synth.photos import PhotoSpec, generate_photos
from engine.synth.world import World


def tile_grid_centres(world: World, tile_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Map x and y of tile centres on a grid with stride tile_m / 2 (every point lies in 2 x 2 tiles)."""
    width_m, height_m = world.size_m
    x0, y0 = world.origin_xy
    stride = tile_m / 2.0
    xs = x0 + np.arange(tile_m / 2.0, width_m - tile_m / 2.0 + 1e-6, stride)
    ys = y0 - np.arange(tile_m / 2.0, height_m - tile_m / 2.0 + 1e-6, stride)
    return xs, ys


def _containing_tiles(tile_names: dict, xs: np.ndarray, ys: np.ndarray, x: float, y: float) -> list:
    """The 2 x 2 tiles whose extent holds (x, y), nearest centre (the positive) first."""
    stride = xs[1] - xs[0]
    i = int(np.clip(np.floor((x - xs[0]) / stride), 0, len(xs) - 2))
    j = int(np.clip(np.floor((ys[0] - y) / stride), 0, len(ys) - 2))
    block = [tile_names[(i + di, j + dj)] for dj in (0, 1) for di in (0, 1)]
    return sorted(block, key=lambda t: np.hypot(t[1] - x, t[2] - y))


def _png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def export_vigor(worlds: list[World], spec: PhotoSpec, seed: int, out: str | os.PathLike, *,
                 tile_px: int = 256, test_fraction: float = 0.2, force: bool = False,
                 progress: ProgressCallback | None = None) -> Path:
    """Write a VIGOR-style dataset (tiles at each world's resolution); returns the dataset root."""
    out = Path(out)
    with staged_output_folder(out, force) as root:
        metres_per_pixel, cities = {}, []
        for world_index, world in enumerate(worlds):
            city = world_name(world)
            res = world.resolution_m
            tile_m = tile_px * res
            (root / city / "satellite").mkdir(parents=True)
            (root / city / "panorama").mkdir()
            (root / "splits" / city).mkdir(parents=True)
            ortho = orthophoto_of(world)
            xs, ys = tile_grid_centres(world, tile_m)
            if len(xs) < 2 or len(ys) < 2:
                raise ValueError(f"world {city} is too small for {tile_px} px tiles at {res} m/px")
            tile_names = {}
            for j, y in enumerate(ys):
                lon, lat = map_to_lonlat(world.crs, xs, np.full_like(xs, y))
                for i, x in enumerate(xs):
                    name = f"satellite_{float(lat[i]):.10f}_{float(lon[i]):.10f}.png"
                    col, row = world.map_to_cell(x, y)
                    c0, r0 = int(round(float(col) - tile_px / 2)), int(round(float(row) - tile_px / 2))
                    write_bytes_atomic(root / city / "satellite" / name,
                                       _png_bytes(ortho[r0:r0 + tile_px, c0:c0 + tile_px]))
                    tile_names[(i, j)] = (name, x, y)
            write_text_atomic(root / "splits" / city / "satellite_list.txt",
                              "".join(f"{v[0]}\n" for v in tile_names.values()))

            # Cameras stay a half tile plus one stride inside, so each lies in 2 x 2 full tiles.
            margin = max(spec.border_margin_m, tile_m)
            world_spec = PhotoSpec(spec.count, spec.fov_range, spec.size, margin, spec.overlap_range_m)
            step = (lambda d, t, c=city: progress(f"photos {c}", d, t)) if progress else None
            lines, truths = [], []
            for truth, image in generate_photos(world, world_spec, seed + world_index, city, progress=step):
                photo_name = f"{Path(truth.name).stem},{truth.lat:.8f},{truth.lon:.8f},.jpg"
                save_photo(root / city / "panorama" / photo_name, image, truth)
                groups = []
                for name, x, y in _containing_tiles(tile_names, xs, ys, truth.x, truth.y):
                    row_offset = (y - truth.y) / res   # image rows grow southwards
                    col_offset = (truth.x - x) / res
                    groups.append(f"{name} {row_offset:.4f} {col_offset:.4f}")
                lines.append(f"{photo_name} {' '.join(groups)}\n")
                truths.append(truth)
            is_test = split_indices(len(lines), test_fraction, seed + world_index)
            split_dir = root / "splits" / city
            write_text_atomic(split_dir / "pano_label_balanced.txt", "".join(lines))
            write_text_atomic(split_dir / "same_area_balanced_train.txt",
                              "".join(line for line, t in zip(lines, is_test) if not t))
            write_text_atomic(split_dir / "same_area_balanced_test.txt",
                              "".join(line for line, t in zip(lines, is_test) if t))
            write_geojson(truth_frame(truths, world), root / city / "truth.geojson")
            metres_per_pixel[city] = res
            cities.append({**world_summary(world), "tile_px": tile_px, "tiles": len(tile_names),
                           "train": int((~is_test).sum()), "test": int(is_test.sum())})
        write_json(root / "meters_per_pixel.json", metres_per_pixel)
        write_json(root / "dataset.json", {"layout": "vigor", "generator": "viewfinder synth", "seed": seed,
                                           "fov_range": list(spec.fov_range), "cities": cities})
    return out
