"""The main window: map canvas, layers and results docks, menus, drag and drop, status bar.

It wires widgets to the engine worker; all engine work happens in app.workers, never on this thread.
"""
from __future__ import annotations

import gc
import math
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QUndoStack
from PySide6.QtWidgets import (QComboBox, QDockWidget, QFileDialog, QHBoxLayout, QLabel,
                               QMainWindow, QMessageBox, QProgressBar, QStyle, QToolButton, QWidget)

from engine.pipeline import (DONE, FAILED, MANUAL, PHOTO_SUFFIXES, LocalizationResult, Position, RasterError,
                             find_photos, lonlat_to_map, map_to_lonlat, open_map, write_results_csv,
                             write_results_geojson, write_results_html)

from app.images import ImageLoader
from app.layers import LayersPanel
from app.map_canvas import MapCanvas
from app.map_layers import MapLayers
from app.project import PROJECT_SUFFIX, Project, ProjectError, load_project, save_project
from app.results_model import CANCELLED, QUEUED, RUNNING, WAITING_FOR_MAP, ResultsModel
from app.results_panel import ResultsPanel
from app.truth import PhotoTruth, load_truth, photo_stem, truth_file_near
from app.undo import MoveCameraCommand
from app.workers import EngineWorker, IndexSummary, run_in_thread

RASTER_SUFFIXES = (".tif", ".tiff", ".vrt", ".jp2", ".img")
PREVIEW_CHANNEL = "preview"
APP_NAME = "Viewfinder"


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
        elif suffix == PROJECT_SUFFIX:
            projects.append(str(path))
        elif suffix in RASTER_SUFFIXES:
            maps.append(str(path))
        elif suffix in PHOTO_SUFFIXES:
            photos.append(str(path))
    return maps, photos, projects


def format_lonlat(lon: float, lat: float) -> str:
    return f"{abs(lat):.6f}°{'N' if lat >= 0 else 'S'}  {abs(lon):.6f}°{'E' if lon >= 0 else 'W'}"


def freeze_long_lived_objects() -> None:
    """Move every object alive now (modules, Qt wrappers, the model) out of the cyclic collector's reach.

    The app's imports alone leave ~500k tracked objects; a full collection walks them all and, on whichever
    thread triggers it, holds the GIL for 200-400 ms: the GUI would freeze at random moments. Frozen objects
    are still freed by reference counting; only cycles among them stay (start-up objects live all session).
    """
    gc.freeze()


class MainWindow(QMainWindow):
    map_indexed = Signal(object)        # IndexSummary, after the status bar is updated (tests wait on it)
    export_finished = Signal(str)       # path written
    export_failed = Signal(str, str)    # path, reason

    def __init__(self, model_source=None, device: str | None = None, localizer_config=None) -> None:
        super().__init__()
        self.setWindowTitle(APP_NAME)
        self.resize(1480, 920)
        self.setAcceptDrops(True)
        self.ask_before_closing = True
        self._shut_down = False

        self.map_path: str | None = None
        self.map_crs = None
        self.indexed = False
        self.project_path: str | None = None
        self.model_path = str(model_source) if isinstance(model_source, (str, Path)) else None
        self.truths: dict[str, PhotoTruth] = {}
        self.selected_photo = ""
        self.candidate_index = 0
        self.training_dialog = None

        self.canvas = MapCanvas()
        self.setCentralWidget(self.canvas)
        self.map_layers = MapLayers(self.canvas.getPlotItem(), self._lonlat_to_map)
        self.results = ResultsModel(self)
        self.results_panel = ResultsPanel(self.results)
        self.layers_panel = LayersPanel(self.map_layers.stack)
        self.level_combo = QComboBox()
        self.level_combo.setToolTip("Attention level of the heatmap: 0 is the finest")
        level_row = QHBoxLayout()
        level_row.addWidget(QLabel("Heatmap level"))
        level_row.addWidget(self.level_combo, 1)
        self.layers_panel.extra.addLayout(level_row)
        self._set_level_choices(4)
        self.undo_stack = QUndoStack(self)
        self.image_loader = ImageLoader(self)

        self._build_docks()
        self._build_status_bar()
        self._build_actions()

        self.engine = EngineWorker(model_source, device, localizer_config, self)
        self._connect()
        self.engine.start()
        freeze_long_lived_objects()

    # ------------------------------------------------------------ construction
    def _build_docks(self) -> None:
        self.layers_dock = QDockWidget("Layers", self)
        self.layers_dock.setObjectName("layers")
        self.layers_dock.setWidget(self.layers_panel)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.layers_dock)
        self.results_dock = QDockWidget("Results", self)
        self.results_dock.setObjectName("results")
        self.results_dock.setWidget(self.results_panel)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.results_dock)
        self.resizeDocks([self.layers_dock, self.results_dock], [250, 560], Qt.Orientation.Horizontal)

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.message_label = QLabel("Drop a GeoTIFF map, then photos")
        self.cursor_label = QLabel("")
        self.cursor_label.setMinimumWidth(420)
        self.model_label = QLabel("")
        self.model_label.setStyleSheet("color: #606368;")
        self.progress_label = QLabel("")
        self.progress_bar = QProgressBar()
        self.progress_bar.setFixedWidth(180)
        self.progress_bar.setTextVisible(True)
        self.cancel_button = QToolButton()
        self.cancel_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_DialogCancelButton))
        self.cancel_button.setToolTip("Cancel indexing and localisation")
        progress = QWidget()
        layout = QHBoxLayout(progress)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.progress_label)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.cancel_button)
        self.progress_widget = progress
        progress.setVisible(False)
        bar.addWidget(self.message_label, 1)
        bar.addPermanentWidget(progress)
        bar.addPermanentWidget(self.cursor_label)
        bar.addPermanentWidget(self.model_label)

    def _action(self, text: str, slot, shortcut=None, icon=None, tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if icon is not None:
            action.setIcon(self.style().standardIcon(icon))
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(tip)
        action.triggered.connect(slot)
        return action

    def _build_actions(self) -> None:
        sp = QStyle.StandardPixmap
        self.open_map_action = self._action("Open &map…", self.choose_map, QKeySequence.StandardKey.Open,
                                            sp.SP_DirOpenIcon, "Open a GeoTIFF map and index it")
        self.add_photos_action = self._action("Add &photos…", self.choose_photos, "Ctrl+P", sp.SP_FileIcon,
                                              "Queue photos for localisation")
        self.open_project_action = self._action("Open &project…", self.choose_project, "Ctrl+Shift+O")
        self.save_project_action = self._action("&Save project", self.save_project, QKeySequence.StandardKey.Save,
                                                sp.SP_DialogSaveButton, "Save map, photos, results and layers")
        self.save_project_as_action = self._action("Save project &as…", self.save_project_as,
                                                   QKeySequence.StandardKey.SaveAs)
        self.export_geojson_action = self._action("Export &GeoJSON…", lambda: self.choose_export("geojson"),
                                                  "Ctrl+E")
        self.export_html_action = self._action("Export &HTML map…", lambda: self.choose_export("html"))
        self.export_csv_action = self._action("Export &CSV…", lambda: self.choose_export("csv"))
        quit_action = self._action("&Quit", self.close, QKeySequence.StandardKey.Quit)
        self.undo_action = self.undo_stack.createUndoAction(self, "&Undo")
        self.undo_action.setShortcut(QKeySequence.StandardKey.Undo)
        self.redo_action = self.undo_stack.createRedoAction(self, "&Redo")
        self.redo_action.setShortcut(QKeySequence.StandardKey.Redo)
        self.relocalize_action = self._action("&Localise again", self.relocalize_selected, "Ctrl+L",
                                              tip="Localise the selected photo again (drops its correction)")
        self.cancel_action = self._action("&Cancel running work", self.cancel_work, "Esc")
        zoom_map = self._action("Zoom to &map", self.canvas.zoom_to_map, "Ctrl+0", tip="Show the whole map")
        zoom_selection = self._action("Zoom to &selection", self.zoom_to_selected, "Ctrl+F")
        self.train_action = self._action("&Train model…", self.show_training_dialog, "Ctrl+T",
                                         sp.SP_ComputerIcon, "Train or fine-tune the model")
        self.use_model_action = self._action("Use model &file…", self.choose_model,
                                             tip="Localise with a trained checkpoint (re-indexes the map)")
        about = self._action("&About Viewfinder", self.show_about)

        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        for action in (self.open_map_action, self.add_photos_action, None, self.open_project_action,
                       self.save_project_action, self.save_project_as_action, None, self.export_geojson_action,
                       self.export_html_action, self.export_csv_action, None, quit_action):
            file_menu.addSeparator() if action is None else file_menu.addAction(action)
        edit_menu = menu.addMenu("&Edit")
        for action in (self.undo_action, self.redo_action, None, self.relocalize_action, self.cancel_action):
            edit_menu.addSeparator() if action is None else edit_menu.addAction(action)
        view_menu = menu.addMenu("&View")
        view_menu.addAction(zoom_map)
        view_menu.addAction(zoom_selection)
        view_menu.addSeparator()
        view_menu.addAction(self.layers_dock.toggleViewAction())
        view_menu.addAction(self.results_dock.toggleViewAction())
        model_menu = menu.addMenu("&Model")
        model_menu.addAction(self.train_action)
        model_menu.addAction(self.use_model_action)
        menu.addMenu("&Help").addAction(about)

        toolbar = self.addToolBar("Main")
        toolbar.setObjectName("main-toolbar")
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        for action in (self.open_map_action, self.add_photos_action, self.save_project_action, None,
                       self.undo_action, self.redo_action, None, self.export_geojson_action, None,
                       self.train_action):
            toolbar.addSeparator() if action is None else toolbar.addAction(action)
        self.undo_action.setIcon(self.style().standardIcon(sp.SP_ArrowBack))
        self.redo_action.setIcon(self.style().standardIcon(sp.SP_ArrowForward))
        self.export_geojson_action.setIcon(self.style().standardIcon(sp.SP_DialogSaveButton))

    def _connect(self) -> None:
        engine = self.engine
        engine.model_loaded.connect(self._on_model_loaded)
        engine.model_failed.connect(lambda reason: self._warn("Model could not be loaded", reason))
        engine.index_started.connect(self._on_index_started)
        engine.index_progress.connect(self._on_index_progress)
        engine.index_finished.connect(self._on_index_finished)
        engine.index_failed.connect(self._on_index_failed)
        engine.index_cancelled.connect(self._on_index_cancelled)
        engine.photo_started.connect(self._on_photo_started)
        engine.photo_progress.connect(self._on_photo_progress)
        engine.photo_finished.connect(self._on_photo_finished)
        engine.photo_cancelled.connect(lambda path: self.results.set_state(path, CANCELLED))
        engine.idle.connect(self._on_engine_idle)
        self.cancel_button.clicked.connect(self.cancel_work)
        self.canvas.cursor_moved.connect(self._on_cursor_moved)
        self.canvas.left_view.connect(lambda: self.cursor_label.setText(""))
        self.canvas.tile_read.connect(self._on_tile_read)
        self.canvas.map_failed.connect(lambda reason: self._warn("Map could not be read", reason))
        self.results_panel.photo_selected.connect(self._on_photo_selected)
        self.results_panel.candidate_selected.connect(self._on_candidate_selected)
        self.results_panel.tile_requested.connect(
            lambda bounds, size: self.canvas.request_read(PREVIEW_CHANNEL, bounds, size))
        self.results.result_changed.connect(self._on_result_changed)
        self.map_layers.marker_moved.connect(self.move_camera)
        self.map_layers.marker_clicked.connect(self.results_panel.select_photo)
        self.level_combo.currentIndexChanged.connect(self._on_level_changed)
        self.image_loader.loaded.connect(self._on_images_loaded)
        self.undo_stack.cleanChanged.connect(lambda _clean: self._update_title())

    # ------------------------------------------------------------ map
    def open_map(self, path: str) -> bool:
        """Show a map at once and index it in the worker. Photos already listed are localised again on it."""
        try:
            with open_map(path) as raster:
                bounds, crs, metres_per_px = raster.bounds, raster.crs, raster.metres_per_px
        except RasterError as exc:
            self._warn("Not a usable map", str(exc))
            return False
        self.map_path, self.map_crs, self.indexed = str(Path(path).resolve()), crs, False
        self.canvas.set_map(self.map_path, bounds, metres_per_px, self.map_layers["satellite"])
        self.engine.cancel_photos()
        for entry in self.results.entries:          # results of another map mean nothing here
            self.results.set_result(entry.path, None)
            self.results.set_state(entry.path, WAITING_FOR_MAP)
        self.undo_stack.clear()
        self.truths.clear()                          # truth is per scene and drawn in the map's CRS
        self._load_truth(self.map_path)
        self.engine.index_map(self.map_path)
        self._on_index_started(self.map_path)        # progress and its cancel button show at once
        self._update_title()
        self._redraw()
        return True

    def _load_truth(self, *paths: str) -> None:
        if self.map_crs is None:
            return
        truth_path = truth_file_near(*paths)
        if truth_path is None:
            return
        try:
            self.truths.update(load_truth(truth_path, self.map_crs))
        except (OSError, ValueError, KeyError) as exc:
            self.statusBar().showMessage(f"{truth_path}: not a truth table ({exc})", 8000)

    def _on_index_started(self, path: str) -> None:
        self._show_progress(f"Indexing {Path(path).name}", 0, 0)
        self.message_label.setText(f"Indexing {Path(path).name}…")

    def _on_index_progress(self, stage: str, done: int, total: int) -> None:
        self._show_progress(stage.capitalize(), done, total)

    def _on_index_finished(self, summary: IndexSummary) -> None:
        if summary.map_path != self.map_path:
            return
        self.indexed = True
        how = "from the cache" if summary.from_cache else f"in {summary.seconds:.1f} s"
        self.message_label.setText(f"{Path(summary.map_path).name}: {summary.tiles} tiles indexed {how}")
        waiting = [e.path for e in self.results.entries if e.result is None and e.state in (WAITING_FOR_MAP,
                                                                                            QUEUED, CANCELLED)]
        self._queue_photos(waiting)
        if not waiting:
            self.progress_widget.setVisible(False)
        self.map_indexed.emit(summary)

    def _on_index_failed(self, path: str, reason: str) -> None:
        self.progress_widget.setVisible(False)
        self.message_label.setText(f"Indexing failed: {reason}")
        self._warn("Indexing failed", f"{path}: {reason}")

    def _on_index_cancelled(self, path: str) -> None:
        self.progress_widget.setVisible(False)
        self.message_label.setText(f"Indexing of {Path(path).name} cancelled; open the map again to index it")

    # ------------------------------------------------------------ photos
    def add_photos(self, paths: list[str]) -> int:
        """List photos and queue them (they wait for the map when it is not indexed yet)."""
        added = [str(Path(p).resolve()) for p in paths]
        added = [p for p in added if self.results.add_photo(p, QUEUED if self.indexed else WAITING_FOR_MAP)]
        if not added:
            return 0
        if not set(map(photo_stem, added)) <= set(self.truths):
            self._load_truth(*added)
        if self.indexed:
            self._queue_photos(added)
        elif self.map_path is None:
            self.message_label.setText(f"{len(added)} photos wait for a map: drop a GeoTIFF")
        self._update_title()
        return len(added)

    def _queue_photos(self, paths: list[str]) -> None:
        for path in paths:
            self.results.set_state(path, QUEUED)
        self.engine.localize(paths)
        if paths:
            self._show_progress("Localising", 0, len(paths))

    def _on_photo_started(self, path: str, thumbnail, preview) -> None:
        self.results.set_state(path, RUNNING)
        self.results.set_images(path, thumbnail, preview)
        self.results_panel.refresh_images(path)
        queued = sum(1 for e in self.results.entries if e.result is None and e.state in (QUEUED, RUNNING))
        self.progress_label.setText(f"Localising {Path(path).name} ({queued} left)")

    def _on_photo_progress(self, path: str, stage: str, done: int, total: int) -> None:
        self.progress_bar.setRange(0, total)
        self.progress_bar.setValue(done)

    def _on_photo_finished(self, path: str, result: LocalizationResult) -> None:
        if self.results.row_of(path) < 0:
            return
        self.results.set_result(path, result)
        if not self.selected_photo and result.status == DONE:
            self.results_panel.select_photo(path)

    def _on_images_loaded(self, path: str, thumbnail, preview) -> None:
        self.results.set_images(path, thumbnail, preview)
        self.results_panel.refresh_images(path)

    def _on_engine_idle(self) -> None:
        if not any(e.state in (QUEUED, RUNNING) and e.result is None for e in self.results.entries):
            self.progress_widget.setVisible(False)
            done = sum(1 for e in self.results.entries if e.result is not None and e.result.status != FAILED)
            failed = sum(1 for e in self.results.entries if e.result is not None and e.result.status == FAILED)
            if self.results.entries and self.indexed:
                self.message_label.setText(f"{done} photos localised" + (f", {failed} failed" if failed else ""))

    def relocalize_selected(self) -> None:
        if self.selected_photo and self.indexed:
            self.results.set_result(self.selected_photo, None)
            self._queue_photos([self.selected_photo])

    def cancel_work(self) -> None:
        self.engine.cancel_indexing()
        self.engine.cancel_photos()

    def _show_progress(self, text: str, done: int, total: int) -> None:
        self.progress_widget.setVisible(True)
        self.progress_label.setText(text)
        self.progress_bar.setRange(0, max(total, 0))
        self.progress_bar.setValue(done)

    # ------------------------------------------------------------ selection and overlays
    def _on_photo_selected(self, path: str) -> None:
        self.selected_photo = path
        self.candidate_index = 0
        entry = self.results.entry(path) if path else None
        candidates = entry.result.candidates if entry is not None and entry.result is not None else []
        levels = max((len(c.attention) for c in candidates), default=0)
        self._set_level_choices(levels or 4)
        truth = self.truths.get(photo_stem(path)) if path else None
        self.results_panel.set_truth((truth.x, truth.y) if truth is not None else None)
        self._redraw()
        self.zoom_to_selected()

    def _on_candidate_selected(self, path: str, index: int) -> None:
        if path == self.selected_photo:
            self.candidate_index = index
            self._redraw_selection()

    def _on_result_changed(self, path: str) -> None:
        self.map_layers.draw_cameras(self.results.entries, self.selected_photo)
        if path == self.selected_photo:
            self._redraw_selection()
        self._update_title()

    def _redraw(self) -> None:
        self.map_layers.draw_cameras(self.results.entries, self.selected_photo)
        self.map_layers.draw_truth(self.truths, self.selected_photo)
        self._redraw_selection()

    def _redraw_selection(self) -> None:
        entry = self.results.entry(self.selected_photo) if self.selected_photo else None
        self.map_layers.draw_selection(entry, self.candidate_index)

    def _set_level_choices(self, count: int) -> None:
        current = max(self.level_combo.currentIndex(), 0)
        self.level_combo.blockSignals(True)
        self.level_combo.clear()
        for level in range(count):
            suffix = " (finest)" if level == 0 else " (coarsest)" if level == count - 1 else ""
            self.level_combo.addItem(f"Level {level}{suffix}")
        self.level_combo.setCurrentIndex(min(current, count - 1))
        self.level_combo.blockSignals(False)
        self.map_layers.heatmap_level = self.level_combo.currentIndex()

    def _on_level_changed(self, level: int) -> None:
        if level >= 0:
            self.map_layers.heatmap_level = level
            self.results_panel.set_heatmap_level(level)
            self._redraw_selection()

    def zoom_to_selected(self) -> None:
        entry = self.results.entry(self.selected_photo) if self.selected_photo else None
        best = entry.result.best if entry is not None and entry.result is not None else None
        if best is None:
            return
        x, y = best.position.x, best.position.y
        reach = 60.0
        if entry.result.candidates:
            left, bottom, right, top = entry.result.candidates[0].footprint.bounds
            reach = max(reach, right - left)
        self.canvas.zoom_to((x - reach, y - reach, x + reach, y + reach), padding=0.02)

    def _on_tile_read(self, channel: str, rgb, valid, bounds) -> None:
        if channel == PREVIEW_CHANNEL:
            self.results_panel.set_tile(rgb, bounds)

    # ------------------------------------------------------------ corrections
    def move_camera(self, photo: str, x: float, y: float) -> None:
        """A marker was dragged to (x, y): record it as an undoable manual correction."""
        if self.map_crs is None or self.results.row_of(photo) < 0 or self.results.entry(photo).result is None:
            return
        lon, lat = map_to_lonlat(self.map_crs, x, y)
        self.undo_stack.push(MoveCameraCommand(self.results, photo, Position(x, y, float(lon), float(lat))))

    def _lonlat_to_map(self, lon: float, lat: float) -> tuple[float, float]:
        x, y = lonlat_to_map(self.map_crs, lon, lat)
        return float(x), float(y)

    # ------------------------------------------------------------ status bar
    def _on_cursor_moved(self, x: float, y: float) -> None:
        if self.map_crs is None:
            return
        lon, lat = map_to_lonlat(self.map_crs, x, y)
        lon, lat = float(lon), float(lat)
        crs = self.map_crs.to_string() if hasattr(self.map_crs, "to_string") else str(self.map_crs)
        if math.isfinite(lon) and math.isfinite(lat):
            self.cursor_label.setText(f"E {x:,.1f}  N {y:,.1f} ({crs})   {format_lonlat(lon, lat)}")

    def _on_model_loaded(self, description: str) -> None:
        freeze_long_lived_objects()
        self.model_label.setText(f"Model: {Path(self.model_path).name if self.model_path else 'default'}")
        self.model_label.setToolTip(description)

    # ------------------------------------------------------------ files
    def _last_folder(self) -> str:
        return QSettings().value("last_folder", str(Path.home()))

    def _remember_folder(self, path: str) -> None:
        QSettings().setValue("last_folder", str(Path(path).parent))

    def choose_map(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open map", self._last_folder(),
                                              "GeoTIFF maps (*.tif *.tiff *.vrt);;All files (*)")
        if path:
            self._remember_folder(path)
            self.open_map(path)

    def choose_photos(self) -> None:
        patterns = " ".join(f"*{s}" for s in PHOTO_SUFFIXES)
        paths, _ = QFileDialog.getOpenFileNames(self, "Add photos", self._last_folder(),
                                                f"Photos ({patterns});;All files (*)")
        if paths:
            self._remember_folder(paths[0])
            self.add_photos(paths)

    def choose_project(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open project", self._last_folder(),
                                              f"Viewfinder projects (*{PROJECT_SUFFIX})")
        if path:
            self._remember_folder(path)
            self.open_project(path)

    def choose_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Use model", self._last_folder(),
                                              "Viewfinder checkpoints (*.safetensors);;All files (*)")
        if path:
            self.use_model(path)

    def use_model(self, path: str) -> None:
        """Localise with another model: re-index the map, localise the uncorrected photos again."""
        self.model_path = str(path)
        self.engine.cancel_photos()
        self.engine.set_model(self.model_path)
        for entry in self.results.entries:
            if entry.result is None or entry.result.status != MANUAL:
                self.results.set_result(entry.path, None)
                self.results.set_state(entry.path, WAITING_FOR_MAP)
        self.undo_stack.clear()
        if self.map_path is not None:
            self.indexed = False
            self.engine.index_map(self.map_path)

    def choose_export(self, kind: str) -> None:
        filters = {"geojson": "GeoJSON (*.geojson)", "html": "HTML map (*.html)", "csv": "CSV table (*.csv)"}
        stem = Path(self.project_path).stem if self.project_path else "viewfinder-results"
        path, _ = QFileDialog.getSaveFileName(self, f"Export {kind.upper()}",
                                              str(Path(self._last_folder()) / f"{stem}.{kind}"), filters[kind])
        if path:
            self.export(kind, path)

    def export(self, kind: str, path: str) -> bool:
        """Write the results (corrections included) in a pool thread; export_finished/failed report back."""
        results = self.results.results()
        if not results:
            self._warn("Nothing to export", "No photo has a result yet.")
            return False
        if kind == "html":
            map_path = self.map_path
            job = lambda: write_results_html(results, map_path, path)
        else:
            writer = {"geojson": write_results_geojson, "csv": write_results_csv}[kind]
            job = lambda: writer(results, path)
        self.message_label.setText(f"Exporting {len(results)} results to {path}…")

        def finished(_written) -> None:
            self.message_label.setText(f"Exported {len(results)} results to {path}")
            self.export_finished.emit(path)

        def failed(reason: str) -> None:
            self._warn("Export failed", f"{path}: {reason}")
            self.export_failed.emit(path, reason)

        run_in_thread(job, finished, failed, self)
        return True

    def project(self) -> Project:
        return Project(map_path=self.map_path, photos=[e.path for e in self.results.entries],
                       results={e.path: e.result for e in self.results.entries if e.result is not None},
                       layers=self.map_layers.stack.settings(), view=self.canvas.view_bounds(),
                       model_path=self.model_path, selected_photo=self.selected_photo or None)

    def save_project(self) -> bool:
        if self.project_path is None:
            return self.save_project_as()
        return self.save_project_to(self.project_path)

    def save_project_as(self) -> bool:
        path, _ = QFileDialog.getSaveFileName(self, "Save project", self._last_folder(),
                                              f"Viewfinder projects (*{PROJECT_SUFFIX})")
        return self.save_project_to(path) if path else False

    def save_project_to(self, path: str) -> bool:
        try:
            written = save_project(self.project(), path)
        except OSError as exc:
            self._warn("Project not saved", f"{path}: {exc}")
            return False
        self.project_path = str(written)
        self.undo_stack.setClean()
        self.message_label.setText(f"Saved {written}")
        self._update_title()
        return True

    def open_project(self, path: str) -> bool:
        try:
            project = load_project(path)
        except ProjectError as exc:
            self._warn("Project not opened", str(exc))
            return False
        self.engine.cancel_photos()
        self.results_panel.table.clearSelection()
        self.results.clear()
        self.truths.clear()
        self.undo_stack.clear()
        self.selected_photo = ""
        if project.model_path and project.model_path != self.model_path:
            self.model_path = project.model_path
            self.engine.set_model(project.model_path)
        if project.map_path:
            self.open_map(project.map_path)
        for photo in project.photos:
            self.results.add_photo(photo, WAITING_FOR_MAP)
            if photo in project.results:
                self.results.set_result(photo, project.results[photo])
            self.image_loader.load(photo)
        self._load_truth(*project.photos)
        self.map_layers.stack.apply_settings(project.layers)
        if project.view is not None:
            self.canvas.zoom_to(project.view, padding=0.0)
        self.project_path = str(Path(path).resolve())
        self._redraw()
        if project.selected_photo and self.results.row_of(project.selected_photo) >= 0:
            self.results_panel.select_photo(project.selected_photo)
            if project.view is not None:
                self.canvas.zoom_to(project.view, padding=0.0)
        self._update_title()
        return True

    def open_paths(self, paths: list[str]) -> None:
        """What a drop or the command line hands over: maps, photos, folders, projects."""
        maps, photos, projects = classify_paths(paths)
        if projects:
            self.open_project(projects[0])
            return
        if maps:
            self.open_map(maps[-1])
        if photos:
            self.add_photos(photos)
        if not (maps or photos):
            self.message_label.setText("Nothing usable dropped: drop a GeoTIFF map, photos or a project file")

    # ------------------------------------------------------------ drag and drop
    def dragEnterEvent(self, event) -> None:  # noqa: N802 (Qt API)
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dragMoveEvent(self, event) -> None:  # noqa: N802 (Qt API)
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 (Qt API)
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.open_paths(paths)

    # ------------------------------------------------------------ dialogs and lifetime
    def show_training_dialog(self) -> None:
        from app.training_dialog import TrainingDialog
        if self.training_dialog is None:
            self.training_dialog = TrainingDialog(self)
            self.training_dialog.model_activated.connect(self.use_model)
        self.training_dialog.show()
        self.training_dialog.raise_()

    def show_about(self) -> None:
        QMessageBox.about(self, f"About {APP_NAME}",
                          f"<b>{APP_NAME}</b><br>Finds where a ground photo was taken on a georeferenced "
                          f"satellite map (CAFR cross-view retrieval).<br><br>Model: "
                          f"{self.engine.model_description or 'loading…'}")

    def _warn(self, title: str, text: str) -> None:
        """Status bar message plus a window-modal box that does not block the event loop."""
        self.statusBar().showMessage(f"{title}: {text}", 10000)
        box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    def _update_title(self) -> None:
        parts = [APP_NAME]
        if self.map_path:
            parts.append(Path(self.map_path).name)
        if self.project_path:
            parts.append(f"[{Path(self.project_path).name}]")
        title = " — ".join(parts)
        self.setWindowTitle(title + ("" if self.undo_stack.isClean() else " *"))

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt API)
        if self.ask_before_closing and not self.undo_stack.isClean():
            answer = QMessageBox.question(
                self, "Unsaved corrections", "Save the project with your corrections before closing?",
                QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
                | QMessageBox.StandardButton.Cancel)
            if answer == QMessageBox.StandardButton.Cancel or (
                    answer == QMessageBox.StandardButton.Save and not self.save_project()):
                event.ignore()
                return
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop workers and join their threads (idempotent)."""
        if self._shut_down:
            return
        self._shut_down = True
        self.undo_stack.cleanChanged.disconnect()
        if self.training_dialog is not None:
            self.training_dialog.stop()
        self.engine.stop()
        self.canvas.shutdown()
