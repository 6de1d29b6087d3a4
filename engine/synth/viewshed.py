"""What part of the map a ground camera sees: an occlusion-aware viewshed inside its FoV wedge.

A cell is visible when it lies in the wedge (heading +- fov/2, within max_range_m) and the elevation angle
from the eye to its top is at least the largest elevation angle of everything nearer on the same line of
sight (the classic viewshed test). Rays are cast across the FoV with samples along each (as in the ground
renderer); every cell of the wedge then looks up the horizon of its nearest ray at its own distance.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from affine import Affine
from rasterio import features
from scipy import ndimage
from shapely.geometry import MultiPolygon, Polygon, shape
from shapely.geometry.base import BaseGeometry

from engine.synth.camera import CameraPose, eye_elevation
from engine.synth.world import World

#: Default reach of the overlap region, metres. Beyond ~120 m a photo taken at eye height resolves little of
#: what a satellite tile shows: ground at 120 m is squeezed into a few pixel rows just below the horizon
#: (at 1.7 m eye height and a 70 degree FoV over 384 px, one row spans ~30 m of ground there), and a
#: retrieval chip centred on the camera (a few hundred metres across) rarely reaches further.
DEFAULT_MAX_RANGE_M = 120.0
#: Visible specks and hidden pinholes smaller than this (square metres) are dropped from / filled in the
#: polygon: single cells peeking over an obstacle carry no useful overlap.
MIN_PART_AREA_M2 = 1.0


@dataclass
class Viewshed:
    """Visible cells of a camera's FoV wedge and the overlap region they form on the map."""

    mask: np.ndarray                 # (h, w) bool over the window of world cells below (specks removed)
    row0: int                        # world row of mask[0, 0]
    col0: int                        # world column of mask[0, 0]
    transform: Affine                # mask pixel (col, row) -> map (x, y)
    polygon: BaseGeometry            # visible region in map coordinates (Polygon or MultiPolygon)
    centroid: tuple[float, float]    # map (x, y) of the polygon's centroid
    max_range_m: float

    @property
    def area_m2(self) -> float:
        return float(self.polygon.area)

    def world_mask(self, world: World) -> np.ndarray:
        """The visibility mask as a full (H, W) world-sized array."""
        full = np.zeros(world.shape, bool)
        h, w = self.mask.shape
        full[self.row0:self.row0 + h, self.col0:self.col0 + w] = self.mask
        return full


def visible_region(world: World, pose: CameraPose, max_range_m: float = DEFAULT_MAX_RANGE_M) -> Viewshed:
    """Occlusion-aware visible part of the camera's FoV wedge, as a cell mask and a map polygon."""
    if max_range_m <= 0:
        raise ValueError(f"max_range_m must be positive, got {max_range_m}")
    res = world.resolution_m
    rows_w, cols_w = world.shape
    cam_col, cam_row = (float(v) for v in world.map_to_cell(pose.x, pose.y))
    eye_z = eye_elevation(world, pose)
    half_fov = np.deg2rad(pose.fov_deg) / 2.0
    heading = np.deg2rad(pose.heading_deg)

    # Window of cells around the wedge: its bounding box, from the camera and points along the arc.
    arc = heading + np.linspace(-half_fov, half_fov, 33)
    reach = max_range_m / res
    xs = np.concatenate([[cam_col], cam_col + reach * np.sin(arc)])
    ys = np.concatenate([[cam_row], cam_row - reach * np.cos(arc)])
    col0 = int(np.clip(np.floor(xs.min()) - 1, 0, cols_w))
    col1 = int(np.clip(np.ceil(xs.max()) + 1, 0, cols_w))
    row0 = int(np.clip(np.floor(ys.min()) - 1, 0, rows_w))
    row1 = int(np.clip(np.ceil(ys.max()) + 1, 0, rows_w))
    transform = world.transform @ Affine.translation(col0, row0)
    if col1 <= col0 or row1 <= row0:
        return _empty(pose, max_range_m, row0, col0, transform)

    # Rays across the FoV, close enough that neighbours are under half a cell apart at max range.
    step = res / 2.0
    n_rays = int(np.ceil(2.0 * half_fov * max_range_m / step)) + 1
    ray_offsets = np.linspace(-half_fov, half_fov, n_rays)
    dist = np.arange(1, int(np.ceil(max_range_m / step)) + 1, dtype=np.float32) * np.float32(step)
    bearing = heading + ray_offsets
    ray_col = np.floor(cam_col + np.sin(bearing)[:, None].astype(np.float32) * (dist[None, :] / np.float32(res)))
    ray_row = np.floor(cam_row - np.cos(bearing)[:, None].astype(np.float32) * (dist[None, :] / np.float32(res)))
    on_world = (ray_col >= 0) & (ray_col < cols_w) & (ray_row >= 0) & (ray_row < rows_w)
    cell = np.clip(ray_row, 0, rows_w - 1).astype(np.int64) * cols_w + np.clip(ray_col, 0, cols_w - 1).astype(np.int64)
    surface = np.take(np.ascontiguousarray(world.height).reshape(-1), cell)
    slope = (surface - np.float32(eye_z)) / dist[None, :]
    slope[~on_world] = -np.inf          # nothing beyond the world's edge blocks the view
    # horizon[i, k]: steepest elevation (as a slope) of samples 0..k on ray i.
    horizon = np.maximum.accumulate(slope, axis=1)

    # Every window cell: distance, bearing offset from the heading, then the test against the horizon of
    # the nearest ray, taken over samples at least ~one cell nearer than the cell (its own top must not
    # hide it).
    rr, cc = np.mgrid[row0:row1, col0:col1]
    dx = (cc + 0.5 - cam_col) * res
    dy = (cam_row - (rr + 0.5)) * res
    d = np.hypot(dx, dy)
    offset = np.mod(np.arctan2(dx, dy) - heading + np.pi, 2.0 * np.pi) - np.pi
    in_wedge = (d <= max_range_m) & (np.abs(offset) <= half_fov)
    ray = np.clip(np.rint((offset + half_fov) / (2.0 * half_fov) * (n_rays - 1)), 0, n_rays - 1).astype(np.int64)
    nearer = np.floor((d - 0.75 * res) / step).astype(np.int64) - 1       # last sample index strictly nearer
    window_height = world.height[row0:row1, col0:col1]
    cell_slope = (window_height - eye_z) / np.maximum(d, 1e-6)
    blocking = np.where(nearer >= 0, horizon[ray, np.clip(nearer, 0, dist.size - 1)], -np.inf)
    mask = in_wedge & (cell_slope >= blocking - 1e-6)
    # The camera's own cell is always seen.
    mask |= d < res

    mask, polygon = _polygonise(mask, transform, res)
    if polygon.is_empty:
        return _empty(pose, max_range_m, row0, col0, transform, mask)
    c = polygon.centroid
    return Viewshed(mask=mask, row0=row0, col0=col0, transform=transform, polygon=polygon,
                    centroid=(float(c.x), float(c.y)), max_range_m=float(max_range_m))


def _polygonise(mask: np.ndarray, transform: Affine, resolution_m: float) -> tuple[np.ndarray, BaseGeometry]:
    """Mask -> (cleaned mask, valid (Multi)Polygon in map coordinates): specks and pinholes removed from
    both, the polygon lightly simplified."""
    min_cells = max(1, int(np.ceil(MIN_PART_AREA_M2 / resolution_m ** 2)))
    clean = _drop_small_components(mask, min_cells)
    clean = ~_drop_small_components(~clean, min_cells)          # fill pinholes the same size
    parts = [shape(geom) for geom, value in features.shapes(clean.astype(np.uint8), mask=clean,
                                                            transform=transform, connectivity=4) if value]
    if not parts:
        return clean, Polygon()
    simplified = shapely.simplify(np.array(parts, dtype=object), resolution_m * 0.5, preserve_topology=True)
    merged = shapely.make_valid(shapely.union_all(simplified))
    # make_valid may return a collection holding a MultiPolygon: flatten two levels.
    polygons = [g for g in shapely.get_parts(shapely.get_parts(merged)) if isinstance(g, Polygon) and not g.is_empty]
    if not polygons:
        return clean, Polygon()
    return clean, polygons[0] if len(polygons) == 1 else MultiPolygon(polygons)


def _drop_small_components(mask: np.ndarray, min_cells: int) -> np.ndarray:
    """The mask without its 4-connected components of fewer than `min_cells` cells."""
    labels, count = ndimage.label(mask)
    if count == 0:
        return mask
    sizes = np.bincount(labels.ravel())
    keep = sizes >= min_cells
    keep[0] = False
    return keep[labels]


def _empty(pose: CameraPose, max_range_m: float, row0: int, col0: int, transform: Affine,
           mask: np.ndarray | None = None) -> Viewshed:
    """A viewshed with nothing visible (the camera looks off the world): centroid at the camera."""
    return Viewshed(mask=np.zeros((0, 0), bool) if mask is None else np.zeros_like(mask), row0=row0, col0=col0,
                    transform=transform, polygon=Polygon(), centroid=(float(pose.x), float(pose.y)),
                    max_range_m=float(max_range_m))
