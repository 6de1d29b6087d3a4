"""Ground photos with exact truth: pose sampling, rendering, occlusion-aware overlap and EXIF metadata."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from shapely.geometry.base import BaseGeometry

from engine.data.geometry import map_to_lonlat
from engine.synth.camera import CameraPose, sample_camera_poses
from engine.synth.ground import render_ground
from engine.synth.viewshed import visible_region
from engine.synth.world import World

#: Range of the overlap region: a ground photo's content that is also resolvable on a satellite tile.
DEFAULT_OVERLAP_RANGE_M = 120.0
ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class PhotoSpec:
    """What photos to make: count, FoV range, size and placement constraints."""

    count: int
    fov_range: tuple[float, float] = (40.0, 110.0)
    size: tuple[int, int] = (512, 384)            # width, height
    border_margin_m: float = 0.0                  # keep cameras this far inside the world
    overlap_range_m: float = DEFAULT_OVERLAP_RANGE_M

    def __post_init__(self) -> None:
        lo, hi = self.fov_range
        if self.count < 1:
            raise ValueError(f"photo count must be at least 1, got {self.count}")
        if not (1.0 <= lo <= hi <= 179.0):
            raise ValueError(f"FoV range must lie within 1-179 degrees, got {lo}-{hi}")
        if min(self.size) < 16:
            raise ValueError(f"photo size must be at least 16x16 px, got {self.size[0]}x{self.size[1]}")


@dataclass(frozen=True)
class PhotoTruth:
    """Exact truth of one synthetic photo. Positions in the world's map CRS and in lon/lat."""

    name: str
    x: float
    y: float
    lon: float
    lat: float
    heading_deg: float
    fov_deg: float
    eye_height_m: float
    pitch_deg: float
    roll_deg: float
    width: int
    height: int
    taken: datetime
    overlap: BaseGeometry            # visible region in the FoV, map CRS
    overlap_centroid: tuple[float, float]

    def properties(self) -> dict:
        """Flat, JSON-friendly properties for GeoJSON/CSV rows."""
        return {
            "photo": self.name, "x": round(self.x, 3), "y": round(self.y, 3),
            "lon": round(self.lon, 8), "lat": round(self.lat, 8),
            "heading_deg": round(self.heading_deg, 3), "fov_deg": round(self.fov_deg, 3),
            "eye_height_m": round(self.eye_height_m, 3), "pitch_deg": round(self.pitch_deg, 3),
            "roll_deg": round(self.roll_deg, 3), "width": self.width, "height": self.height,
            "taken": self.taken.isoformat(),
            "overlap_area_m2": round(float(self.overlap.area), 2),
            "overlap_centroid_x": round(self.overlap_centroid[0], 3),
            "overlap_centroid_y": round(self.overlap_centroid[1], 3),
        }


def _capture_time(rng: np.random.Generator) -> datetime:
    """A daylight time in 2024, reproducible from the rng."""
    day = int(rng.integers(0, 366))
    second = int(rng.integers(8 * 3600, 18 * 3600))
    return datetime(2024, 1, 1) + timedelta(days=day, seconds=second)


def generate_photos(world: World, spec: PhotoSpec, seed: int, name_prefix: str = "photo",
                    progress: ProgressCallback | None = None) -> Iterator[tuple[PhotoTruth, np.ndarray]]:
    """Yield (truth, RGB image) for `spec.count` photos, deterministic from `seed`."""
    rng = np.random.default_rng([seed, 0x9407])
    poses: list[CameraPose] = sample_camera_poses(
        world, spec.count, rng, fov_range=spec.fov_range, width=spec.size[0], height=spec.size[1],
        border_margin_m=spec.border_margin_m)
    digits = max(4, len(str(spec.count)))
    for index, pose in enumerate(poses):
        render = render_ground(world, pose, rng=rng)
        view = visible_region(world, pose, max_range_m=spec.overlap_range_m)
        lon, lat = map_to_lonlat(world.crs, pose.x, pose.y)
        truth = PhotoTruth(
            name=f"{name_prefix}_{index:0{digits}d}.jpg", x=float(pose.x), y=float(pose.y),
            lon=float(lon), lat=float(lat), heading_deg=float(pose.heading_deg), fov_deg=float(pose.fov_deg),
            eye_height_m=float(pose.eye_height_m), pitch_deg=float(pose.pitch_deg),
            roll_deg=float(pose.roll_deg), width=int(render.image.shape[1]), height=int(render.image.shape[0]),
            taken=_capture_time(rng), overlap=view.polygon,
            overlap_centroid=(float(view.centroid[0]), float(view.centroid[1])))
        if progress is not None:
            progress(index + 1, spec.count)
        yield truth, render.image
