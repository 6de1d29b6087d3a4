"""The canvas a biome generator draws on, and its finishing into World arrays.

Coordinates inside the generators are cell coordinates: x = column, y = row (y grows southward), cell centres
at +0.5. Lengths handed to helpers are metres unless the name ends in `_px`.
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage as ndi

from engine.synth.noise import Fbm, auto_step, fbm, grain
from engine.synth.world import Material as M


class Canvas:
    """Mutable working state of one world being generated."""

    def __init__(self, rng: np.random.Generator, shape: tuple[int, int], resolution_m: float):
        self.rng = rng
        self.shape = shape
        self.res = float(resolution_m)
        h, w = shape
        self.terrain = np.zeros(shape, np.float32)
        self.raised = np.zeros(shape, np.float32)           # height of buildings/trees above terrain
        self.material = np.full(shape, M.GRASS, np.uint8)
        self.albedo: np.ndarray | None = None               # float32 (H, W, 3) once the ground is painted
        self.wall = np.zeros((h, w, 3), np.uint8)
        self.object_id = np.zeros(shape, np.int32)
        self.reserved = np.zeros(shape, bool)               # streets, water: nothing may be built there
        self.paint = Image.new("L", (w, h))                  # road markings: MARKING_COLOURS codes
        self.cars = Image.new("L", (w, h))                   # car body colour index + 1, 255 glass
        self._next_id = 1
        self._tex: np.ndarray | None = None
        self.n_buildings = 0
        self.n_trees = 0
        self.max_building_m = 0.0

    # -- units and ids
    def px(self, metres: float | np.ndarray) -> float | np.ndarray:
        return metres / self.res

    def new_ids(self, n: int) -> np.ndarray:
        ids = np.arange(self._next_id, self._next_id + n, dtype=np.int32)
        self._next_id += n
        return ids

    @property
    def tex(self) -> np.ndarray:
        """Shared small-scale texture field (~1-3 m blobs), unit std; used for foliage, roofs, lawns."""
        if self._tex is None:
            self._tex = fbm(self.rng, self.shape, self.px(3.0), octaves=2)
        return self._tex

    def noise(self, scale_m: float, octaves: int = 4, persistence: float = 0.5) -> np.ndarray:
        """A fresh fractal noise raster over the world, features up to `scale_m`."""
        field = Fbm(self.rng, self.shape, self.px(scale_m), octaves, persistence)
        return field.raster(self.shape, auto_step(field.finest))

    # -- PIL drawing onto numpy layers
    @contextmanager
    def draw(self, layer: str):
        """ImageDraw on one of the canvas rasters ('material' or 'reserved'); written back on exit."""
        arr = getattr(self, layer)
        img = Image.fromarray(arr.view(np.uint8) if arr.dtype == bool else arr)
        yield ImageDraw.Draw(img)
        out = np.asarray(img)
        setattr(self, layer, out.astype(bool) if arr.dtype == bool else out.copy())

    def inside(self, x: np.ndarray, y: np.ndarray, margin_px: float = 0.0) -> np.ndarray:
        x, y = np.asarray(x), np.asarray(y)
        return ((x >= margin_px) & (x < self.shape[1] - margin_px)
                & (y >= margin_px) & (y < self.shape[0] - margin_px))


def pil_xy(pts: np.ndarray) -> list[tuple[float, float]]:
    """Cell coordinates (centres at +0.5) -> PIL coordinates (centres at integers)."""
    p = np.asarray(pts, np.float64) - 0.5
    return [(float(a), float(b)) for a, b in p]


def level_water(cv: Canvas, max_extent_m: float = 300.0) -> None:
    """Flat water surfaces: every pool, pond or lake smaller than `max_extent_m` gets one level (the lowest
    ground it covers). Long water bodies (streams) keep following the terrain; the sea is flat already."""
    water = cv.material == M.WATER
    if not water.any():
        return
    labels, _n = ndi.label(water)
    limit = cv.px(max_extent_m)
    for k, sl in enumerate(ndi.find_objects(labels), start=1):
        if sl is None or max(sl[0].stop - sl[0].start, sl[1].stop - sl[1].start) > limit:
            continue
        m = labels[sl] == k
        ter = cv.terrain[sl]
        ter[m] = ter[m].min()


def finish(cv: Canvas) -> dict[str, np.ndarray]:
    """Final arrays: height, uint8 colours (with sensor grain), wall colours for open ground."""
    level_water(cv)
    h = cv.terrain + cv.raised
    alb = cv.albedo
    g = 1 + 0.025 * grain(cv.rng, cv.shape)
    alb *= g[..., None]
    albedo = np.clip(alb, 0, 255).astype(np.uint8)
    ground = cv.object_id == 0
    wall = cv.wall
    # open ground: vertical faces are terrain steps (cliffs, embankments): darker soil/rock of the same hue
    wall[ground] = (albedo[ground].astype(np.uint16) * 3 // 4).astype(np.uint8)
    return {"terrain": cv.terrain.astype(np.float32), "height": h.astype(np.float32),
            "material": cv.material, "albedo": albedo, "wall_colour": wall, "object_id": cv.object_id}
