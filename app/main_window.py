"""The main window: a view of the session (engine.pipeline.Session). Map canvas, layers and legend, the
attribute table of results, identify, status bar, drag and drop.

State and rules live in the session; engine work goes through app.controller to the engine process. This
class only draws what the session says and forwards what the analyst does.
"""
from __future__ import annotations

import gc
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QComboBox, QDockWidget, QHBoxLayout, QLabel, QMainWindow, QMessageBox

from app.actions import build_actions, update_history_actions
from app.controller import SessionController, classify_paths  # noqa: F401 (classify_paths: part of the API)
from app.dialogs import ask_index_anyway, ask_new_map, warn
from app.file_dialogs import FileDialogs
from app.identify import IdentifyPanel
from app.layers import LayersPanel
from app.legend import LegendPanel
from app.map_canvas import MapCanvas
from app.map_layers import MapLayers
from app.region_chooser import ask_cut_into_regions, choose_region
from app.results_model import ResultsModel
from app.results_panel import ResultsPanel
from app.selection import Selection
from app.status_bar import StatusBar
from app.workers import EngineWorker
from engine.pipeline import Session, lonlat_to_map, map_to_lonlat
from engine.pipeline import session as vf

APP_NAME = "Viewfinder"
COMPACT_WIDTH = 1200          # below this the docks share one column and the status bar drops map coordinates


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
        self.training_dialog = None
        self.question_box: QMessageBox | None = None
        self.region_chooser = None              # the open RegionChooser (tests pick a region in it)

        self.session = Session(str(model_source) if isinstance(model_source, (str, Path)) else None)
        self.engine = EngineWorker(model_source, device, localizer_config, self)
        self.controller = SessionController(self.session, self.engine, self)
        self.canvas = MapCanvas()
        self.setCentralWidget(self.canvas)
        self.map_layers = MapLayers(self.canvas.getPlotItem(), self._lonlat_to_map)
        self.results = ResultsModel(self.session, self)
        self.results_panel = ResultsPanel(self.results)
        self.identify_panel = IdentifyPanel()
        self.layers_panel = LayersPanel(self.map_layers.stack)
        self.legend = LegendPanel(self.map_layers)
        self.level_combo = QComboBox()
        self.level_combo.setToolTip("Attention level of the heatmap: 0 is the finest")
        level_row = QHBoxLayout()
        level_row.addWidget(QLabel("Heatmap level"))
        level_row.addWidget(self.level_combo, 1)
        self.layers_panel.extra.addLayout(level_row)
        self.layers_panel.extra.addWidget(self.legend)
        self.selection = Selection(self, self.session)
        self.selection.set_level_choices(4)
        self.files = FileDialogs(self, lambda: str(Path(self.session.map.path).parent) if self.session.map else None)

        self._build_docks()
        self.status = StatusBar(self.statusBar())
        self.message_label, self.cursor_label = self.status.message_label, self.status.cursor_label
        self.progress_widget, self.cancel_button = self.status.progress_widget, self.status.cancel_button
        self.model_label = self.status.model_label
        build_actions(self)
        self._connect()
        update_history_actions(self)
        self.engine.start()
        freeze_long_lived_objects()

    # ------------------------------------------------------------ session state, read-only views
    @property
    def indexed(self) -> bool:
        return self.session.indexed

    @property
    def truths(self) -> dict:
        return self.session.truth

    @property
    def map_crs(self) -> str | None:
        return self.session.map.crs if self.session.map else None

    @property
    def map_path(self) -> str | None:
        return self.session.map.path if self.session.map else None

    @property
    def model_path(self) -> str | None:
        return self.session.model_path

    # ------------------------------------------------------------ construction
    def _build_docks(self) -> None:
        def dock(title: str, name: str, widget, area) -> QDockWidget:
            d = QDockWidget(title, self)
            d.setObjectName(name)
            d.setWidget(widget)
            self.addDockWidget(area, d)
            return d
        left, right = Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea
        self.layers_dock = dock("Layers", "layers", self.layers_panel, left)
        self.results_dock = dock("Results", "results", self.results_panel, right)
        self.identify_dock = dock("Identify", "identify", self.identify_panel, right)
        self.tabifyDockWidget(self.results_dock, self.identify_dock)
        self.results_dock.raise_()
        self.compact = False
        self._fit_docks()

    def _connect(self) -> None:
        s, c = self.session, self.controller
        s.on("map", self._on_map)
        s.on("history", lambda: (update_history_actions(self), self._update_title()))
        s.on("saved", lambda path: self._update_title())
        c.message.connect(self.message_label.setText)
        c.warning.connect(self._warn)
        c.progress.connect(self.status.show_progress)
        c.progress_finished.connect(self.status.hide_progress)
        c.map_indexed.connect(self._on_indexed)
        c.question.connect(self._ask_new_map)
        c.index_refused.connect(self._ask_index_anyway)
        c.regions_offered.connect(self._ask_cut_into_regions)
        c.regions_folder_needed.connect(self._ask_regions_folder)
        c.regions_ready.connect(self._choose_region)
        c.project_restored.connect(self._apply_view)
        c.export_finished.connect(lambda summary: self.export_finished.emit(summary.path))
        c.export_failed.connect(self.export_failed)
        c.images_ready.connect(self._on_images)
        self.engine.model_loaded.connect(self._on_model_loaded)
        self.engine.model_failed.connect(lambda reason: self._warn("Model could not be loaded", reason))
        self.engine.crashed.connect(lambda reason: self._warn("The engine stopped", reason))
        self.cancel_button.clicked.connect(c.cancel)
        self.canvas.cursor_moved.connect(self._on_cursor_moved)
        self.canvas.left_view.connect(lambda: self.cursor_label.setText(""))
        self.canvas.map_failed.connect(lambda reason: self._warn("Map could not be read", reason))
        self.results.result_changed.connect(lambda _path: self._update_title())
        self.map_layers.marker_moved.connect(self.move_camera)

    # ------------------------------------------------------------ map and photos (the controller does the work)
    def open_map(self, path: str) -> None:
        self.controller.open_map(path)

    def add_photos(self, paths: list[str]) -> int:
        return self.controller.add_photos(paths)

    def open_paths(self, paths: list[str]) -> None:
        self.controller.open_paths(paths)

    def open_project(self, path: str) -> bool:
        return self.controller.open_project(path)

    def use_model(self, path: str) -> None:
        self.controller.use_model(path)

    def export(self, kind: str, path: str) -> bool:
        return self.controller.export(kind, path)

    def relocalize_selected(self) -> None:
        self.controller.relocalize(self.selected_photo)

    def _ask_index_anyway(self, path: str, reasons: str) -> None:
        self.question_box = ask_index_anyway(self, path, reasons,
                                             lambda yes: yes and self.controller.index_anyway(path))

    def _ask_new_map(self, plan: vf.NewMapPlan) -> None:
        self.question_box = ask_new_map(self, plan, lambda choice: self.controller.answer_new_map(plan, choice))

    def _ask_cut_into_regions(self, offer) -> None:
        def answer(yes: bool) -> None:
            if yes:
                self.controller.cut_into_regions(offer)
            else:
                self.controller.decline_regions(offer)
        self.question_box = ask_cut_into_regions(self, offer, answer)

    def _ask_regions_folder(self, offer, unwritable: str) -> None:
        folder = self.files.choose_folder(f"{unwritable} is not writable: choose a folder for the regions of "
                                          f"{offer.name}")
        if folder:
            self.controller.cut_into_regions(offer, folder)
        else:
            self.controller.decline_regions(offer)

    def _choose_region(self, offer, regions, photo_counts) -> None:
        def answer(vrt: str | None) -> None:
            if vrt:
                self.controller.open_region(offer, vrt)
            else:
                self.controller.decline_regions(offer, written=True)
        self.region_chooser = choose_region(self, offer, regions, photo_counts, answer)

    def _on_map(self, info: vf.MapInfo) -> None:
        self.map_layers.map_bounds = info.bounds
        self.canvas.set_map(info.path, info.bounds, info.metres_per_px, self.map_layers["satellite"])
        self._update_title()

    def _on_indexed(self, summary) -> None:
        self.map_indexed.emit(summary)

    def _on_images(self, path: str, thumbnail, preview) -> None:
        self.results.set_images(path, thumbnail, preview)
        self.results_panel.refresh_images(path)

    def move_camera(self, photo: str, x: float, y: float) -> None:
        """A marker was dragged to (x, y): an undoable correction (off the map: the marker goes back)."""
        if not self.session.correct(photo, x, y):
            self._redraw()
            self.message_label.setText("A camera can only be moved onto the map")

    def _lonlat_to_map(self, lon: float, lat: float) -> tuple[float, float]:
        x, y = lonlat_to_map(self.map_crs, lon, lat)
        return float(x), float(y)

    # ------------------------------------------------------------ selection (app.selection draws it)
    @property
    def selected_photo(self) -> str:
        return self.selection.photo

    @property
    def candidate_index(self) -> int:
        return self.selection.candidate_index

    def zoom_to_selected(self) -> None:
        self.selection.zoom_to_selected()

    def _redraw(self, *_args) -> None:
        self.selection.redraw()

    # ------------------------------------------------------------ status bar
    def _on_cursor_moved(self, x: float, y: float) -> None:
        if self.map_crs is not None:
            lon, lat = map_to_lonlat(self.map_crs, x, y)
            self.status.show_cursor(x, y, float(lon), float(lat), self.map_crs, self.compact)

    def _on_model_loaded(self, description: str) -> None:
        freeze_long_lived_objects()
        self.model_label.setText(f"Model: {Path(self.model_path).name if self.model_path else 'default'}")
        self.model_label.setToolTip(description)

    # ------------------------------------------------------------ files
    def choose_map(self) -> None:
        path = self.files.open_file("Open map", "map")
        if path:
            self.open_map(path)

    def choose_photos(self) -> None:
        paths = self.files.open_files("Add photos", "photos")
        if paths:
            self.add_photos(paths)

    def choose_project(self) -> None:
        path = self.files.open_file("Open project", "project")
        if path:
            self.open_project(path)

    def choose_model(self) -> None:
        path = self.files.open_file("Use model", "model")
        if path:
            self.use_model(path)

    def choose_export(self, kind: str) -> None:
        stem = Path(self.session.project_path).stem if self.session.project_path else "viewfinder-results"
        path = self.files.save_file(f"Export {kind.upper()}", kind, f"{stem}.{kind}")
        if path:
            self.export(kind, path)

    def save_project(self) -> bool:
        if self.session.project_path is None:
            return self.save_project_as()
        return self.save_project_to(self.session.project_path)

    def save_project_as(self) -> bool:
        path = self.files.save_file("Save project", "project", "session" + vf.PROJECT_SUFFIX)
        return self.save_project_to(path) if path else False

    def save_project_to(self, path: str) -> bool:
        view = {"layers": self.map_layers.stack.settings(), "view": self.canvas.view_bounds(),
                "selected_photo": self.selected_photo or None}
        try:
            written = self.session.save(path, view)
        except OSError as exc:
            self._warn("Project not saved", f"{path}: {exc}")
            return False
        self.message_label.setText(f"Saved {written}")
        return True

    def _apply_view(self, view: dict) -> None:
        self.map_layers.stack.apply_settings(view.get("layers") or {})
        self._redraw()
        selected = view.get("selected_photo")
        if selected and self.session.has(selected):
            self.results_panel.select_photo(selected)
        if view.get("view") is not None:
            self.canvas.zoom_to(view["view"], padding=0.0)
        self._update_title()

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

    # ------------------------------------------------------------ layout, dialogs and lifetime
    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt API)
        super().resizeEvent(event)
        self._fit_docks()

    def _fit_docks(self) -> None:
        """Keep the map first: narrow windows put all docks in one right-hand column of limited width."""
        width = self.width()
        compact = width < COMPACT_WIDTH
        if compact != self.compact:
            self.compact = compact
            if compact:
                self.tabifyDockWidget(self.results_dock, self.layers_dock)
            else:
                self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.layers_dock)
            self.results_dock.raise_()
        docks = [self.results_dock] if compact else [self.layers_dock, self.results_dock]
        sizes = [int(min(max(0.34 * width, 260), 420))] if compact else [
            int(min(max(0.16 * width, 200), 270)), int(min(max(0.32 * width, 320), 680))]
        self.resizeDocks(docks, sizes, Qt.Orientation.Horizontal)

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
                          f"satellite map.<br><br>{vf.CONFIDENCE_DEFINITION}<br><br>Model: "
                          f"{self.engine.model_description or 'loading…'}")

    def _warn(self, title: str, text: str) -> None:
        """Status bar message plus a window-modal box that does not block the event loop."""
        self.statusBar().showMessage(f"{title}: {text}", 10000)
        warn(self, title, text)

    def _update_title(self) -> None:
        parts = [APP_NAME] + ([Path(self.map_path).name] if self.map_path else [])
        if self.session.project_path:
            parts.append(f"[{Path(self.session.project_path).name}]")
        self.setWindowTitle(" — ".join(parts) + (" *" if self.session.unsaved_corrections else ""))

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt API)
        if self.ask_before_closing and self.session.unsaved_corrections:
            answer = QMessageBox.question(
                self, "Unsaved corrections", "Save the project with your corrections before closing?",
                QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
                | QMessageBox.StandardButton.Cancel)
            if answer == QMessageBox.StandardButton.Cancel or (
                    answer == QMessageBox.StandardButton.Save and not self.save_project()):
                event.ignore()
                return
        QSettings().setValue("window_geometry", self.saveGeometry())
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop workers and join their threads (idempotent)."""
        if self._shut_down:
            return
        self._shut_down = True
        if self.training_dialog is not None:
            self.training_dialog.stop()
        self.engine.stop()
        self.canvas.shutdown()
