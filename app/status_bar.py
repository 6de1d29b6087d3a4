"""The status bar: message, progress with cancel, cursor position (map CRS and lon/lat), model in use."""
from __future__ import annotations

import math

from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QStatusBar, QStyle, QToolButton, QWidget


def format_lonlat(lon: float, lat: float) -> str:
    return f"{abs(lat):.6f}°{'N' if lat >= 0 else 'S'}  {abs(lon):.6f}°{'E' if lon >= 0 else 'W'}"


class StatusBar:
    def __init__(self, bar: QStatusBar) -> None:
        self.bar = bar
        self.message_label = QLabel("Drop a GeoTIFF map, then photos")
        self.message_label.setMinimumWidth(80)
        self.cursor_label = QLabel("")
        self.model_label = QLabel("")
        self.model_label.setStyleSheet("color: #606368;")
        self.progress_label = QLabel("")
        self.progress_bar = QProgressBar()
        self.progress_bar.setFixedWidth(150)
        self.progress_bar.setTextVisible(True)
        self.cancel_button = QToolButton()
        self.cancel_button.setIcon(bar.style().standardIcon(QStyle.StandardPixmap.SP_DialogCancelButton))
        self.cancel_button.setToolTip("Cancel indexing and localisation")
        self.progress_widget = QWidget()
        layout = QHBoxLayout(self.progress_widget)
        layout.setContentsMargins(0, 0, 0, 0)
        for widget in (self.progress_label, self.progress_bar, self.cancel_button):
            layout.addWidget(widget)
        self.progress_widget.setVisible(False)
        bar.addWidget(self.message_label, 1)
        bar.addPermanentWidget(self.progress_widget)
        bar.addPermanentWidget(self.cursor_label)
        bar.addPermanentWidget(self.model_label)

    def show_progress(self, text: str, done: int, total: int) -> None:
        self.progress_widget.setVisible(True)
        self.progress_label.setText(text)
        self.progress_bar.setRange(0, max(total, 0))
        self.progress_bar.setValue(done)

    def hide_progress(self) -> None:
        self.progress_widget.setVisible(False)

    def show_cursor(self, x: float, y: float, lon: float, lat: float, crs: str, compact: bool) -> None:
        if math.isfinite(lon) and math.isfinite(lat):
            where = format_lonlat(lon, lat)
            self.cursor_label.setText(where if compact else f"E {x:,.1f}  N {y:,.1f} ({crs})   {where}")
