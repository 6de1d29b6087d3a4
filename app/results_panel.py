"""Results panel: the photo table, the selected photo's top-k candidates, and the photo beside its map tile
with the candidate's attention heatmap."""
from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import (
    QItemSelectionModel,
    QPointF,
    QRectF,
    QSignalBlocker,
    QSize,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QAction, QColor, QImage, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QSizePolicy,
    QSplitter,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.images import THUMBNAIL_SIZE
from app.overlays import HEATMAP_COLORMAP, colorize
from app.results_model import SORT_ROLE, ResultsModel

TILE_PREVIEW_PX = 256


def rgba_qimage(rgba: np.ndarray) -> QImage:
    rgba = np.ascontiguousarray(rgba)
    height, width = rgba.shape[:2]
    return QImage(rgba.data, width, height, 4 * width, QImage.Format.Format_RGBA8888).copy()


def rgb_qimage(rgb: np.ndarray) -> QImage:
    rgb = np.ascontiguousarray(rgb)
    height, width = rgb.shape[:2]
    return QImage(rgb.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()


class ScaledImageLabel(QLabel):
    """Shows an image fitted to the label, keeping its aspect."""

    def __init__(self, placeholder: str) -> None:
        super().__init__(placeholder)
        self.placeholder = placeholder
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(120, 90)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.setStyleSheet("QLabel { background: #202225; color: #9aa0a6; border-radius: 3px; }")
        self._image: QImage | None = None

    def set_image(self, image: QImage | None) -> None:
        self._image = image if image is not None and not image.isNull() else None
        self._refresh()

    def image(self) -> QImage | None:
        return self._image

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt API)
        super().resizeEvent(event)
        self._refresh()

    def _refresh(self) -> None:
        if self._image is None:
            self.setPixmap(QPixmap())
            self.setText(self.placeholder)
            return
        pixmap = QPixmap.fromImage(self._image)
        self.setPixmap(pixmap.scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio,
                                     Qt.TransformationMode.SmoothTransformation))


def compose_tile_preview(tile_rgb: np.ndarray, tile_bounds: tuple, heatmap, position_xy=None,
                         truth_xy=None) -> QImage:
    """The satellite tile with the attention grid over it (where the grid lies) and the camera positions."""
    image = rgb_qimage(tile_rgb)
    left, bottom, right, top = tile_bounds
    width, height = image.width(), image.height()
    sx, sy = width / (right - left), height / (top - bottom)

    def to_px(x: float, y: float) -> QPointF:
        return QPointF((x - left) * sx, (top - y) * sy)

    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    if heatmap is not None:
        rgba, _ = colorize(heatmap.values, HEATMAP_COLORMAP, alpha_ramp=True, max_alpha=200)
        g_left, g_bottom, g_right, g_top = heatmap.bounds()
        target = QRectF(to_px(g_left, g_top), to_px(g_right, g_bottom))
        painter.drawImage(target, rgba_qimage(rgba))
    for xy, colour in ((truth_xy, QColor(60, 220, 90)), (position_xy, QColor(255, 45, 85))):
        if xy is None:
            continue
        point = to_px(*xy)
        painter.setPen(QPen(QColor(255, 255, 255), 2.0))
        painter.setBrush(colour)
        painter.drawEllipse(point, 5.0, 5.0)
    painter.end()
    return image


class ResultsPanel(QWidget):
    photo_selected = Signal(str)              # photo path ("" when nothing is selected)
    candidate_selected = Signal(str, int)     # photo path, candidate index (0 = rank 1)
    tile_requested = Signal(object, object)   # bounds, (width, height): read the tile for the preview

    CANDIDATE_COLUMNS = ("Rank", "Score", "Tile heading", "From best")

    def __init__(self, model: ResultsModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(model)
        self.proxy.setSortRole(SORT_ROLE)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)      # listed order until a header is clicked
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setIconSize(QSize(THUMBNAIL_SIZE))
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(THUMBNAIL_SIZE.height() + 6)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(True)           # a failed row's reason wraps in its status cell
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(ResultsModel.STATUS, QHeaderView.ResizeMode.Stretch)
        header.setMinimumSectionSize(40)
        self.table.setColumnHidden(ResultsModel.SCORE, True)      # a similarity, not a probability: on demand
        header.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        for column, name in enumerate(ResultsModel.COLUMNS[1:], start=1):
            action = QAction(name, header, checkable=True)
            action.setChecked(not self.table.isColumnHidden(column))
            action.toggled.connect(lambda on, c=column: self.table.setColumnHidden(c, not on))
            header.addAction(action)

        self.candidates = QTableWidget(0, len(self.CANDIDATE_COLUMNS))
        self.candidates.setHorizontalHeaderLabels(self.CANDIDATE_COLUMNS)
        self.candidates.horizontalHeaderItem(2).setToolTip(
            "The fine head's heading inside this tile; the photo's reported heading is the table's")
        self.candidates.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.candidates.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.candidates.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.candidates.verticalHeader().setVisible(False)
        self.candidates.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.candidates.verticalHeader().setDefaultSectionSize(22)

        self.photo_view = ScaledImageLabel("Photo")
        self.tile_view = ScaledImageLabel("Satellite tile")
        self.tile_caption = QLabel("")
        self.tile_caption.setStyleSheet("color: #606368;")
        previews = QSplitter(Qt.Orientation.Horizontal)
        previews.addWidget(self.photo_view)
        previews.addWidget(self.tile_view)
        previews.setSizes([300, 220])
        preview_box = QWidget()
        preview_layout = QVBoxLayout(preview_box)
        preview_layout.setContentsMargins(0, 0, 0, 0)
        preview_layout.addWidget(previews, 1)
        preview_layout.addWidget(self.tile_caption)

        self.candidates_title = QLabel("Candidates")
        self.candidates_title.setStyleSheet("font-weight: 600;")
        candidate_box = QWidget()
        candidate_layout = QVBoxLayout(candidate_box)
        candidate_layout.setContentsMargins(0, 0, 0, 0)
        candidate_layout.addWidget(self.candidates_title)
        candidate_layout.addWidget(self.candidates)

        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.table)
        splitter.addWidget(candidate_box)
        splitter.addWidget(preview_box)
        splitter.setSizes([300, 150, 220])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(splitter)

        self.current_photo = ""
        self.current_candidate = 0
        self.heatmap_level = 0
        self.truth_xy: tuple[float, float] | None = None
        self._tile_rgb: np.ndarray | None = None
        self._tile_bounds: tuple | None = None
        self.table.selectionModel().selectionChanged.connect(self._on_photo_selection)
        self.candidates.itemSelectionChanged.connect(self._on_candidate_selection)
        model.result_changed.connect(self._on_result_changed)
        model.modelReset.connect(self._on_reset)

    def _on_reset(self) -> None:
        """The session's photo list changed: keep the selection when its photo is still listed."""
        self.table.resizeColumnToContents(ResultsModel.PHOTO)
        if self.current_photo and self.model.row_of(self.current_photo) >= 0:
            with QSignalBlocker(self.table.selectionModel()):
                self.select_photo(self.current_photo)
        elif self.current_photo:
            self.current_photo = ""
            self._fill_candidates()
            self._show_photo()
            self.tile_view.set_image(None)
            self.photo_selected.emit("")

    # ------------------------------------------------------------ selection
    def select_photo(self, path: str) -> None:
        row = self.model.row_of(path)
        if row >= 0:
            index = self.proxy.mapFromSource(self.model.index(row, 0))
            self.table.selectionModel().select(
                index, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows)
            self.table.scrollTo(index)

    def select_candidate(self, index: int) -> None:
        if 0 <= index < self.candidates.rowCount():
            self.candidates.selectRow(index)

    def _on_photo_selection(self, *args) -> None:
        rows = self.table.selectionModel().selectedRows()
        self.current_photo = self.model.entries[self.proxy.mapToSource(rows[0]).row()].path if rows else ""
        self.current_candidate = 0
        self._tile_rgb = None
        self._fill_candidates()
        self._show_photo()
        self.photo_selected.emit(self.current_photo)
        self._request_tile()

    def _on_candidate_selection(self) -> None:
        rows = self.candidates.selectionModel().selectedRows()
        if not rows or not self.current_photo:
            return
        index = rows[0].row()
        if index != self.current_candidate:
            self.current_candidate = index
            self._tile_rgb = None
            self._request_tile()
        self.candidate_selected.emit(self.current_photo, index)

    def _on_result_changed(self, path: str) -> None:
        if path == self.current_photo:
            keep = self.current_candidate
            self._fill_candidates()
            self.current_candidate = min(keep, max(0, self.candidates.rowCount() - 1))
            with QSignalBlocker(self.candidates):
                self.select_candidate(self.current_candidate)
            self._show_photo()
            self._redraw_tile()

    def refresh_images(self, path: str) -> None:
        if path == self.current_photo:
            self._show_photo()

    # ------------------------------------------------------------ content
    def _entry(self):
        return self.model.entry(self.current_photo) if self.current_photo and self.model.row_of(
            self.current_photo) >= 0 else None

    def _fill_candidates(self) -> None:
        entry = self._entry()
        result = entry.result if entry is not None else None
        candidates = result.candidates if result is not None else []
        best = result.best if result is not None else None
        with QSignalBlocker(self.candidates):
            self.candidates.setRowCount(len(candidates))
            for row, candidate in enumerate(candidates):
                distance = (math.hypot(candidate.position.x - best.position.x, candidate.position.y - best.position.y)
                            if best is not None else float("nan"))
                cells = (str(candidate.rank), f"{candidate.score:.3f}",
                         f"{candidate.heading_deg:.0f}°" if math.isfinite(candidate.heading_deg) else "–",
                         f"{distance:.0f} m" if math.isfinite(distance) else "–")
                for column, text in enumerate(cells):
                    item = QTableWidgetItem(text)
                    item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                    self.candidates.setItem(row, column, item)
            if candidates:
                self.candidates.selectRow(0)
        title = f"Candidates of {entry.name}" if entry is not None else "Candidates"
        self.candidates_title.setText(f"{title} ({len(candidates)})" if candidates else title)

    def _show_photo(self) -> None:
        entry = self._entry()
        self.photo_view.set_image(self.model.previews.get(entry.path) if entry is not None else None)

    def current_candidate_object(self):
        entry = self._entry()
        if entry is None or entry.result is None or not entry.result.candidates:
            return None
        return entry.result.candidates[min(self.current_candidate, len(entry.result.candidates) - 1)]

    def set_heatmap_level(self, level: int) -> None:
        self.heatmap_level = level
        self._redraw_tile()

    def set_truth(self, xy: tuple[float, float] | None) -> None:
        self.truth_xy = xy
        self._redraw_tile()

    def _request_tile(self) -> None:
        candidate = self.current_candidate_object()
        if candidate is None:
            self.tile_view.set_image(None)
            self.tile_caption.setText("")
            return
        self.tile_requested.emit(tuple(candidate.footprint.bounds), (TILE_PREVIEW_PX, TILE_PREVIEW_PX))

    def set_tile(self, rgb: np.ndarray, bounds: tuple) -> None:
        """The reader delivered the preview tile."""
        self._tile_rgb, self._tile_bounds = rgb, bounds
        self._redraw_tile()

    def _redraw_tile(self) -> None:
        candidate = self.current_candidate_object()
        if candidate is None or self._tile_rgb is None:
            return
        levels = candidate.attention
        heatmap = levels[min(self.heatmap_level, len(levels) - 1)] if levels else None
        entry = self._entry()
        best = entry.result.best if entry is not None and entry.result is not None else None
        position = (candidate.position.x, candidate.position.y) if candidate.rank != 1 or best is None \
            else (best.position.x, best.position.y)
        self.tile_view.set_image(compose_tile_preview(self._tile_rgb, self._tile_bounds, heatmap, position,
                                                      self.truth_xy))
        level_text = f", attention level {min(self.heatmap_level, len(levels) - 1)}" if levels else ""
        self.tile_caption.setText(f"Tile {candidate.tile_index} (rank {candidate.rank}){level_text}")
