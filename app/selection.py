"""The selected photo and candidate: which overlays the map draws, what identify shows, where the view goes."""
from __future__ import annotations

from PySide6.QtCore import QObject

from engine.pipeline import FAILED, Session

PREVIEW_CHANNEL = "preview"


class Selection(QObject):
    def __init__(self, window, session: Session) -> None:
        super().__init__(window)
        self.window = window
        self.session = session
        self.photo = ""
        self.candidate_index = 0
        w = window
        w.results_panel.photo_selected.connect(self.select)
        w.results_panel.candidate_selected.connect(self._on_candidate_selected)
        w.results_panel.tile_requested.connect(
            lambda bounds, size: w.canvas.request_read(PREVIEW_CHANNEL, bounds, size))
        w.canvas.tile_read.connect(self._on_tile_read)
        w.results.result_changed.connect(self._on_result_changed)
        w.map_layers.marker_clicked.connect(self.identify)
        w.level_combo.currentIndexChanged.connect(self._on_level_changed)
        session.on("photos", self.redraw)
        session.on("truth", self.redraw)

    def record(self):
        return self.session.record(self.photo) if self.photo and self.session.has(self.photo) else None

    def select(self, path: str) -> None:
        self.photo = path
        self.candidate_index = 0
        record = self.record()
        candidates = record.result.candidates if record is not None and record.result is not None else []
        self.set_level_choices(max((len(c.attention) for c in candidates), default=0) or 4)
        truth = self.session.truth_for(path) if path else None
        self.window.results_panel.set_truth((truth.x, truth.y) if truth is not None else None)
        self.window.identify_panel.show_record(record)
        self.redraw()
        self.zoom_to_selected()

    def identify(self, path: str) -> None:
        """A camera was clicked: select its row and show what is known about it."""
        self.window.results_panel.select_photo(path)
        self.window.identify_dock.show()
        self.window.identify_dock.raise_()

    def _on_candidate_selected(self, path: str, index: int) -> None:
        if path == self.photo:
            self.candidate_index = index
            self.redraw_selection()

    def _on_result_changed(self, path: str) -> None:
        self.window.map_layers.draw_cameras(self.session.photos, self.photo)
        if path == self.photo:
            self.window.identify_panel.show_record(self.record())
            self.redraw_selection()

    def redraw(self, *_args) -> None:
        layers = self.window.map_layers
        layers.draw_cameras(self.session.photos, self.photo)
        layers.draw_truth(self.session.truth, self.photo)
        self.redraw_selection()

    def redraw_selection(self) -> None:
        self.window.map_layers.draw_selection(self.record(), self.candidate_index)

    def set_level_choices(self, count: int) -> None:
        combo = self.window.level_combo
        current = max(combo.currentIndex(), 0)
        combo.blockSignals(True)
        combo.clear()
        for level in range(count):
            suffix = " (finest)" if level == 0 else " (coarsest)" if level == count - 1 else ""
            combo.addItem(f"Level {level}{suffix}")
        combo.setCurrentIndex(min(current, count - 1))
        combo.blockSignals(False)
        self.window.map_layers.heatmap_level = combo.currentIndex()

    def _on_level_changed(self, level: int) -> None:
        if level >= 0:
            self.window.map_layers.heatmap_level = level
            self.window.results_panel.set_heatmap_level(level)
            self.redraw_selection()

    def zoom_to_selected(self) -> None:
        """Zoom to the selected photo's position (a failed photo has none: the view stays where it is)."""
        record = self.record()
        result = record.result if record is not None else None
        best = result.best if result is not None and result.status != FAILED else None
        if best is None:
            return
        x, y = best.position.x, best.position.y
        reach = 60.0
        if result.candidates:
            left, bottom, right, top = result.candidates[0].footprint.bounds
            reach = max(reach, right - left)
        self.window.canvas.zoom_to((x - reach, y - reach, x + reach, y + reach), padding=0.02)

    def _on_tile_read(self, channel: str, rgb, valid, bounds) -> None:
        if channel == PREVIEW_CHANNEL:
            self.window.results_panel.set_tile(rgb, bounds)
