"""The session's plain values: map header, photo records, truth points, the new-map plan, export summaries,
and the inputs read around them (a map's header, a scene's truth, whether a file is a ground photo)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path, PurePath

import numpy as np
import shapely

from engine.data.datasets.synthetic import read_truth
from engine.data.geometry import lonlat_to_map
from engine.errors import ViewfinderError
from engine.geo.raster import MapRaster
from engine.pipeline.results import LocalizationResult, Position

QUEUED, RUNNING, WAITING, CANCELLED = "queued", "localising", "waiting for map", "cancelled"
KEEP_PHOTOS, NEW_SESSION = "keep", "new"          # answers to "a new map over existing results"
TRUTH_FILE = "truth.geojson"
GEOREFERENCE_TAGS = (33550, 33922, 34264)         # GeoTIFF: pixel scale, tie points, model transform


class SessionError(ViewfinderError, ValueError):
    """A session or project file that cannot be used; the message names the file and the cause."""


# ---------------------------------------------------------------- values
@dataclass(frozen=True)
class MapInfo:
    """What the session needs of a map: read once, off the GUI thread, by `read_map_info`."""

    path: str
    bounds: tuple[float, float, float, float]     # map CRS (left, bottom, right, top)
    crs: str
    metres_per_px: float

    def contains(self, x: float, y: float) -> bool:
        left, bottom, right, top = self.bounds
        return left <= x <= right and bottom <= y <= top

    def contains_lonlat(self, lon: float, lat: float) -> bool:
        x, y = lonlat_to_map(self.crs, lon, lat)
        return bool(np.isfinite(x) and np.isfinite(y)) and self.contains(float(x), float(y))


def read_map_info(path: str | os.PathLike) -> MapInfo:
    """Open a map's header (RasterError names the file and the problem)."""
    with MapRaster(path) as raster:
        return map_info_of(raster)


def map_info_of(raster: MapRaster) -> MapInfo:
    """The header of an opened map."""
    crs = raster.crs.to_string() if hasattr(raster.crs, "to_string") else str(raster.crs)
    return MapInfo(str(Path(raster.path).resolve()), tuple(float(v) for v in raster.bounds), crs,
                   float(raster.metres_per_px))


@dataclass
class TruthPoint:
    """Where a photo was really taken (map CRS) and the map region it really shows."""

    x: float
    y: float
    heading_deg: float | None = None
    fov_deg: float | None = None
    overlap: object | None = None       # shapely geometry, map CRS


@dataclass
class PhotoRecord:
    path: str
    state: str = WAITING                    # until a result arrives
    result: LocalizationResult | None = None
    flags: list[str] = field(default_factory=list)        # "not a ground photo" and the like
    warnings: list[str] = field(default_factory=list)     # GPS prior off the map...
    carried: Position | None = None         # a correction kept across a new map, applied to the new result

    @property
    def name(self) -> str:
        return PurePath(self.path.replace("\\", "/")).name

    @property
    def stem(self) -> str:
        return PurePath(self.path.replace("\\", "/")).stem

    @property
    def status(self) -> str:
        return self.result.status if self.result is not None else self.state


@dataclass(frozen=True)
class NewMapPlan:
    """What opening `info` would do to the current session; the app asks the user when `needs_question`."""

    info: MapInfo
    photos: int
    results: int
    corrections_kept: int        # corrections lying on the new map (kept, applied after re-localising)
    corrections_lost: int        # corrections lying off the new map
    current: str | None = None   # the map open now

    @property
    def needs_question(self) -> bool:
        """Photos listed for another map: ask. Photos waiting for a first map simply get this one."""
        return self.current not in (None, self.info.path) and (self.results > 0 or self.photos > 0)

    @property
    def same_map(self) -> bool:
        return self.current == self.info.path

    def describe(self) -> str:
        name = Path(self.info.path).name
        text = (f"{self.photos} photos are listed, {self.results} with results on the current map. Keep them and "
                f"localise them again on {name}, or start a new session with {name} alone?")
        if self.corrections_kept or self.corrections_lost:
            text += (f"\nKeeping photos keeps {self.corrections_kept} manual corrections that lie on {name}"
                     + (f" and drops {self.corrections_lost} that lie off it" if self.corrections_lost else "")
                     + "; undo history is cleared.")
        return text


@dataclass(frozen=True)
class ExportSummary:
    path: str
    kind: str
    rows: int            # what the file holds: CSV rows, GeoJSON features, HTML markers
    photos: int
    failed: int

    def describe(self) -> str:
        unit = {"csv": "rows", "geojson": "features", "html": "photos"}[self.kind]
        failed = f", {self.failed} failed" if self.failed else ""
        return f"Exported {self.rows} {unit} ({self.photos} photos{failed}) to {self.path}"


@dataclass
class _Correction:
    photo: str
    before: LocalizationResult
    after: LocalizationResult


def inspect_photo(path: str | os.PathLike) -> list[str]:
    """Reasons a file is probably not a ground photo (an orthophoto or map dropped as a photo)."""
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as image:
            tags = getattr(image, "tag_v2", None) or {}
            if any(tag in tags for tag in GEOREFERENCE_TAGS):
                return [f"{Path(path).name}: a georeferenced raster (a map or orthophoto), not a ground photo"]
    except (OSError, UnidentifiedImageError):
        return []           # the localiser reports unreadable files with their reason
    return []


def photo_stem(path: str) -> str:
    return PurePath(path.replace("\\", "/")).stem


def truth_file_of_map(map_path: str) -> Path | None:
    """truth.geojson beside the map or in the folder above it: truth belongs to its map's scene."""
    folder = Path(map_path).resolve().parent
    for candidate in (folder / TRUTH_FILE, folder.parent / TRUTH_FILE):
        if candidate.is_file():
            return candidate
    return None


def load_truth(path: Path, crs: str) -> dict[str, TruthPoint]:
    """{photo stem: truth in the map CRS}; SessionError names the file when it is not a truth table."""
    def to_map(coords: np.ndarray) -> np.ndarray:
        x, y = lonlat_to_map(crs, coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])
    try:
        records = read_truth(path)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SessionError(f"{path}: not a truth table ({exc})") from None
    return {stem: TruthPoint(r.x, r.y, r.heading_deg, r.fov_deg,
                             shapely.transform(r.overlap_lonlat, to_map) if r.overlap_lonlat is not None else None)
            for stem, r in records.items()}
