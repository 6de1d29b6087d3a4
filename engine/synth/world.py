"""The synthetic world: a height field plus material maps, georeferenced in a projected CRS.

Every renderer (orthophoto, ground camera, viewshed) reads only this structure, so a world built by a biome
generator and a hand-made test world (flat ground plus one box) are rendered by the same code.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np
from affine import Affine
from pyproj import CRS


class Material(IntEnum):
    """What the top surface of a cell is made of. Decides walkability, facade drawing and texture."""

    GRASS = 0
    ROAD = 1        # asphalt
    PAVED = 2       # sidewalks, squares, parking, plazas
    DIRT = 3        # dirt tracks, bare soil
    FIELD = 4       # crops
    GARDEN = 5      # lawns and beds around houses
    SAND = 6        # beaches
    ROCK = 7        # bare mountain rock and scree
    WATER = 8
    ROOF = 9        # top of a building; the sides are facades
    TREE = 10       # canopy top; the sides are foliage


#: Materials a camera may stand on.
WALKABLE_MATERIALS = (Material.GRASS, Material.ROAD, Material.PAVED, Material.DIRT, Material.FIELD,
                      Material.GARDEN, Material.SAND, Material.ROCK)
#: Materials that stand above the terrain (height > terrain).
RAISED_MATERIALS = (Material.ROOF, Material.TREE)


@dataclass
class World:
    """A square-celled raster world, north up. Row 0 is the northern edge, column 0 the western edge.

    Cell (row, col) covers map x in [x0 + col*res, x0 + (col+1)*res) and y in (y0 - (row+1)*res, y0 - row*res].
    """

    seed: int
    biome: str
    resolution_m: float
    terrain: np.ndarray          # (H, W) float32, ground elevation in metres
    height: np.ndarray           # (H, W) float32, surface elevation: terrain + buildings + trees
    material: np.ndarray         # (H, W) uint8, Material of the top surface
    albedo: np.ndarray           # (H, W, 3) uint8, colour of the top surface seen from above
    wall_colour: np.ndarray      # (H, W, 3) uint8, colour of vertical faces (facades, foliage sides)
    object_id: np.ndarray        # (H, W) int32, 0 for open ground, else building/tree id
    origin_xy: tuple[float, float]   # map x, y of the north-west corner
    crs: CRS
    meta: dict = field(default_factory=dict)   # generator parameters, for provenance

    def __post_init__(self) -> None:
        h, w = self.terrain.shape
        for name in ("height", "material", "object_id"):
            if getattr(self, name).shape != (h, w):
                raise ValueError(f"World.{name} has shape {getattr(self, name).shape}, expected {(h, w)}")
        for name in ("albedo", "wall_colour"):
            if getattr(self, name).shape != (h, w, 3):
                raise ValueError(f"World.{name} has shape {getattr(self, name).shape}, expected {(h, w, 3)}")

    @property
    def shape(self) -> tuple[int, int]:
        return self.terrain.shape

    @property
    def size_m(self) -> tuple[float, float]:
        """(width, height) in metres."""
        h, w = self.shape
        return w * self.resolution_m, h * self.resolution_m

    @property
    def transform(self) -> Affine:
        """Pixel (col, row) -> map (x, y), pixel corners at integers (rasterio convention)."""
        x0, y0 = self.origin_xy
        return Affine(self.resolution_m, 0.0, x0, 0.0, -self.resolution_m, y0)

    @property
    def walkable(self) -> np.ndarray:
        """Cells a camera may stand on: walkable material with nothing raised above the terrain."""
        ok = np.isin(self.material, np.array(WALKABLE_MATERIALS, dtype=np.uint8))
        return ok & (self.height - self.terrain < 0.25)

    def map_to_cell(self, x: np.ndarray | float, y: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Map coordinates -> continuous (col, row) cell coordinates (cell centres at +0.5)."""
        x0, y0 = self.origin_xy
        return (np.asarray(x) - x0) / self.resolution_m, (y0 - np.asarray(y)) / self.resolution_m

    def cell_to_map(self, col: np.ndarray | float, row: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Continuous (col, row) -> map (x, y)."""
        x0, y0 = self.origin_xy
        return x0 + np.asarray(col) * self.resolution_m, y0 - np.asarray(row) * self.resolution_m
