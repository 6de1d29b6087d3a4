"""The session's photos as a Qt table (the attribute table): one row per photo, sortable by every column.

The rows are the session's records; this model only formats them and keeps the thumbnails (Qt images).
"""
from __future__ import annotations

import math

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QImage, QPixmap

from engine.pipeline import DONE, FAILED, MANUAL, LocalizationResult, Session
from engine.pipeline import session as vf

QUEUED, RUNNING, WAITING_FOR_MAP, CANCELLED = vf.QUEUED, vf.RUNNING, vf.WAITING, vf.CANCELLED
SORT_ROLE = Qt.ItemDataRole.UserRole + 1

STATUS_COLOURS = {DONE: QColor(46, 139, 87), FAILED: QColor(200, 50, 50), MANUAL: QColor(210, 120, 20),
                  QUEUED: QColor(120, 120, 120), RUNNING: QColor(40, 110, 200),
                  WAITING_FOR_MAP: QColor(120, 120, 120), CANCELLED: QColor(120, 120, 120)}
SCORE_TIP = "Retrieval score: cosine similarity of the photo's and the tile's descriptors (not a probability)."


def status_text(record: vf.PhotoRecord) -> str:
    if record.result is not None and record.result.status == FAILED:
        return f"failed: {record.result.error or 'unknown error'}"
    text = record.status
    if record.result is None and record.carried is not None:
        text += " (correction kept)"
    return text + (" ⚠" if record.flags or record.warnings else "")


def _format(value: float | None, digits: int, unit: str = "") -> str:
    return f"{value:.{digits}f}{unit}" if value is not None and math.isfinite(value) else "–"


class ResultsModel(QAbstractTableModel):
    COLUMNS = ("Photo", "Longitude", "Latitude", "Heading", "FoV", "Confidence", "Error (95 %)", "Score", "Status")
    PHOTO, LON, LAT, HEADING, FOV, CONFIDENCE, ERROR, SCORE, STATUS = range(9)

    result_changed = Signal(str)     # photo path whose result (or correction) changed

    def __init__(self, session: Session, parent=None) -> None:
        super().__init__(parent)
        self.session = session
        self.thumbnails: dict[str, QPixmap] = {}
        self.previews: dict[str, QImage] = {}
        session.on("photos", self._reset)
        session.on("photo", self._photo_changed)

    @property
    def entries(self) -> list[vf.PhotoRecord]:
        return self.session.photos

    # ------------------------------------------------------------ Qt model
    def rowCount(self, parent=None) -> int:  # noqa: N802 (Qt API)
        return 0 if parent is not None and parent.isValid() else len(self.entries)

    def columnCount(self, parent=None) -> int:  # noqa: N802 (Qt API)
        return 0 if parent is not None and parent.isValid() else len(self.COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802 (Qt API)
        if orientation != Qt.Orientation.Horizontal:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self.COLUMNS[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            return {self.CONFIDENCE: vf.CONFIDENCE_DEFINITION, self.SCORE: SCORE_TIP,
                    self.HEADING: "Compass heading of the camera (degrees clockwise from north), as on the map "
                                  "arrow and in the exports",
                    self.ERROR: "Radius of a circle as large as the 95 % credible region"}.get(section)
        return None

    def _values(self, record: vf.PhotoRecord) -> tuple:
        """(display, sort) per column."""
        result = record.result
        best = result.best if result is not None and result.status != FAILED else None
        heading = vf.heading_of(result) if best is not None else float("nan")
        confidence = vf.confidence_of(result)
        error = vf.error_radius_of(result)
        fov = result.fov_deg if result is not None else None
        return (
            (record.name, record.name.lower()),
            (_format(best.position.lon, 6) if best else "–", best.position.lon if best else math.inf),
            (_format(best.position.lat, 6) if best else "–", best.position.lat if best else math.inf),
            (_format(heading, 1, "°"), heading if math.isfinite(heading) else math.inf),
            (_format(fov, 0, "°"), fov if fov is not None else math.inf),
            (vf.confidence_text(result), confidence if confidence is not None else -1.0),
            (_format(error, 0, " m"), error if math.isfinite(error) else math.inf),
            (_format(best.score, 3) if best else "–", best.score if best and math.isfinite(best.score) else -math.inf),
            (status_text(record), record.status),
        )

    def data(self, index: QModelIndex | QPersistentModelIndex, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        record = self.entries[index.row()]
        column = index.column()
        if role in (Qt.ItemDataRole.DisplayRole, SORT_ROLE):
            return self._values(record)[column][0 if role == Qt.ItemDataRole.DisplayRole else 1]
        if role == Qt.ItemDataRole.DecorationRole and column == self.PHOTO:
            return self.thumbnails.get(record.path)
        if role == Qt.ItemDataRole.ForegroundRole and column == self.STATUS:
            return QBrush(STATUS_COLOURS.get(record.status, QColor(0, 0, 0)))
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(record, column)
        if role == Qt.ItemDataRole.TextAlignmentRole and self.LON <= column < self.STATUS:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _tooltip(self, record: vf.PhotoRecord, column: int) -> str | None:
        if column == self.PHOTO:
            return record.path
        if column == self.STATUS:
            return "\n".join([status_text(record), *record.flags, *record.warnings])
        if column == self.CONFIDENCE:
            return vf.confidence_tooltip(record.result)
        if column == self.SCORE:
            return SCORE_TIP
        best = record.result.best if record.result is not None else None
        return f"x {best.position.x:.1f}  y {best.position.y:.1f} (map CRS)" if best is not None else None

    # ------------------------------------------------------------ rows
    def row_of(self, path: str) -> int:
        for row, record in enumerate(self.entries):
            if record.path == path:
                return row
        return -1

    def entry(self, path: str) -> vf.PhotoRecord:
        return self.session.record(path)

    def results(self) -> list[LocalizationResult]:
        return self.session.results()

    def set_images(self, path: str, thumbnail: QImage | None, preview: QImage | None) -> None:
        if thumbnail is not None and not thumbnail.isNull():
            self.thumbnails[path] = QPixmap.fromImage(thumbnail)
        if preview is not None and not preview.isNull():
            self.previews[path] = preview
        row = self.row_of(path)
        if row >= 0:
            self._row_changed(row)

    def _reset(self) -> None:
        self.beginResetModel()
        listed = {record.path for record in self.entries}
        self.thumbnails = {p: v for p, v in self.thumbnails.items() if p in listed}
        self.previews = {p: v for p, v in self.previews.items() if p in listed}
        self.endResetModel()

    def _photo_changed(self, path: str) -> None:
        row = self.row_of(path)
        if row >= 0:
            self._row_changed(row)
            self.result_changed.emit(path)

    def _row_changed(self, row: int) -> None:
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(self.COLUMNS) - 1))
