"""Pieces every synthetic export shares: world naming, the orthophoto, chips, photo files and truth tables."""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

import geopandas as gpd
import numpy as np
from PIL import Image
from shapely.geometry import Point

from engine.atomic import write_text_atomic
from engine.geo.exif import build_exif, write_jpeg
from engine.synth.ortho import render_orthophoto
from engine.synth.photos import PhotoTruth
from engine.synth.world import World

ProgressCallback = Callable[[str, int, int], None]


def world_name(world: World) -> str:
    return f"{world.biome}_s{world.seed}"


def orthophoto_of(world: World) -> np.ndarray:
    """The world's orthophoto with a sun fixed per world seed (the same world always looks the same)."""
    rng = np.random.default_rng([world.seed, 0x0A7])
    return render_orthophoto(world, sun_azimuth_deg=float(rng.uniform(110, 250)),
                             sun_elevation_deg=float(rng.uniform(35, 65)), rng=rng)


def crop_chip(ortho: np.ndarray, world: World, x: float, y: float, chip_px: int,
              chip_metres_per_px: float) -> np.ndarray:
    """A north-up chip of `chip_px` pixels centred on map point (x, y), resampled to the chip resolution.

    Parts outside the world are black, as a satellite chip at a map border would be.
    """
    span_cells = chip_px * chip_metres_per_px / world.resolution_m
    col, row = world.map_to_cell(x, y)
    left, top = float(col) - span_cells / 2.0, float(row) - span_cells / 2.0
    c0, r0 = int(np.floor(left)), int(np.floor(top))
    c1, r1 = int(np.ceil(left + span_cells)), int(np.ceil(top + span_cells))
    h, w = ortho.shape[:2]
    window = np.zeros((r1 - r0, c1 - c0, 3), dtype=np.uint8)
    sr0, sr1, sc0, sc1 = max(r0, 0), min(r1, h), max(c0, 0), min(c1, w)
    if sr0 < sr1 and sc0 < sc1:
        window[sr0 - r0:sr1 - r0, sc0 - c0:sc1 - c0] = ortho[sr0:sr1, sc0:sc1]
    box = (left - c0, top - r0, left - c0 + span_cells, top - r0 + span_cells)
    return np.asarray(Image.fromarray(window).resize((chip_px, chip_px), Image.Resampling.BILINEAR, box=box))


def save_photo(path: Path, image: np.ndarray, truth: PhotoTruth) -> None:
    exif = build_exif(lon=truth.lon, lat=truth.lat, heading_deg=truth.heading_deg, fov_deg=truth.fov_deg,
                      taken=truth.taken, make="Viewfinder", model="synthetic camera")
    write_jpeg(path, image, exif)


def truth_frame(truths: Iterable[PhotoTruth], world: World, **extra) -> gpd.GeoDataFrame:
    """Camera points and overlap polygons, one row each, tagged by `kind`, in the world's CRS."""
    rows, geometries = [], []
    for truth in truths:
        props = {**truth.properties(), "world": world_name(world), **extra}
        rows.append({**props, "kind": "camera"})
        geometries.append(Point(truth.x, truth.y))
        rows.append({**props, "kind": "overlap"})
        geometries.append(truth.overlap)
    return gpd.GeoDataFrame(rows, geometry=geometries, crs=world.crs)


def write_json(path: Path, payload: dict) -> None:
    write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")


def world_summary(world: World) -> dict:
    width_m, height_m = world.size_m
    return {"name": world_name(world), "biome": world.biome, "seed": world.seed,
            "crs": world.crs.to_string(), "resolution_m": world.resolution_m,
            "size_m": [width_m, height_m], "origin_xy": list(world.origin_xy)}


def split_indices(count: int, eval_fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of evaluation items: a fixed fraction, chosen reproducibly from the seed."""
    rng = np.random.default_rng([seed, 0x5B17])
    n_eval = int(round(count * eval_fraction))
    is_eval = np.zeros(count, dtype=bool)
    is_eval[rng.permutation(count)[:n_eval]] = True
    return is_eval
