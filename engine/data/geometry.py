"""Heading, field-of-view and overlap geometry: the one place these conventions are implemented.

Conventions (see DESIGN.md):
- heading / compass: degrees clockwise from north in [0, 360); math angle: counter-clockwise from east.
- FoV: horizontal field of view in degrees.
- Image and tile pixels: x to the right, y down, pixel centres at +0.5; tiles are north-up.
- Map coordinates: a projected CRS in metres, y to the north.
- Geographic coordinates: EPSG:4326 in (lon, lat) order.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import shapely
from affine import Affine
from pyproj import CRS, Transformer
from shapely.geometry import Polygon, box
from shapely.geometry.base import BaseGeometry

#: 35 mm film frame width; FocalLengthIn35mmFilm refers to it.
FILM_35MM_WIDTH_MM = 36.0
#: Value of the CVNAF overlap mask outside the sector (keeps log/ratio terms finite).
MASK_OUTSIDE = 1e-4


# ---------------------------------------------------------------- angles
def compass_to_math(heading_deg):
    """Compass heading (clockwise from north) -> math angle (counter-clockwise from east), degrees."""
    return np.mod(90.0 - np.asarray(heading_deg, dtype=float), 360.0)


def math_to_compass(angle_deg):
    """Math angle (counter-clockwise from east) -> compass heading, degrees in [0, 360)."""
    return np.mod(90.0 - np.asarray(angle_deg, dtype=float), 360.0)


def normalize_heading(heading_deg):
    return np.mod(np.asarray(heading_deg, dtype=float), 360.0)


def heading_difference(a_deg, b_deg):
    """Smallest signed difference a - b in degrees, in [-180, 180)."""
    return np.mod(np.asarray(a_deg, dtype=float) - np.asarray(b_deg, dtype=float) + 180.0, 360.0) - 180.0


def heading_to_map_vector(heading_deg) -> tuple[np.ndarray, np.ndarray]:
    """Unit vector (east, north) of a compass heading: 0 -> (0, 1), 90 -> (1, 0)."""
    rad = np.deg2rad(np.asarray(heading_deg, dtype=float))
    return np.sin(rad), np.cos(rad)


def heading_to_pixel_vector(heading_deg) -> tuple[np.ndarray, np.ndarray]:
    """Unit vector (dx, dy) in north-up image pixels (y down): 0 -> (0, -1), 90 -> (1, 0)."""
    east, north = heading_to_map_vector(heading_deg)
    return east, -north


def pixel_vector_to_heading(dx, dy):
    """Direction (dx, dy) in north-up image pixels -> compass heading in [0, 360)."""
    return np.mod(np.rad2deg(np.arctan2(np.asarray(dx, float), -np.asarray(dy, float))), 360.0)


def map_vector_to_heading(east, north):
    """Direction (east, north) in map coordinates -> compass heading in [0, 360)."""
    return np.mod(np.rad2deg(np.arctan2(np.asarray(east, float), np.asarray(north, float))), 360.0)


# ---------------------------------------------------------------- equirectangular panoramas
def panorama_column_bearing(x, width_px: float, north_x: float):
    """Compass bearing of column coordinate x (pixel centres at +0.5) of a 360-degree panorama.

    North lies at column coordinate `north_x`; bearings grow to the right (clockwise), as seen from inside.
    """
    return np.mod((np.asarray(x, dtype=float) - north_x) * (360.0 / width_px), 360.0)


def panorama_bearing_column(bearing_deg, width_px: float, north_x: float):
    """Column coordinate in [0, width_px) looking along compass `bearing_deg` (inverse of the above)."""
    return np.mod(north_x + normalize_heading(bearing_deg) * (width_px / 360.0), width_px)


# ---------------------------------------------------------------- camera optics
def fov_to_focal_px(fov_deg: float, width_px: int) -> float:
    """Pinhole focal length in pixels for a horizontal FoV over an image `width_px` wide."""
    return (width_px / 2.0) / np.tan(np.deg2rad(fov_deg) / 2.0)


def focal_px_to_fov(focal_px: float, width_px: int) -> float:
    return float(np.rad2deg(2.0 * np.arctan((width_px / 2.0) / focal_px)))


def fov_to_focal_35mm(fov_deg: float) -> float:
    """Horizontal FoV -> 35 mm equivalent focal length (mm), the EXIF FocalLengthIn35mmFilm convention."""
    return (FILM_35MM_WIDTH_MM / 2.0) / np.tan(np.deg2rad(fov_deg) / 2.0)


def focal_35mm_to_fov(focal_mm: float) -> float:
    return float(np.rad2deg(2.0 * np.arctan((FILM_35MM_WIDTH_MM / 2.0) / focal_mm)))


def column_bearing_offsets(fov_deg: float, width_px: int) -> np.ndarray:
    """Bearing offset (degrees, clockwise positive) of each pixel column centre from the optical axis."""
    focal = fov_to_focal_px(fov_deg, width_px)
    x = np.arange(width_px) + 0.5 - width_px / 2.0
    return np.rad2deg(np.arctan2(x, focal))


# ---------------------------------------------------------------- FoV wedges and overlap
def fov_wedge(center_xy: tuple[float, float], heading_deg: float, fov_deg: float, radius: float,
              *, y_down: bool = False, arc_segments: int | None = None) -> Polygon:
    """The FoV sector (camera, arc of `radius`) as a polygon.

    `y_down=False` builds it in map coordinates (y north); `y_down=True` in north-up pixel coordinates.
    """
    if not 0.0 < fov_deg < 360.0:
        raise ValueError(f"fov_deg must be in (0, 360), got {fov_deg}")
    if radius <= 0:
        raise ValueError(f"radius must be positive, got {radius}")
    n = arc_segments or max(8, int(np.ceil(fov_deg / 0.5)))
    bearings = heading_deg + np.linspace(-fov_deg / 2.0, fov_deg / 2.0, n + 1)
    east, north = heading_to_map_vector(bearings)
    cx, cy = center_xy
    ys = cy - radius * north if y_down else cy + radius * north
    ring = [(cx, cy), *zip((cx + radius * east).tolist(), ys.tolist())]
    return Polygon(ring)


def sector_area(fov_deg: float, radius: float) -> float:
    """Analytic area of a circular sector."""
    return float(np.deg2rad(fov_deg) / 2.0 * radius * radius)


def overlap_polygon_in_tile(tile_size: tuple[int, int], camera_px: tuple[float, float], heading_deg: float,
                            fov_deg: float) -> Polygon:
    """The part of a north-up tile (width, height in px) the camera's FoV covers (CVNAF overlap region).

    The sector is unbounded in range, clipped to the tile: camera, the two border points, the corners between.
    """
    width, height = tile_size
    reach = 4.0 * float(np.hypot(width, height)) + float(np.hypot(*camera_px))
    wedge = fov_wedge(camera_px, heading_deg, fov_deg, reach, y_down=True)
    return wedge.intersection(box(0.0, 0.0, float(width), float(height)))


def overlap_mask(tile_size: tuple[int, int], camera_px: tuple[float, float], heading_deg: float, fov_deg: float,
                 grid: tuple[int, int] | None = None, *, supersample: int = 1,
                 outside: float = MASK_OUTSIDE) -> np.ndarray:
    """Rasterise the FoV sector over a tile into a (rows, cols) grid of cells.

    `grid` = (rows, cols) of the output (default: one cell per tile pixel). A cell's value is the fraction of
    its `supersample`^2 sample points inside the sector (1 sample: its centre), floored at `outside`.
    """
    rows, cols, sub_x, sub_y = _cell_sample_points(tile_size, grid, supersample)
    dx = sub_x[None, :] - camera_px[0]
    dy = sub_y[:, None] - camera_px[1]
    bearing = pixel_vector_to_heading(dx, dy)
    inside = np.abs(heading_difference(bearing, heading_deg)) <= fov_deg / 2.0
    inside |= (np.abs(dx) < 1e-9) & (np.abs(dy) < 1e-9)
    return _cell_fractions(inside, rows, cols, supersample, outside)


def polygon_mask(tile_size: tuple[int, int], region: BaseGeometry, grid: tuple[int, int] | None = None, *,
                 supersample: int = 1, outside: float = MASK_OUTSIDE) -> np.ndarray:
    """Rasterise a region given in tile pixels (e.g. an exact, occlusion-aware overlap polygon).

    Same cells and sample points as overlap_mask; a sample on the region's boundary counts as inside.
    """
    rows, cols, sub_x, sub_y = _cell_sample_points(tile_size, grid, supersample)
    if region.is_empty:
        inside = np.zeros((sub_y.size, sub_x.size), dtype=bool)
    else:
        inside = shapely.intersects_xy(region, sub_x[None, :], sub_y[:, None])
    return _cell_fractions(inside, rows, cols, supersample, outside)


def _cell_sample_points(tile_size: tuple[int, int], grid: tuple[int, int] | None, supersample: int
                        ) -> tuple[int, int, np.ndarray, np.ndarray]:
    """Sample x, y (tile pixels) of a (rows, cols) cell grid: s x s points per cell, centred in sub-cells."""
    width, height = tile_size
    rows, cols = grid if grid is not None else (int(height), int(width))
    s = int(supersample)
    sub_x = (np.arange(cols * s) + 0.5) * (width / (cols * s))
    sub_y = (np.arange(rows * s) + 0.5) * (height / (rows * s))
    return rows, cols, sub_x, sub_y


def _cell_fractions(inside: np.ndarray, rows: int, cols: int, supersample: int, outside: float) -> np.ndarray:
    s = int(supersample)
    frac = inside.reshape(rows, s, cols, s).mean(axis=(1, 3))
    return np.maximum(frac, outside).astype(np.float32)


def ray_exit_point(tile_size: tuple[int, int], camera_px: tuple[float, float], heading_deg: float
                   ) -> tuple[float, float]:
    """Where the heading ray from a camera inside the tile leaves the tile, in tile pixels."""
    width, height = tile_size
    cx, cy = camera_px
    if not (0.0 <= cx <= width and 0.0 <= cy <= height):
        raise ValueError(f"camera {camera_px} is outside the {width}x{height} tile")
    dx, dy = (float(v) for v in heading_to_pixel_vector(heading_deg))
    limits = []
    if dx > 1e-12:
        limits.append((width - cx) / dx)
    elif dx < -1e-12:
        limits.append(-cx / dx)
    if dy > 1e-12:
        limits.append((height - cy) / dy)
    elif dy < -1e-12:
        limits.append(-cy / dy)
    t = min(limits)
    return cx + t * dx, cy + t * dy


def cwr_target(tile_size: tuple[int, int], camera_px: tuple[float, float], heading_deg: float
               ) -> tuple[float, float]:
    """CVNAF CWR target: midpoint between the camera and where its heading ray leaves the tile (tile px)."""
    ex, ey = ray_exit_point(tile_size, camera_px, heading_deg)
    return (camera_px[0] + ex) / 2.0, (camera_px[1] + ey) / 2.0


# ---------------------------------------------------------------- CRS and coordinate chains
def utm_crs_for_lonlat(lon: float, lat: float) -> CRS:
    """The WGS84 / UTM zone CRS containing (lon, lat)."""
    if not (-180.0 <= lon <= 180.0 and -80.0 <= lat <= 84.0):
        raise ValueError(f"({lon}, {lat}) is outside the UTM domain (lon in [-180, 180], lat in [-80, 84])")
    zone = min(int((lon + 180.0) // 6.0) + 1, 60)
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


@lru_cache(maxsize=64)
def _transformer(src: str, dst: str) -> Transformer:
    return Transformer.from_crs(CRS.from_user_input(src), CRS.from_user_input(dst), always_xy=True)


def _crs_key(crs) -> str:
    return CRS.from_user_input(crs).to_wkt()


def map_to_lonlat(crs, x, y) -> tuple[np.ndarray, np.ndarray]:
    """Map coordinates in `crs` -> (lon, lat) in EPSG:4326."""
    return _transformer(_crs_key(crs), _crs_key(4326)).transform(np.asarray(x, float), np.asarray(y, float))


def lonlat_to_map(crs, lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """(lon, lat) in EPSG:4326 -> map coordinates in `crs`."""
    return _transformer(_crs_key(4326), _crs_key(crs)).transform(np.asarray(lon, float), np.asarray(lat, float))


def pixel_to_map(transform: Affine, px, py) -> tuple[np.ndarray, np.ndarray]:
    """Continuous pixel coordinates (centres at +0.5) -> map coordinates, via a rasterio affine transform."""
    a, b, c, d, e, f = transform.a, transform.b, transform.c, transform.d, transform.e, transform.f
    px, py = np.asarray(px, float), np.asarray(py, float)
    return a * px + b * py + c, d * px + e * py + f


def map_to_pixel(transform: Affine, x, y) -> tuple[np.ndarray, np.ndarray]:
    """Map coordinates -> continuous pixel coordinates (inverse of pixel_to_map)."""
    return pixel_to_map(~transform, x, y)


@dataclass(frozen=True)
class TileFrame:
    """A north-up square-pixel tile placed on the map: its north-west corner, size and ground resolution."""

    origin_x: float        # map x of the tile's west edge
    origin_y: float        # map y of the tile's north edge
    width_px: int
    height_px: int
    metres_per_px: float

    @classmethod
    def centred_on(cls, x: float, y: float, width_px: int, height_px: int, metres_per_px: float) -> TileFrame:
        return cls(x - width_px * metres_per_px / 2.0, y + height_px * metres_per_px / 2.0,
                   width_px, height_px, metres_per_px)

    @property
    def transform(self) -> Affine:
        return Affine(self.metres_per_px, 0.0, self.origin_x, 0.0, -self.metres_per_px, self.origin_y)

    @property
    def footprint(self) -> Polygon:
        """The tile's extent in map coordinates."""
        return box(self.origin_x, self.origin_y - self.height_px * self.metres_per_px,
                   self.origin_x + self.width_px * self.metres_per_px, self.origin_y)

    def map_to_tile(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        return map_to_pixel(self.transform, x, y)

    def tile_to_map(self, px, py) -> tuple[np.ndarray, np.ndarray]:
        return pixel_to_map(self.transform, px, py)
