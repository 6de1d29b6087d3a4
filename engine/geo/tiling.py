"""Cutting a map into gallery tiles: the model's tile size and ground resolution, with overlap."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rasterio.enums import Resampling

from engine.data.geometry import TileFrame
from engine.geo.raster import MapRaster

#: a map smaller than one tile is still indexed when its valid pixels fill this share of the tile
#: (2 %: a 18 m square in a 128 m tile); below it the model would see almost nothing but padding
MIN_SINGLE_TILE_FRACTION = 0.02


@dataclass(frozen=True)
class TilingSpec:
    tile_px: int                     # tile side in model pixels
    metres_per_px: float             # the model's satellite ground resolution
    overlap: float = 0.5             # fraction of a tile shared with its neighbour
    min_valid_fraction: float = 0.25  # tiles with less valid (non-nodata) area are skipped
    #: Place tiles on the CRS-wide lattice of multiples of the stride instead of starting at the map's edge.
    #: Two rasters of the same place (e.g. a UTM map and its geographic-CRS copy, warped back) then get the
    #: same tiles; maps are covered up to tiles holding less than min_valid_fraction of map.
    snap_to_crs_grid: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.overlap < 1.0:
            raise ValueError(f"tile overlap must be in [0, 1), got {self.overlap}")
        if self.tile_px < 8 or self.metres_per_px <= 0:
            raise ValueError(f"bad tiling: {self.tile_px} px at {self.metres_per_px} m/px")

    @property
    def tile_m(self) -> float:
        return self.tile_px * self.metres_per_px

    @property
    def stride_m(self) -> float:
        return self.tile_m * (1.0 - self.overlap)

    def key(self) -> str:
        key = f"t{self.tile_px}_r{self.metres_per_px:.4f}_o{self.overlap:.3f}_v{self.min_valid_fraction:.2f}"
        return key + "_grid" if self.snap_to_crs_grid else key


def _starts(low: float, high: float, tile: float, stride: float) -> np.ndarray:
    """Tile start offsets covering [low, high]; the last tile is aligned to the far edge."""
    span = high - low
    if span <= tile:
        return np.array([low + (span - tile) / 2.0])   # one tile, centred on a map smaller than a tile
    starts = low + np.arange(0.0, span - tile + 1e-9, stride)
    if starts[-1] + tile < high - 1e-6:
        starts = np.append(starts, high - tile)
    return starts


def _lattice_starts(low: float, high: float, tile: float, stride: float) -> np.ndarray:
    """Multiples of `stride` whose tile [start, start + tile] overlaps (low, high), ascending."""
    first = np.floor((low - tile) / stride) + 1.0
    last = np.ceil(high / stride) - 1.0
    starts = np.round(np.arange(first, last + 1.0) * stride, 6)   # micrometres: no 0.9999999995 origins
    return starts[(starts + tile > low + 1e-6) & (starts < high - 1e-6)]


def tile_map(raster: MapRaster, spec: TilingSpec) -> list[TileFrame]:
    """North-up tiles over the map, row by row from the north-west; mostly-nodata tiles are skipped."""
    left, bottom, right, top = raster.bounds
    if spec.snap_to_crs_grid:
        xs = _lattice_starts(left, right, spec.tile_m, spec.stride_m)
        ys = _lattice_starts(bottom, top, spec.tile_m, spec.stride_m)[::-1] + spec.tile_m
    else:
        xs = _starts(left, right, spec.tile_m, spec.stride_m)
        ys = top - _starts(0.0, top - bottom, spec.tile_m, spec.stride_m)   # tile north edges, north first
    # Validity at about a quarter-stride resolution decides which tiles hold enough map.
    cell = max(spec.stride_m / 4.0, raster.metres_per_px)
    grid_w = max(1, int(np.ceil((right - left) / cell)))
    grid_h = max(1, int(np.ceil((top - bottom) / cell)))
    _, valid = raster.read_bounds((left, top - grid_h * cell, left + grid_w * cell, top), (grid_w, grid_h),
                                  Resampling.nearest)
    tiles = []
    for y in ys:
        for x in xs:
            c0, c1 = int(np.floor((x - left) / cell)), int(np.ceil((x + spec.tile_m - left) / cell))
            r0, r1 = int(np.floor((top - y) / cell)), int(np.ceil((top - y + spec.tile_m) / cell))
            window = valid[max(r0, 0):max(r1, 0), max(c0, 0):max(c1, 0)]
            covered = window.sum() / max(1, (r1 - r0) * (c1 - c0))
            if covered >= spec.min_valid_fraction:
                tiles.append(TileFrame(float(x), float(y), spec.tile_px, spec.tile_px, spec.metres_per_px))
    if not tiles:   # a map smaller than a tile (a drone orthophoto of one field) is one padded tile
        tiles = _single_tile(raster, spec)
    return tiles


def _single_tile(raster: MapRaster, spec: TilingSpec) -> list[TileFrame]:
    """One tile centred on the map's valid pixels when they cover at least MIN_SINGLE_TILE_FRACTION of it."""
    left, bottom, right, top = raster.bounds
    width = max(1, min(1024, raster.width))
    height = max(1, min(1024, raster.height))
    _, valid = raster.read_bounds((left, bottom, right, top), (width, height), Resampling.nearest)
    cell_x, cell_y = (right - left) / width, (top - bottom) / height
    rows, cols = np.nonzero(valid)
    if rows.size == 0 or rows.size * cell_x * cell_y < MIN_SINGLE_TILE_FRACTION * spec.tile_m ** 2:
        return []
    cx = left + (cols.min() + cols.max() + 1) / 2.0 * cell_x
    cy = top - (rows.min() + rows.max() + 1) / 2.0 * cell_y
    half = spec.tile_m / 2.0
    return [TileFrame(float(cx - half), float(cy + half), spec.tile_px, spec.tile_px, spec.metres_per_px)]
