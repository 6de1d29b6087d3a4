"""Procedural world generation: `generate_world(biome, seed, ...)` -> World.

Each biome module (engine.synth.biomes, registered by name) lays out roads, buildings, trees, fields and water
on a Canvas; this module sets up the grid and georeferencing (UTM zone of the world centre) and packs the
result into a World.
"""
from __future__ import annotations

import numpy as np

from engine.data.geometry import lonlat_to_map, utm_crs_for_lonlat
from engine.synth.biomes.canvas import Canvas, finish
from engine.synth.biomes.registry import get_biome
from engine.synth.world import World

GENERATOR_VERSION = 1


def generate_world(biome: str, seed: int, size_m: float | tuple[float, float] = 1000.0,
                   resolution_m: float = 0.5, origin_lonlat: tuple[float, float] | None = None) -> World:
    """Generate a synthetic world.

    biome: a registered biome (engine.synth.biomes.registry.biome_names()). seed: any int; the same (biome,
    seed, size, resolution) gives bit-identical arrays. size_m: side length, or (width, height), in metres.
    resolution_m: cell size.
    origin_lonlat: (lon, lat) of the world CENTRE (default: a place typical of the biome). The CRS is the
    UTM zone of that centre; origin_xy is the north-west corner in it.
    """
    registered = get_biome(biome)
    width_m, height_m = (float(size_m), float(size_m)) if np.isscalar(size_m) else map(float, size_m)
    if not (resolution_m > 0 and np.isfinite(resolution_m)):
        raise ValueError(f"resolution_m must be a positive number, got {resolution_m}")
    if not (width_m > 0 and height_m > 0):
        raise ValueError(f"size_m must be positive, got {size_m}")
    shape = (max(round(height_m / resolution_m), 16), max(round(width_m / resolution_m), 16))
    lon, lat = registered.origin_lonlat if origin_lonlat is None else map(float, origin_lonlat)

    seed_seq = np.random.SeedSequence([abs(int(seed)), int(seed < 0), registered.index])
    cv = Canvas(np.random.default_rng(seed_seq), shape, resolution_m)
    stats = registered.generate(cv)
    arrays = finish(cv)

    crs = utm_crs_for_lonlat(lon, lat)
    cx, cy = (float(v) for v in lonlat_to_map(crs, lon, lat))
    w_m, h_m = shape[1] * resolution_m, shape[0] * resolution_m
    meta = {
        "generator": "engine.synth.generate", "generator_version": GENERATOR_VERSION,
        "biome": biome, "seed": int(seed), "size_m": [w_m, h_m], "resolution_m": float(resolution_m),
        "origin_lonlat": [lon, lat], "crs_epsg": crs.to_epsg(),
        "n_buildings": cv.n_buildings, "n_trees": cv.n_trees,
        "max_building_height_m": round(cv.max_building_m, 2),
        **stats,
    }
    return World(seed=int(seed), biome=biome, resolution_m=float(resolution_m),
                 origin_xy=(cx - w_m / 2, cy + h_m / 2), crs=crs, meta=meta, **arrays)
