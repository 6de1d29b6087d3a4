"""Indexing a map: tile it for the model, embed the tiles (or take them from the cache), store the result."""
from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rasterio.crs import CRS

from engine.data.geometry import TileFrame
from engine.geo.errors import RasterError
from engine.geo.plan import IndexPlan, plan_map
from engine.geo.raster import MapRaster
from engine.geo.tiling import MIN_SINGLE_TILE_FRACTION, TilingSpec, tile_map
from engine.index.cache import GalleryCache, GalleryKey, map_fingerprint
from engine.index.embed import EmbeddingRun, embed_tiles
from engine.index.model_source import LoadedModel
from engine.progress import CancelToken, ProgressCallback

log = logging.getLogger(__name__)


@dataclass
class IndexedMap:
    """A map's gallery tiles and their descriptors."""

    map_path: Path
    map_id: str                      # sha256 of the map file
    model_id: str
    crs: CRS                         # the map CRS (projected, metres)
    bounds: tuple[float, float, float, float]
    spec: TilingSpec
    tiles: list[TileFrame]
    descriptors: np.ndarray          # (N, D) float32, unit rows
    from_cache: bool
    seconds: float
    embedding: EmbeddingRun | None = None   # None when the cache answered
    cache_file: Path | None = None          # the cache entry (JSON), None without a cache


@dataclass(frozen=True)
class PlannedIndex:
    """What indexing a map involves, worked out before any embedding (shared with distributed indexing)."""

    map_path: Path
    map_id: str
    crs: CRS
    bounds: tuple[float, float, float, float]
    key: GalleryKey
    plan: IndexPlan | None = None    # resolution, tile count and time; refusals of absurd maps


def plan_index(loaded: LoadedModel, map_path: str | os.PathLike, spec: TilingSpec,
               cache_dir: str | os.PathLike | None, map_id: str | None = None,
               raster: MapRaster | None = None) -> PlannedIndex:
    """Open the map unless `raster` is it already (RasterError if it cannot be a map) and compute its cache
    key (map_id: known hash)."""
    map_path = Path(map_path)
    with opened_map(map_path, raster) as raster:
        crs, bounds = raster.crs, raster.bounds
        plan = plan_map(raster, spec, _tiles_per_second(loaded))
    map_id = map_id or map_fingerprint(map_path, cache_dir)
    key = GalleryKey(map_id, loaded.model_id, spec, tuple(loaded.model.config.satellite_hw))
    return PlannedIndex(map_path, map_id, crs, bounds, key, plan)


def opened_map(path: str | os.PathLike, raster: MapRaster | None) -> contextlib.AbstractContextManager[MapRaster]:
    """`raster` as it is (its owner closes it), else the map at `path` opened for the `with` block."""
    return contextlib.nullcontext(raster) if raster is not None else MapRaster(path)


def _tiles_per_second(loaded: LoadedModel) -> float | None:
    """A GPU embeds ~20x faster than the measured 2-core CPU (None: the plan's CPU figure)."""
    device = getattr(loaded.model, "device", None)
    return None if device is None or getattr(device, "type", "cpu") == "cpu" else 5000.0


def gallery_tiles(plan: PlannedIndex, raster: MapRaster | None = None) -> list[TileFrame]:
    with opened_map(plan.map_path, raster) as raster:
        tiles = tile_map(raster, plan.key.tiling)
    if not tiles:
        raise RasterError(plan.map_path, "no part of the map holds enough valid (non-nodata) pixels for a tile "
                                         f"({plan.key.tiling.tile_m:g} m; a map smaller than a tile needs "
                                         f"{MIN_SINGLE_TILE_FRACTION:.0%} of it)")
    return tiles


def index_map(loaded: LoadedModel, map_path: str | os.PathLike, spec: TilingSpec,
              cache: GalleryCache | None = None, *, batch_size: int = 8, reader_threads: int = 2,
              prefetch_batches: int = 4, progress: ProgressCallback | None = None,
              cancel: CancelToken | None = None, force: bool = False,
              raster: MapRaster | None = None) -> IndexedMap:
    """Tile and embed a map, or load its gallery from `cache` when this map, model and tiling were seen.

    A map the index plan refuses (far coarser than the model, absurd tile count) raises IndexRefused
    before any work unless `force`; a cached gallery is always used. The map is opened once for planning
    and tiling (`raster`: the caller's opened map, left open); the embedding's reader threads open their own
    (a rasterio dataset must not be shared between threads)."""
    start = time.perf_counter()
    with opened_map(map_path, raster) as raster:
        plan = plan_index(loaded, map_path, spec, cache.root if cache is not None else None, raster=raster)
        cached = cache.load(plan.key) if cache is not None else None
        if cached is not None:
            return IndexedMap(plan.map_path, plan.map_id, loaded.model_id, plan.crs, plan.bounds, spec,
                              cached.tiles, cached.descriptors, True, time.perf_counter() - start, None,
                              cache.paths(plan.key)[1])
        if plan.plan is not None:
            plan.plan.check(force)
        tiles = gallery_tiles(plan, raster)
    run = embed_tiles(loaded.model, plan.map_path, tiles, spec=spec, batch_size=batch_size,
                      reader_threads=reader_threads,
                      prefetch_batches=prefetch_batches, progress=progress, cancel=cancel)
    entry = None
    if cache is not None:
        try:
            entry = cache.store(plan.key, tiles, run.descriptors, plan.crs.to_wkt(), plan.map_path)
        except OSError as exc:   # an unwritable cache costs the embedding next time, not this result
            log.warning("cannot write the gallery cache in %s: %s", cache.root, exc)
    return IndexedMap(plan.map_path, plan.map_id, loaded.model_id, plan.crs, plan.bounds, spec, tiles,
                      run.descriptors, False, time.perf_counter() - start, run, entry)
