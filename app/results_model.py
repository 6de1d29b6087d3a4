"""The photos of a session and their localisation results, as a Qt table model (one row per photo)."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QImage, QPixmap

from engine.pipeline import DONE, FAILED, MANUAL, LocalizationResult

QUEUED, RUNNING, WAITING_FOR_MAP, CANCELLED = "queued", "localising", "waiting for map", "cancelled"

STATUS_COLOURS = {DONE: QColor(46, 139, 87), FAILED: QColor(200, 50, 50), MANUAL: QColor(210, 120, 20),
                  QUEUED: QColor(120, 120, 120), RUNNING: QColor(40, 110, 200),
                  WAITING_FOR_MAP: QColor(120, 120, 120), CANCELLED: QColor(120, 120, 120)}


@dataclass
class PhotoEntry:
    path: str
    state: str = QUEUED                    # queued / localising / waiting for map until a result arrives
    result: LocalizationResult | None = None
    thumbnail: QPixmap | None = None
    preview: QImage | None = None

    @property
    def name(self) -> str:
        return os.path.basename(self.path)

    @property
    def status(self) -> str:
        return self.result.status if self.result is not None else self.state


def status_text(entry: PhotoEntry) -> str:
    if entry.result is not None and entry.result.status == FAILED:
        return f"failed: {entry.result.error or 'unknown error'}"
    return entry.status


def _format_number(value: float | None, digits: int) -> str:
    return f"{value:.{digits}f}" if value is not None and math.isfinite(value) else "–"


class ResultsModel(QAbstractTableModel):
    COLUMNS = ("Photo", "Status", "Longitude", "Latitude", "Score", "Confidence")
    PHOTO, STATUS, LON, LAT, SCORE, CONFIDENCE = range(6)

    result_changed = Signal(str)     # photo path whose result (or correction) changed

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.entries: list[PhotoEntry] = []

    # ------------------------------------------------------------ Qt model
    def rowCount(self, parent=None) -> int:  # noqa: N802 (Qt API)
        return 0 if parent is not None and parent.isValid() else len(self.entries)

    def columnCount(self, parent=None) -> int:  # noqa: N802 (Qt API)
        return 0 if parent is not None and parent.isValid() else len(self.COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802 (Qt API)
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.COLUMNS[section]
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        entry = self.entries[index.row()]
        column = index.column()
        best = entry.result.best if entry.result is not None else None
        if role == Qt.ItemDataRole.DisplayRole:
            if column == self.PHOTO:
                return entry.name
            if column == self.STATUS:
                return status_text(entry)
            if best is None:
                return "–" if column != self.PHOTO else None
            if column == self.LON:
                return _format_number(best.position.lon, 6)
            if column == self.LAT:
                return _format_number(best.position.lat, 6)
            if column == self.SCORE:
                return _format_number(best.score, 3)
            if column == self.CONFIDENCE:
                return _format_number(best.confidence, 2)
        if role == Qt.ItemDataRole.DecorationRole and column == self.PHOTO:
            return entry.thumbnail
        if role == Qt.ItemDataRole.ForegroundRole and column == self.STATUS:
            return QBrush(STATUS_COLOURS.get(entry.status, QColor(0, 0, 0)))
        if role == Qt.ItemDataRole.ToolTipRole:
            if column == self.STATUS:
                return status_text(entry)
            if column == self.PHOTO:
                return entry.path
            if best is not None:
                return f"x {best.position.x:.1f}  y {best.position.y:.1f} (map CRS)"
        if role == Qt.ItemDataRole.TextAlignmentRole and column >= self.LON:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    # ------------------------------------------------------------ entries
    def row_of(self, path: str) -> int:
        for row, entry in enumerate(self.entries):
            if entry.path == path:
                return row
        return -1

    def entry(self, path: str) -> PhotoEntry:
        row = self.row_of(path)
        if row < 0:
            raise KeyError(path)
        return self.entries[row]

    def add_photo(self, path: str, state: str = QUEUED) -> bool:
        """Add a row; False when the photo is already listed."""
        if self.row_of(path) >= 0:
            return False
        row = len(self.entries)
        self.beginInsertRows(QModelIndex(), row, row)
        self.entries.append(PhotoEntry(path, state))
        self.endInsertRows()
        return True

    def clear(self) -> None:
        self.beginResetModel()
        self.entries.clear()
        self.endResetModel()

    def set_state(self, path: str, state: str) -> None:
        row = self.row_of(path)
        if row >= 0:
            self.entries[row].state = state
            self._row_changed(row)

    def set_result(self, path: str, result: LocalizationResult | None) -> None:
        """Store a result (also how corrections and their undo land here)."""
        row = self.row_of(path)
        if row < 0:
            raise KeyError(path)
        self.entries[row].result = result
        self._row_changed(row)
        self.result_changed.emit(path)

    def set_images(self, path: str, thumbnail: QImage | None, preview: QImage | None) -> None:
        row = self.row_of(path)
        if row < 0:
            return
        entry = self.entries[row]
        if thumbnail is not None and not thumbnail.isNull():
            entry.thumbnail = QPixmap.fromImage(thumbnail)
        if preview is not None and not preview.isNull():
            entry.preview = preview
        self._row_changed(row)

    def results(self) -> list[LocalizationResult]:
        return [entry.result for entry in self.entries if entry.result is not None]

    def _row_changed(self, row: int) -> None:
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(self.COLUMNS) - 1))
