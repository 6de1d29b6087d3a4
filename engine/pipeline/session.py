"""The analyst's session without Qt: one map, its photos and their results, corrections with undo/redo, the
map's truth, the model, exports and project files. The desktop app is a view of it; every rule here
(what a new map does to old results, what confidence means, one heading) is testable headless.

The session is confined to one thread (the app's GUI thread). Engine work (reading a map's header, indexing,
localising) happens elsewhere through `EngineJobs`; its answers come back with the generation they were
asked under, so a result from a map or model that has since been replaced is dropped, never shown.
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path, PurePath

import numpy as np

from engine.data.geometry import lonlat_to_map, map_to_lonlat
from engine.geo.raster import MapRaster
from engine.pipeline.localizer import Localizer
from engine.pipeline.result_text import (  # noqa: F401
    CONFIDENCE_DEFINITION,
    confidence_of,
    confidence_text,
    confidence_tooltip,
    error_radius_of,
    heading_of,
    identify,
    priors_text,
)
from engine.pipeline.results import FAILED, LocalizationResult, Position
from engine.pipeline.session_files import (  # noqa: F401
    EXPORT_KINDS,
    PROJECT_FORMAT,
    PROJECT_SUFFIX,
    PROJECT_VERSION,
    ProjectFile,
    _absolute,
    _relative,
    _write_atomic,
    export_results,
    read_project,
)
from engine.pipeline.session_values import (  # noqa: F401
    CANCELLED,
    KEEP_PHOTOS,
    NEW_SESSION,
    QUEUED,
    RUNNING,
    WAITING,
    ExportSummary,
    MapInfo,
    NewMapPlan,
    PhotoRecord,
    SessionError,
    TruthPoint,
    _Correction,
    inspect_photo,
    load_truth,
    map_info_of,
    photo_stem,
    read_map_info,
    truth_file_of_map,
)
from engine.progress import Cancelled, CancelToken, ProgressCallback


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

    def restore(self, project: ProjectFile, info: MapInfo | None) -> None:
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


# ---------------------------------------------------------------- engine work (any one thread)
class EngineJobs:
    """The engine calls the session needs, for one worker thread: the Localizer and the current gallery.
    A map read for its header stays open for indexing it next, so the engine opens it once."""

    def __init__(self, model_path: str | None = None, device: str | None = None, config=None) -> None:
        self.model_path, self.device, self.config = model_path, device, config
        self._localizer = None
        self.gallery = None
        self.gallery_map: str | None = None
        self._opened: tuple[MapRaster, tuple | None] | None = None   # the map read last, its file's state then

    @property
    def localizer(self):
        if self._localizer is None:
            self._localizer = Localizer(model=self.model_path, device=self.device, config=self.config)
        return self._localizer

    def set_model(self, path: str | None) -> None:
        self.model_path, self._localizer, self.gallery, self.gallery_map = path, None, None, None

    def read_map(self, path: str) -> MapInfo:
        """The map's header (RasterError names the file and the problem); the map is kept open for `index`."""
        self.close_map()
        raster = MapRaster(path)
        try:
            info = map_info_of(raster)
        except BaseException:
            raster.close()
            raise
        self._opened = raster, _file_state(raster.path)
        return info

    def close_map(self) -> None:
        if self._opened is not None:
            self._opened[0].close()
            self._opened = None

    def _take_opened(self, path: str) -> MapRaster | None:
        """The map read last if it is `path` and its file is unchanged since (else closed: opened afresh)."""
        opened, self._opened = self._opened, None
        if opened is None:
            return None
        raster, state = opened
        if state is not None and Path(path).resolve() == raster.path.resolve() and _file_state(raster.path) == state:
            return raster
        raster.close()
        return None

    def index(self, map_path: str, progress: ProgressCallback | None = None, cancel: CancelToken | None = None,
              force: bool = False):
        """The map's gallery (IndexRefused if its index plan refuses it, unless `force`)."""
        self.gallery, self.gallery_map = None, None
        raster = self._take_opened(map_path)
        try:
            self.gallery = self.localizer.index_map(map_path, progress=progress, cancel=cancel, force=force,
                                                    raster=raster)
        finally:
            if raster is not None:
                raster.close()
        self.gallery_map = map_path
        return self.gallery

    def localize(self, photo: str, progress: ProgressCallback | None = None,
                 cancel: CancelToken | None = None) -> tuple[LocalizationResult, list[str]]:
        """(result, flags): the engine's result and the reasons the input may not be a ground photo."""
        if self.gallery is None:
            raise Cancelled("no indexed map")
        flags = inspect_photo(photo)
        return self.localizer.localize(photo, self.gallery, progress=progress, cancel=cancel), flags


def _file_state(path: Path) -> tuple[int, int, int] | None:
    """What changes when a file is replaced or rewritten (None: it cannot be read)."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


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
