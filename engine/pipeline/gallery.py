"""A map ready for localisation: its tiles, their descriptors, the faiss search and the score surface."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from affine import Affine
from rasterio.crs import CRS
from shapely.geometry import Polygon

from engine.data.geometry import TileFrame
from engine.geo.tiling import TilingSpec
from engine.index.indexer import IndexedMap
from engine.index.search import GallerySearch
from engine.pipeline.results import GeoGrid


def crs_name(crs: CRS) -> str:
    """'EPSG:32616' when the CRS has an EPSG code, else its WKT."""
    return crs.to_string() if crs.to_epsg() is not None else crs.to_wkt()


@dataclass
class Gallery:
    map_path: Path
    map_id: str                      # sha256 of the map file
    model_id: str
    crs: CRS                         # map CRS (projected, metres)
    bounds: tuple[float, float, float, float]
    spec: TilingSpec
    tiles: list[TileFrame]
    descriptors: np.ndarray          # (N, D) float32, unit rows
    centres: np.ndarray              # (N, 2) tile centres, map CRS
    search: GallerySearch
    from_cache: bool
    index_seconds: float
    cache_file: Path | None = None           # gallery cache entry (JSON); None when caching is off
    tiles_per_second: float | None = None    # embedding speed when the map was embedded now

    @classmethod
    def from_index(cls, indexed: IndexedMap, search_kind: str = "exact", ivf_lists: int | None = None,
                   ivf_probe: int = 16) -> Gallery:
        half = indexed.spec.tile_m / 2.0
        centres = np.asarray([(t.origin_x + half, t.origin_y - half) for t in indexed.tiles], dtype=np.float64)
        search = GallerySearch(indexed.descriptors, centres, search_kind, ivf_lists, ivf_probe)
        speed = indexed.embedding.tiles_per_second if indexed.embedding is not None else None
        return cls(indexed.map_path, indexed.map_id, indexed.model_id, indexed.crs, indexed.bounds, indexed.spec,
                   indexed.tiles, indexed.descriptors, centres, search, indexed.from_cache, indexed.seconds,
                   indexed.cache_file, speed)

    def __len__(self) -> int:
        return len(self.tiles)

    @property
    def crs_name(self) -> str:
        return crs_name(self.crs)

    def footprints(self) -> list[Polygon]:
        """Every tile's extent in the map CRS, in gallery order."""
        return [tile.footprint for tile in self.tiles]

    def scores(self, descriptor: np.ndarray) -> np.ndarray:
        """Cosine similarity of one ground descriptor with every tile, (N,) float32."""
        return self.descriptors @ np.asarray(descriptor, dtype=np.float32).reshape(-1)

    def score_surface(self, descriptor: np.ndarray) -> GeoGrid:
        """Retrieval score of every tile as a raster: one cell per tile centre, cells one tile stride wide.

        Cells without a tile hold NaN; where two tile centres fall into one cell (the edge-aligned last
        tile of an unsnapped tiling) the higher score wins.
        """
        scores = self.scores(descriptor)
        step = self.spec.stride_m if self.spec.stride_m > 0 else self.spec.tile_m
        west, north = self.centres[:, 0].min(), self.centres[:, 1].max()
        cols = np.rint((self.centres[:, 0] - west) / step).astype(np.int64)
        rows = np.rint((north - self.centres[:, 1]) / step).astype(np.int64)
        values = np.full((rows.max() + 1, cols.max() + 1), -np.inf, dtype=np.float32)
        np.maximum.at(values, (rows, cols), scores)
        values[np.isneginf(values)] = np.nan
        transform = Affine(step, 0.0, west - step / 2.0, 0.0, -step, north + step / 2.0)
        return GeoGrid(values, transform, self.crs_name)
