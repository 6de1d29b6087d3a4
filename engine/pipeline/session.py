"""The analyst's session without Qt: one map, its photos and their results, corrections with undo/redo, the
map's truth, the model, exports and project files. The desktop app is a view of it; every rule here
(what a new map does to old results, what confidence means, one heading) is testable headless.

The session is confined to one thread (the app's GUI thread). Engine work (reading a map's header, indexing,
localising) happens elsewhere through `EngineJobs`; its answers come back with the generation they were
asked under, so a result from a map or model that has since been replaced is dropped, never shown.
"""
from __future__ import annotations

import csv
import json
import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePath

import numpy as np
import shapely

from engine.data.datasets.synthetic import read_truth
from engine.data.geometry import lonlat_to_map, map_to_lonlat
from engine.geo.export import write_results_csv, write_results_geojson, write_results_html
from engine.geo.raster import MapRaster
from engine.pipeline.localizer import Localizer
from engine.pipeline.results import FAILED, LocalizationResult, Position
from engine.progress import CancelToken, Cancelled, ProgressCallback

QUEUED, RUNNING, WAITING, CANCELLED = "queued", "localising", "waiting for map", "cancelled"
KEEP_PHOTOS, NEW_SESSION = "keep", "new"          # answers to "a new map over existing results"
PROJECT_FORMAT, PROJECT_VERSION, PROJECT_SUFFIX = "viewfinder-project", 1, ".vfproj"
TRUTH_FILE = "truth.geojson"
EXPORT_KINDS = ("geojson", "csv", "html")
CONFIDENCE_DEFINITION = ("Confidence is the calibrated probability that the camera lies within the stated radius "
                         "of the reported position: P(error ≤ r), from the pose volume's probability mass.")
GEOREFERENCE_TAGS = (33550, 33922, 34264)         # GeoTIFF: pixel scale, tie points, model transform


class SessionError(ValueError):
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
        crs = raster.crs.to_string() if hasattr(raster.crs, "to_string") else str(raster.crs)
        return MapInfo(str(Path(path).resolve()), tuple(float(v) for v in raster.bounds), crs,
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


# ---------------------------------------------------------------- reading a result
def heading_of(result: LocalizationResult | None) -> float:
    """The one heading of a result: the reported position's (the pose's when there is one)."""
    if result is None:
        return float("nan")
    if result.pose is not None:
        return float(result.pose.heading_deg)
    best = result.best
    return float(best.heading_deg) if best is not None else float("nan")


def confidence_of(result: LocalizationResult | None) -> float | None:
    """The calibrated probability to show, or None (manual, failed or nothing calibrated)."""
    if result is None or result.status == FAILED or result.manual_position is not None:
        return None
    if result.pose is not None:
        return float(result.pose.confidence)
    return None


def confidence_text(result: LocalizationResult | None) -> str:
    if result is None or result.status == FAILED:
        return "–"
    if result.manual_position is not None:
        return "manual"
    value = confidence_of(result)
    if value is None:
        return "n/a"       # retrieval only: its numbers are similarities, not probabilities
    return f"{value:.2f}"


def confidence_tooltip(result: LocalizationResult | None) -> str:
    if result is None or result.status == FAILED:
        return CONFIDENCE_DEFINITION
    if result.manual_position is not None:
        return "Placed by hand: the analyst's position, no model probability."
    if result.pose is None:
        return ("No pose estimate (retrieval only): the score is a descriptor similarity and no calibrated "
                "confidence exists. " + CONFIDENCE_DEFINITION)
    pose = result.pose
    return (f"P(error ≤ {pose.confidence_radius_m:.0f} m) = {pose.confidence:.2f}. " + CONFIDENCE_DEFINITION
            + f" 95 % credible region: radius ≈ {pose.error_radius_m:.0f} m.")


def error_radius_of(result: LocalizationResult | None) -> float:
    if result is None or result.pose is None or result.manual_position is not None:
        return float("nan")
    return float(result.pose.error_radius_m)


def _number(value, digits: int, unit: str = "") -> str:
    return f"{value:.{digits}f}{unit}" if isinstance(value, (int, float)) and math.isfinite(value) else "–"


def priors_text(result: LocalizationResult) -> str:
    priors = result.priors or {}
    parts = []
    position = priors.get("position")
    if position:
        unused = " (off the map, unused)" if priors.get("position_prior_unused") else ""
        parts.append(f"position {position.get('source', 'exif')} ±{_number(position.get('radius_m'), 0, ' m')}"
                     f"{unused}")
    heading = priors.get("heading")
    if heading:
        parts.append(f"heading {_number(heading.get('heading_deg'), 0, '°')} "
                     f"±{_number(heading.get('tolerance_deg'), 0, '°')} ({heading.get('source', 'exif')})")
    if priors.get("fov_deg") is not None:
        parts.append(f"FoV {_number(priors.get('fov_deg'), 0, '°')} ({priors.get('fov_source', '?')})")
    return ", ".join(parts) or "none"


def identify(record: PhotoRecord) -> list[tuple[str, str]]:
    """What the identify tool lists for a photo: (field, value) rows."""
    result = record.result
    rows = [("Photo", record.name), ("Status", record.status)]
    if result is None:
        return rows + [("Flags", "; ".join(record.flags + record.warnings) or "none")]
    if result.status == FAILED:
        return rows + [("Error", result.error or "unknown error"), ("Model", result.model_id or "–")]
    best = result.best
    method = "manual" if result.manual_position is not None else (result.pose.method if result.pose else "cafr")
    rows += [("Method", method)]
    if best is not None:
        rows += [("Longitude, latitude", f"{best.position.lon:.6f}, {best.position.lat:.6f}"),
                 ("Map x, y", f"{best.position.x:.1f}, {best.position.y:.1f} ({result.crs})")]
    sigma = result.pose.heading_sigma_deg if result.pose is not None else float("nan")
    rows += [("Heading", _number(heading_of(result), 1, "°") + (f" ± {sigma:.1f}°" if math.isfinite(sigma) else "")),
             ("Field of view", _number(result.fov_deg, 1, "°")),
             ("Confidence", confidence_text(result)
              + (f" within {result.pose.confidence_radius_m:.0f} m" if confidence_of(result) is not None else "")),
             ("Error radius (95 %)", _number(error_radius_of(result), 1, " m")),
             ("Retrieval score", _number(best.score if best is not None else None, 3)),
             ("Priors used", priors_text(result)), ("Model", result.model_id or "–"),
             ("Flags", "; ".join(record.flags + record.warnings) or "none")]
    return rows


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


# ---------------------------------------------------------------- the session
class Session:
    """Events (subscribe with `on(event, callback)`): map(info), photos(), photo(path), truth(), history(),
    model(path), warning(text), saved(path)."""

    def __init__(self, model_path: str | None = None) -> None:
        self.map: MapInfo | None = None
        self.indexed = False
        self.generation = 0             # bumped when the map or model changes: older answers are dropped
        self.photos: list[PhotoRecord] = []
        self.truth: dict[str, TruthPoint] = {}
        self.model_path = model_path
        self.project_path: str | None = None
        self._undo: list[_Correction] = []
        self._redo: list[_Correction] = []
        self._saved_depth: int | None = 0
        self._listeners: dict[str, list[Callable]] = {}

    # ------------------------------------------------------------ events
    def on(self, event: str, callback: Callable) -> None:
        self._listeners.setdefault(event, []).append(callback)

    def _emit(self, event: str, *args) -> None:
        for callback in self._listeners.get(event, []):
            callback(*args)

    # ------------------------------------------------------------ lookup
    def record(self, path: str) -> PhotoRecord:
        for record in self.photos:
            if record.path == path:
                return record
        raise KeyError(path)

    def has(self, path: str) -> bool:
        return any(record.path == path for record in self.photos)

    def results(self) -> list[LocalizationResult]:
        return [record.result for record in self.photos if record.result is not None]

    def truth_for(self, path: str) -> TruthPoint | None:
        return self.truth.get(photo_stem(path))

    def corrections(self) -> int:
        return sum(1 for r in self.photos if r.result is not None and r.result.manual_position is not None)

    # ------------------------------------------------------------ map
    def plan_map(self, info: MapInfo) -> NewMapPlan:
        kept = lost = 0
        for record in self.photos:
            manual = record.result.manual_position if record.result is not None else record.carried
            if manual is not None:
                if info.contains_lonlat(manual.lon, manual.lat):
                    kept += 1
                else:
                    lost += 1
        return NewMapPlan(info, len(self.photos), len(self.results()), kept, lost,
                          self.map.path if self.map is not None else None)

    def set_map(self, info: MapInfo, keep: str = KEEP_PHOTOS) -> NewMapPlan:
        """Make `info` the map. keep=KEEP_PHOTOS: every photo waits to be localised again on it (corrections
        that lie on it are re-applied afterwards, the others dropped and reported); NEW_SESSION: photos go."""
        if keep not in (KEEP_PHOTOS, NEW_SESSION):
            raise ValueError(f"keep must be {KEEP_PHOTOS!r} or {NEW_SESSION!r}, got {keep!r}")
        plan = self.plan_map(info)
        self.map, self.indexed = info, False
        self.generation += 1
        if plan.same_map and keep == KEEP_PHOTOS:      # the same map again (to index it again): work stays
            for record in self.photos:
                if record.result is None:
                    record.state = WAITING
            self._emit("map", info)
            self._emit("photos")
            return plan
        if keep == NEW_SESSION:
            self.photos = []
            self.project_path = None
        for record in self.photos:
            manual = record.result.manual_position if record.result is not None else record.carried
            record.carried = None
            if manual is not None and info.contains_lonlat(manual.lon, manual.lat):
                x, y = lonlat_to_map(info.crs, manual.lon, manual.lat)
                record.carried = Position(float(x), float(y), manual.lon, manual.lat)
            record.result, record.state, record.warnings = None, WAITING, []
        self._clear_history()
        self._load_truth()
        self._emit("map", info)
        self._emit("photos")
        if plan.corrections_lost and keep == KEEP_PHOTOS:
            self._emit("warning", f"{plan.corrections_lost} manual corrections lie off {Path(info.path).name} "
                                  "and were dropped")
        return plan

    def _load_truth(self) -> None:
        self.truth = {}
        path = truth_file_of_map(self.map.path) if self.map is not None else None
        if path is not None:
            try:
                self.truth = load_truth(path, self.map.crs)
            except SessionError as exc:
                self._emit("warning", str(exc))
        self._emit("truth")

    def map_indexed(self, generation: int) -> list[str]:
        """The map of `generation` is indexed: the photos waiting for it, now queued (send them to the engine)."""
        if generation != self.generation:
            return []
        self.indexed = True
        return self._queue([r for r in self.photos if r.result is None and r.state in (WAITING, QUEUED, CANCELLED)])

    def _queue(self, records: list[PhotoRecord]) -> list[str]:
        for record in records:
            record.state = QUEUED
            self._emit("photo", record.path)
        return [record.path for record in records]

    # ------------------------------------------------------------ photos
    def add_photos(self, paths: list[str]) -> tuple[list[str], list[str]]:
        """List photos (absolute paths, no duplicates): (added, queued now). Queued only on an indexed map."""
        added = []
        for raw in paths:
            path = str(Path(raw).resolve())
            if not self.has(path) and path not in added:
                added.append(path)
        self.photos.extend(PhotoRecord(path) for path in added)
        if added:
            self._emit("photos")
        queued = self._queue([self.record(p) for p in added]) if self.indexed else []
        return added, queued

    def flag(self, path: str, flags: list[str]) -> None:
        if self.has(path) and flags:
            record = self.record(path)
            record.flags = list(dict.fromkeys(record.flags + flags))
            self._emit("photo", path)
            for text in flags:
                self._emit("warning", text)

    def photo_started(self, path: str, generation: int) -> None:
        if generation == self.generation and self.has(path) and self.record(path).result is None:
            self.record(path).state = RUNNING
            self._emit("photo", path)

    def photo_cancelled(self, path: str, generation: int) -> None:
        if generation == self.generation and self.has(path) and self.record(path).result is None:
            self.record(path).state = CANCELLED
            self._emit("photo", path)

    def deliver(self, path: str, result: LocalizationResult, generation: int) -> bool:
        """A result from the engine; False (dropped) when it belongs to a replaced map/model or a removed photo."""
        if generation != self.generation or not self.has(path):
            return False
        record = self.record(path)
        if record.carried is not None and result.status != FAILED:
            result, record.carried = result.corrected(record.carried), None
        record.result = result
        record.warnings = self._warnings(record)
        self._emit("photo", path)
        for text in record.warnings:
            self._emit("warning", text)
        return True

    def _warnings(self, record: PhotoRecord) -> list[str]:
        prior = (record.result.priors or {}).get("position") if record.result is not None else None
        if not prior or self.map is None:
            return []
        try:
            lon, lat = float(prior["lon"]), float(prior["lat"])
        except (KeyError, TypeError, ValueError):
            return []
        if self.map.contains_lonlat(lon, lat):
            return []
        x, y = lonlat_to_map(self.map.crs, lon, lat)
        left, bottom, right, top = self.map.bounds
        off = math.hypot(max(left - x, 0, x - right), max(bottom - y, 0, y - top)) if np.isfinite(x) else float("inf")
        where = f"{off / 1000:.0f} km" if math.isfinite(off) else "far"
        return [f"{record.name}: its GPS position lies {where} off {Path(self.map.path).name}; "
                "is this the right map?"]

    def relocalize(self, path: str) -> list[str]:
        """Drop a photo's result (and its correction: its undo steps go too) and queue it again."""
        record = self.record(path)
        had_correction = record.result is not None and record.result.manual_position is not None
        record.result, record.carried, record.state = None, None, WAITING
        self._drop_history_of({path}, had_correction)
        self._emit("photo", path)
        self._emit("history")
        return self._queue([record]) if self.indexed else []

    def remove_photos(self, paths: list[str]) -> None:
        gone = set(paths)
        lost = any(r.result is not None and r.result.manual_position is not None for r in self.photos
                   if r.path in gone)
        self.photos = [r for r in self.photos if r.path not in gone]
        self._drop_history_of(gone, lost)
        self._emit("photos")

    def _drop_history_of(self, photos: set[str], lost_correction: bool) -> None:
        before = len(self._undo)
        self._undo = [c for c in self._undo if c.photo not in photos]
        self._redo = [c for c in self._redo if c.photo not in photos]
        if lost_correction or len(self._undo) != before:
            self._saved_depth = None       # the saved project no longer matches any undo position
        self._emit("history")

    # ------------------------------------------------------------ corrections, undo, redo
    def correct(self, path: str, x: float, y: float) -> bool:
        """Move a photo's position by hand (undoable). False when it has no result or lies off the map."""
        if self.map is None or not self.has(path) or not self.map.contains(x, y):
            return False
        record = self.record(path)
        if record.result is None or record.result.status == FAILED:
            return False
        lon, lat = map_to_lonlat(self.map.crs, x, y)
        change = _Correction(path, record.result, record.result.corrected(Position(x, y, float(lon), float(lat))))
        self._undo.append(change)
        self._redo.clear()
        self._apply(path, change.after)
        return True

    def _apply(self, path: str, result: LocalizationResult) -> None:
        self.record(path).result = result
        self._emit("photo", path)
        self._emit("history")

    def undo(self) -> bool:
        if not self._undo:
            return False
        change = self._undo.pop()
        self._redo.append(change)
        self._apply(change.photo, change.before)
        return True

    def redo(self) -> bool:
        if not self._redo:
            return False
        change = self._redo.pop()
        self._undo.append(change)
        self._apply(change.photo, change.after)
        return True

    def undo_text(self) -> str:
        return f"Undo move {PurePath(self._undo[-1].photo).name}" if self._undo else "Undo"

    def redo_text(self) -> str:
        return f"Redo move {PurePath(self._redo[-1].photo).name}" if self._redo else "Redo"

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    @property
    def unsaved_corrections(self) -> bool:
        """Corrections made or undone since the last save (what closing the window must ask about)."""
        return self._saved_depth != len(self._undo)

    def _clear_history(self) -> None:
        had = bool(self._undo or self._redo)
        self._undo, self._redo = [], []
        self._saved_depth = 0 if not had else None
        self._emit("history")

    # ------------------------------------------------------------ model
    def use_model(self, path: str) -> list[str]:
        """Localise with another model: every uncorrected result waits for the map to be indexed again."""
        self.model_path = str(path)
        self.generation += 1
        self.indexed = False
        for record in self.photos:
            if record.result is None or record.result.manual_position is None:
                record.result, record.state = None, WAITING
        self._clear_history()
        self._emit("model", self.model_path)
        self._emit("photos")
        return [r.path for r in self.photos if r.result is None]

    # ------------------------------------------------------------ export
    def export_job(self, kind: str, path: str) -> Callable[[], ExportSummary]:
        """A job (run it in any thread) writing a snapshot of the results; it returns what the file holds."""
        if kind not in EXPORT_KINDS:
            raise ValueError(f"export kind must be one of {EXPORT_KINDS}, got {kind!r}")
        results = list(self.results())
        if not results:
            raise SessionError(f"{path}: nothing to export, no photo has a result yet")
        map_path = self.map.path if self.map is not None else None
        return lambda: export_results(kind, results, path, map_path)

    def export(self, kind: str, path: str) -> ExportSummary:
        return self.export_job(kind, path)()

    # ------------------------------------------------------------ project files
    def save(self, path: str | os.PathLike, view: dict | None = None) -> Path:
        """Write the session (and the app's view settings, kept opaque) to a project file, atomically."""
        path = Path(path)
        if path.suffix != PROJECT_SUFFIX:
            path = path.with_name(path.name + PROJECT_SUFFIX)
        folder = path.parent.resolve()
        view = dict(view or {})
        data = {"format": PROJECT_FORMAT, "version": PROJECT_VERSION,
                "map": _relative(self.map.path if self.map else None, folder),
                "model": _relative(self.model_path, folder),
                "photos": [{"path": _relative(r.path, folder), "result": r.result.to_json() if r.result else None,
                            "flags": r.flags} for r in self.photos],
                "layers": view.pop("layers", {}), "view": view.pop("view", None),
                "selected_photo": _relative(view.pop("selected_photo", None), folder), "app": view}
        _write_atomic(path, json.dumps(data, indent=1) + "\n")
        self.project_path = str(path.resolve())
        self._saved_depth = len(self._undo)
        self._emit("saved", self.project_path)
        self._emit("history")
        return path

    def restore(self, project: "ProjectFile", info: MapInfo | None) -> None:
        """Replace the session by a loaded project (`info`: its map's header, read off the GUI thread)."""
        self.generation += 1
        self.map, self.indexed = info, False
        self.model_path = project.model_path or self.model_path
        self.photos = [PhotoRecord(p, WAITING, project.results.get(p), list(project.flags.get(p, [])))
                       for p in project.photos]
        self.project_path = project.path
        self._clear_history()
        self._saved_depth = 0
        self._load_truth()
        if info is not None:
            self._emit("map", info)
        self._emit("photos")
        for record in self.photos:
            record.warnings = self._warnings(record) if record.result is not None else []


@dataclass
class ProjectFile:
    path: str
    map_path: str | None = None
    model_path: str | None = None
    photos: list[str] = field(default_factory=list)
    results: dict[str, LocalizationResult] = field(default_factory=dict)
    flags: dict[str, list[str]] = field(default_factory=dict)
    view: dict = field(default_factory=dict)          # layers, view, selected_photo (the app's business)


def read_project(path: str | os.PathLike) -> ProjectFile:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SessionError(f"{path}: file not found") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SessionError(f"{path}: not a Viewfinder project ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != PROJECT_FORMAT:
        raise SessionError(f"{path}: not a Viewfinder project (format field missing)")
    if int(data.get("version", 0)) > PROJECT_VERSION:
        raise SessionError(f"{path}: made by a newer Viewfinder (project version {data['version']})")
    folder = path.parent.resolve()
    view = dict(data.get("app") or {})
    view.update(layers=data.get("layers") or {}, selected_photo=_absolute(data.get("selected_photo"), folder),
                view=tuple(float(v) for v in data["view"]) if data.get("view") else None)
    project = ProjectFile(str(path.resolve()), _absolute(data.get("map"), folder), _absolute(data.get("model"), folder),
                          view=view)
    try:
        for item in data.get("photos", []):
            photo = _absolute(item["path"], folder)
            project.photos.append(photo)
            project.flags[photo] = list(item.get("flags") or [])
            if item.get("result"):
                project.results[photo] = replace(LocalizationResult.from_json(item["result"]), photo=photo)
    except (KeyError, TypeError, ValueError) as exc:
        raise SessionError(f"{path}: damaged photo entry ({exc})") from None
    return project


def _relative(path: str | None, folder: Path) -> str | None:
    if path is None:
        return None
    absolute = Path(path).resolve()
    try:
        return absolute.relative_to(folder).as_posix()
    except ValueError:
        return str(absolute)


def _absolute(path: str | None, folder: Path) -> str | None:
    if path is None:
        return None
    candidate = Path(path)
    return str(candidate if candidate.is_absolute() else (folder / candidate).resolve())


def _write_atomic(path: Path, text: str) -> None:
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent.resolve())
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def export_results(kind: str, results: list[LocalizationResult], path: str, map_path: str | None) -> ExportSummary:
    """Write one export with the engine's writers, then count what the file holds (the status bar says that)."""
    failed = sum(1 for r in results if r.status == FAILED)
    photos = len({r.photo for r in results})
    if kind == "csv":
        write_results_csv(results, path)
        with open(path, newline="", encoding="utf-8") as stream:
            rows = sum(1 for _ in csv.DictReader(stream))
    elif kind == "geojson":
        write_results_geojson(results, path)
        rows = len(json.loads(Path(path).read_text(encoding="utf-8")).get("features", []))
    else:
        if map_path is None:
            raise SessionError(f"{path}: an HTML map needs the session's map")
        write_results_html(results, map_path, path)
        rows = sum(1 for r in results if r.status != FAILED and r.best is not None)
    return ExportSummary(str(path), kind, rows, photos, failed)


# ---------------------------------------------------------------- engine work (any one thread)
class EngineJobs:
    """The engine calls the session needs, for one worker thread: the Localizer and the current gallery."""

    def __init__(self, model_path: str | None = None, device: str | None = None, config=None) -> None:
        self.model_path, self.device, self.config = model_path, device, config
        self._localizer = None
        self.gallery = None
        self.gallery_map: str | None = None

    @property
    def localizer(self):
        if self._localizer is None:
            self._localizer = Localizer(model=self.model_path, device=self.device, config=self.config)
        return self._localizer

    def set_model(self, path: str | None) -> None:
        self.model_path, self._localizer, self.gallery, self.gallery_map = path, None, None, None

    def index(self, map_path: str, progress: ProgressCallback | None = None, cancel: CancelToken | None = None):
        self.gallery, self.gallery_map = None, None
        self.gallery = self.localizer.index_map(map_path, progress=progress, cancel=cancel)
        self.gallery_map = map_path
        return self.gallery

    def localize(self, photo: str, progress: ProgressCallback | None = None,
                 cancel: CancelToken | None = None) -> tuple[LocalizationResult, list[str]]:
        """(result, flags): the engine's result and the reasons the input may not be a ground photo."""
        if self.gallery is None:
            raise Cancelled("no indexed map")
        flags = inspect_photo(photo)
        return self.localizer.localize(photo, self.gallery, progress=progress, cancel=cancel), flags


def run_session(session: Session, jobs: EngineJobs, progress: ProgressCallback | None = None,
                cancel: CancelToken | None = None) -> None:
    """Headless: index the session's map and localise every waiting photo (what the app does in threads)."""
    if session.map is None:
        raise SessionError("the session has no map")
    generation = session.generation
    jobs.index(session.map.path, progress, cancel)
    for path in session.map_indexed(generation):
        session.photo_started(path, generation)
        result, flags = jobs.localize(path, cancel=cancel)
        session.flag(path, flags)
        session.deliver(path, result, generation)
