"""The record every dataset reader yields: one ground image paired with its satellite tile, plus what is known
about the geometry (position, heading, field of view, camera position on the tile, ground resolution)."""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from pathlib import Path

from shapely.geometry.base import BaseGeometry

PERSPECTIVE = "perspective"
PANORAMA = "panorama"


@dataclass(frozen=True)
class SatelliteRef:
    """A satellite tile that also shows the camera (VIGOR semi-positive), with the camera's offset on it."""

    path: Path
    camera_offset_px: tuple[float, float]   # (right, down) in native tile pixels from the tile centre


@dataclass(frozen=True)
class CrossViewItem:
    """One ground/satellite pair as a dataset describes it. Readers only index files; nothing is decoded here.

    ground_kind: "perspective" (a photo with heading_deg and fov_deg) or "panorama" (a 360-degree
        equirectangular image; fov_deg is 360 and the heading of a crop comes from its columns).
    heading_deg: compass heading of a perspective photo's optical axis; None when unknown and for panoramas.
    north_x_fraction: for panoramas, where north lies across the width (0.5 = the centre column, bearings
        growing to the right); None when the panorama's orientation is unknown.
    camera_offset_px: camera position relative to the satellite tile centre, (right, down) in native pixels
        of the tile as the layout defines it (`satellite_size_px` when known); (0, 0) = camera at the centre.
    metres_per_px: ground size of one native satellite pixel, where the layout gives it.
    map_xy / map_crs: camera position in a projected CRS where the layout gives one (CVACT UTM, synthetic).
    overlap_px: exact overlap region (occlusion-aware, synthetic layouts) in native satellite-tile pixels.
    """

    item_id: str
    dataset: str
    split: str
    city: str | None
    ground_path: Path
    satellite_path: Path
    ground_kind: str = PERSPECTIVE
    fov_deg: float | None = None
    heading_deg: float | None = None
    north_x_fraction: float | None = None
    lon: float | None = None
    lat: float | None = None
    map_xy: tuple[float, float] | None = None
    map_crs: str | None = None
    camera_offset_px: tuple[float, float] = (0.0, 0.0)
    satellite_size_px: tuple[int, int] | None = None
    metres_per_px: float | None = None
    semi_positives: tuple[SatelliteRef, ...] = field(default=())
    overlap_px: BaseGeometry | None = field(default=None, compare=False)

    @property
    def is_panorama(self) -> bool:
        return self.ground_kind == PANORAMA

    def offset_scale(self, image_size: tuple[int, int]) -> tuple[float, float]:
        """Native-layout pixels -> pixels of an image of `image_size` (width, height): (sx, sy)."""
        if self.satellite_size_px is None:
            return 1.0, 1.0
        return image_size[0] / self.satellite_size_px[0], image_size[1] / self.satellite_size_px[1]

    def camera_px(self, image_size: tuple[int, int]) -> tuple[float, float]:
        """Camera (x, y) in pixels of the satellite image as loaded, `image_size` = (width, height)."""
        sx, sy = self.offset_scale(image_size)
        right, down = self.camera_offset_px
        return image_size[0] / 2.0 + right * sx, image_size[1] / 2.0 + down * sy


def stable_item_key(item_id: str) -> int:
    """A process-independent integer for an item id (Python's hash() is salted per process)."""
    return zlib.crc32(item_id.encode("utf-8"))
