"""The glue between the session (engine.pipeline.Session, Qt-free) and the engine worker (a child process).

It turns what the analyst does (open a map, add photos, correct, export) into session calls and worker
jobs, and the worker's answers back into session calls; the widgets only listen. The GUI thread never opens
a raster: a map's header is read by the worker and arrives as a MapInfo.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from app.engine_process import IndexSummary
from app.error_text import naming_the_file
from app.images import ImageLoader
from app.regions import RegionOffer, photo_lonlats, photos_in
from app.workers import EngineWorker, run_in_thread
from engine.pipeline import PHOTO_SUFFIXES, LocalizationResult, Session, SessionError, find_photos, read_project
from engine.pipeline import session as vf

RASTER_SUFFIXES = (".tif", ".tiff", ".vrt", ".jp2", ".img")


def classify_paths(paths: list[str]) -> tuple[list[str], list[str], list[str]]:
    """Dropped/opened paths -> (maps, photos, projects). A folder holding map.tif is a scene: map + photos."""
    maps, photos, projects = [], [], []
    for raw in paths:
        path = Path(raw)
        suffix = path.suffix.lower()
        if path.is_dir():
            scene_map = path / "map.tif"
            if scene_map.is_file():     # a scene folder: its map, and its photos/ folder when it has one
                maps.append(str(scene_map))
                scene_photos = path / "photos"
                found = find_photos([scene_photos if scene_photos.is_dir() else path])
                photos.extend(str(p) for p in found if p.resolve() != scene_map.resolve())
            else:
                photos.extend(str(p) for p in find_photos([path]))
        elif suffix == vf.PROJECT_SUFFIX:
            projects.append(str(path))
        elif suffix in RASTER_SUFFIXES:
            maps.append(str(path))
        elif suffix in PHOTO_SUFFIXES:
            photos.append(str(path))
    return maps, photos, projects


class SessionController(QObject):
    message = Signal(str)                       # status line
    warning = Signal(str, str)                  # title, text (a box the user must see)
    progress = Signal(str, int, int)            # text, done, total (total 0: busy)
    progress_finished = Signal()
    map_indexed = Signal(object)                # IndexSummary
    question = Signal(object)                   # NewMapPlan: the window asks, then calls answer_new_map
    index_refused = Signal(str, str)            # map, why: the window asks, then may call index_anyway
    project_restored = Signal(dict)             # the project's view settings (layers, view, selection)
    export_finished = Signal(object)            # ExportSummary
    export_failed = Signal(str, str)            # path, reason
    images_ready = Signal(str, object, object)  # photo, thumbnail QImage, preview QImage
    regions_offered = Signal(object)            # RegionOffer: the window asks, then calls cut_into_regions
    regions_folder_needed = Signal(object, str)  # RegionOffer, the unwritable folder: the window asks another
    regions_ready = Signal(object, object, object)  # RegionOffer, [(MapRegion, VRT path)], photos known in each

    def __init__(self, session: Session, engine: EngineWorker, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.engine = engine
        self.images = ImageLoader(self)
        self.pending_photos: list[str] = []     # dropped with a map whose question is still open
        self._reading = 0                       # map headers asked of the worker, not answered yet
        self._cancel_next_index = False         # cancel pressed while a map was still being opened
        engine.map_read.connect(self._on_map_read)
        engine.map_read_failed.connect(self._on_map_read_failed)
        engine.map_too_large.connect(self._on_map_too_large)
        engine.regions_written.connect(self._on_regions_written)
        engine.regions_folder_unwritable.connect(self._on_regions_folder_unwritable)
        engine.regions_failed.connect(self._on_regions_failed)
        engine.index_started.connect(lambda path: self.progress.emit(f"Indexing {Path(path).name}", 0, 0))
        engine.index_progress.connect(lambda stage, done, total: self.progress.emit(stage.capitalize(), done, total))
        engine.index_finished.connect(self._on_indexed)
        engine.index_failed.connect(self._on_index_failed)
        engine.index_cancelled.connect(self._on_index_cancelled)
        engine.index_refused.connect(self._on_index_refused)
        engine.photo_started.connect(self._on_photo_started)
        engine.photo_progress.connect(lambda path, stage, done, total: self.progress.emit(
            f"Localising {Path(path).name} ({self._left()} left)", done, total))
        engine.photo_finished.connect(self._on_photo_finished)
        engine.photo_cancelled.connect(lambda path, generation: session.photo_cancelled(path, generation))
        engine.idle.connect(self._on_idle)
        self.images.loaded.connect(self.images_ready)
        session.on("warning", self.message.emit)

    # ------------------------------------------------------------ what the analyst does
    def open_paths(self, paths: list[str]) -> None:
        maps, photos, projects = classify_paths(paths)
        if projects:
            self.open_project(projects[0])
        elif maps:
            self.open_map(maps[-1], photos)
        elif photos:
            self.add_photos(photos)
        else:
            self.message.emit("Nothing usable dropped: drop a GeoTIFF map, photos or a project file")

    def open_map(self, path: str, then_photos: list[str] | None = None) -> None:
        """Read the map's header in the worker; a map over existing photos asks first (see answer_new_map)."""
        self.message.emit(f"Opening {Path(path).name}…")
        self.progress.emit(f"Opening {Path(path).name}", 0, 0)
        self._reading += 1
        self.engine.read_map(path, ("open", list(then_photos or [])))

    def answer_new_map(self, plan: vf.NewMapPlan, choice: str | None) -> None:
        """The analyst's answer: KEEP_PHOTOS, NEW_SESSION or None (cancel: nothing changes)."""
        photos, self.pending_photos = self.pending_photos, []
        if choice is None:
            self.progress_finished.emit()
            self.message.emit(f"Kept {Path(self.session.map.path).name if self.session.map else 'the session'}; "
                              f"{Path(plan.info.path).name} not opened")
            return
        self._set_map(plan.info, choice)
        if photos:
            self.add_photos(photos)

    def add_photos(self, paths: list[str]) -> int:
        added, queued = self.session.add_photos(paths)
        for path in added:
            self.images.load(path)
        self._localize(queued)
        if added and self.session.map is None:
            self.message.emit(f"{len(added)} photos wait for a map: drop a GeoTIFF")
        return len(added)

    def relocalize(self, path: str) -> None:
        if path and self.session.has(path):
            self._localize(self.session.relocalize(path))

    def use_model(self, path: str) -> None:
        self.engine.cancel_photos()
        self.engine.set_model(path)
        self.session.use_model(path)
        if self.session.map is not None:
            self.engine.index_map(self.session.map.path, self.session.generation)

    def open_project(self, path: str) -> bool:
        try:
            project = read_project(path)
        except SessionError as exc:
            self.warning.emit("Project not opened", str(exc))
            return False
        self.engine.cancel_photos()
        if project.model_path and project.model_path != self.session.model_path:
            self.engine.set_model(project.model_path)
        if project.map_path:
            self._reading += 1
            self.engine.read_map(project.map_path, ("project", project))
        else:
            self._restore(project, None)
        return True

    def cancel(self) -> None:
        self._cancel_next_index = self._reading > 0     # the map still opens; its indexing is cancelled
        self.engine.cancel_indexing()
        self.engine.cancel_photos()

    def export(self, kind: str, path: str) -> bool:
        """Write an export in its own thread; export_finished/failed report what it wrote."""
        try:
            job = self.session.export_job(kind, path)
        except SessionError as exc:
            self.warning.emit("Nothing to export", str(exc))
            return False
        self.message.emit(f"Exporting to {path}…")

        def finished(summary: vf.ExportSummary) -> None:
            self.message.emit(summary.describe())
            self.export_finished.emit(summary)

        def failed(reason: str) -> None:
            self.warning.emit("Export failed", f"{path}: {reason}")
            self.export_failed.emit(path, reason)

        run_in_thread(job, finished, failed, self)
        return True

    # ------------------------------------------------------------ answers from the worker
    def _on_map_read(self, info: vf.MapInfo, purpose) -> None:
        self._reading = max(0, self._reading - 1)
        kind, payload = purpose
        if kind == "project":
            self._restore(payload, info)
            return
        plan = self.session.plan_map(info)
        if plan.needs_question:
            self.pending_photos = payload
            self.question.emit(plan)
            return
        self._set_map(info, vf.KEEP_PHOTOS)
        if payload:
            self.add_photos(payload)

    def _on_map_read_failed(self, path: str, reason: str, purpose) -> None:
        self._reading = max(0, self._reading - 1)
        self.progress_finished.emit()
        self.warning.emit("Not a usable map", naming_the_file(path, reason))

    # ------------------------------------------------------------ a map too large for one ground frame
    def _on_map_too_large(self, path: str, region_count: int, reason: str, purpose) -> None:
        self._reading = max(0, self._reading - 1)
        self.progress_finished.emit()
        kind, payload = purpose
        if kind == "project":       # a project belongs to its one map: a region of it would be another map
            self.warning.emit("Not a usable map", f"{path} is too large for one ground frame ({region_count} "
                                                  "regions): open the map itself (File > Open map) to cut it")
            return
        self.regions_offered.emit(RegionOffer(path, region_count, list(payload)))

    def decline_regions(self, offer: RegionOffer, written: bool = False) -> None:
        """The analyst said no (to cutting, a folder or every region): the session stays as it is."""
        self.message.emit(f"{offer.name}: regions written, none opened (File > Open map opens one)" if written
                          else f"{offer.name} not opened")

    def cut_into_regions(self, offer: RegionOffer, folder: str | None = None) -> None:
        """Write the region VRTs in the engine process (folder None: beside the map); regions_ready follows."""
        self.message.emit(f"Cutting {offer.name} into regions…")
        self.progress.emit(f"Cutting {offer.name} into regions", 0, 0)
        _, unplaced = photo_lonlats(self.session)
        self.engine.write_regions(offer.path, folder, [*offer.then_photos, *unplaced], offer)

    def open_region(self, offer: RegionOffer, vrt_path: str) -> None:
        self.open_map(vrt_path, offer.then_photos)

    def _on_regions_written(self, path: str, regions: list, read_lonlats: list, offer: RegionOffer) -> None:
        self.progress_finished.emit()
        self.message.emit(f"{offer.name}: {len(regions)} regions written to {Path(regions[0][1]).parent}")
        known, _ = photo_lonlats(self.session)
        lonlats = [*known, *read_lonlats]
        self.regions_ready.emit(offer, regions, [photos_in(region, lonlats) for region, _ in regions])

    def _on_regions_folder_unwritable(self, path: str, folder: str, offer: RegionOffer) -> None:
        self.progress_finished.emit()
        self.regions_folder_needed.emit(offer, folder)

    def _on_regions_failed(self, path: str, reason: str, offer: RegionOffer) -> None:
        self.progress_finished.emit()
        self.message.emit(f"Regions of {Path(path).name} not written")
        self.warning.emit("Regions not written", reason)

    def _set_map(self, info: vf.MapInfo, keep: str) -> None:
        self.engine.cancel_photos()
        self.session.set_map(info, keep)
        self._index(info.path)
        self.progress.emit(f"Indexing {Path(info.path).name}", 0, 0)
        self.message.emit(f"Indexing {Path(info.path).name}…")

    def _restore(self, project: vf.ProjectFile, info: vf.MapInfo | None) -> None:
        self.session.restore(project, info)
        for record in self.session.photos:
            self.images.load(record.path)
        if info is not None:
            self._index(info.path)
        self.project_restored.emit(project.view)

    def _index(self, path: str) -> None:
        self.engine.index_map(path, self.session.generation)
        if self._cancel_next_index:
            self._cancel_next_index = False
            self.engine.cancel_indexing()

    def _on_indexed(self, summary: IndexSummary) -> None:
        if summary.generation != self.session.generation:
            return
        how = "from the cache" if summary.from_cache else f"in {summary.seconds:.1f} s"
        self.message.emit(f"{Path(summary.map_path).name}: {summary.tiles} tiles indexed {how}")
        queued = self.session.map_indexed(summary.generation)
        self._localize(queued)
        if not queued:
            self.progress_finished.emit()
        self.map_indexed.emit(summary)

    def _on_index_failed(self, path: str, reason: str) -> None:
        self.progress_finished.emit()
        self.message.emit(f"Indexing failed: {reason}")
        self.warning.emit("Indexing failed", f"{path}: {reason}")

    def _on_index_refused(self, path: str, reasons: str) -> None:
        self.progress_finished.emit()
        self.message.emit(f"{Path(path).name} was not indexed: its index plan refuses it")
        self.index_refused.emit(path, reasons)

    def index_anyway(self, path: str) -> bool:
        """Index a refused map all the same (the analyst's answer); False if it is no longer the session's."""
        if self.session.map is None or self.session.map.path != path:
            return False
        self.engine.index_map(path, self.session.generation, force=True)
        self.progress.emit(f"Indexing {Path(path).name}", 0, 0)
        self.message.emit(f"Indexing {Path(path).name} as asked…")
        return True

    def _on_index_cancelled(self, path: str) -> None:
        self.progress_finished.emit()
        self.message.emit(f"Indexing of {Path(path).name} cancelled; open the map again to index it")

    def _localize(self, paths: list[str]) -> None:
        if paths:
            self.engine.localize(paths, self.session.generation)
            self.progress.emit("Localising", 0, len(paths))

    def _left(self) -> int:
        return sum(1 for r in self.session.photos if r.result is None and r.state in (vf.QUEUED, vf.RUNNING))

    def _on_photo_started(self, path: str, generation: int, thumbnail, preview) -> None:
        self.session.photo_started(path, generation)
        self.images_ready.emit(path, thumbnail, preview)

    def _on_photo_finished(self, path: str, generation: int, result: LocalizationResult, flags) -> None:
        if generation == self.session.generation:
            self.session.flag(path, list(flags))
        self.session.deliver(path, result, generation)

    def _on_idle(self) -> None:
        if self._left():
            return
        self.progress_finished.emit()
        records = [r for r in self.session.photos if r.result is not None]
        failed = sum(1 for r in records if r.result.status == "failed")
        if records and self.session.indexed:
            self.message.emit(f"{len(records) - failed} photos localised" + (f", {failed} failed" if failed else ""))
