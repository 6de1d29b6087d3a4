"""The legend, QGIS style: under the layer list, one entry per visible layer that has something drawn.

Colour ramps (attention, pose probability, retrieval score) show their own colour map and range; CWR points
show the symbol of each attention level. Living in the layers dock, the legend never takes room from the map.
"""
from __future__ import annotations

import pyqtgraph as pg
from pyqtgraph.graphicsItems.ScatterPlotItem import renderSymbol
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QImage, QPixmap
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from app.map_layers import LegendEntry, MapLayers

RAMP_SIZE = (120, 10)


def ramp_pixmap(colormap: str, width: int = RAMP_SIZE[0], height: int = RAMP_SIZE[1]) -> QPixmap:
    lut = pg.colormap.get(colormap).getLookupTable(0.0, 1.0, width, alpha=False)
    image = QImage(width, height, QImage.Format.Format_RGB32)
    for x, (r, g, b) in enumerate(lut):
        colour = QColor(int(r), int(g), int(b)).rgb()
        for y in range(height):
            image.setPixel(x, y, colour)
    return QPixmap.fromImage(image)


def symbol_pixmap(symbol: str, colour: QColor, size: int = 12) -> QPixmap:
    return QPixmap.fromImage(renderSymbol(symbol, size, pg.mkPen("w", width=1.0), pg.mkBrush(colour)))


class LegendPanel(QWidget):
    def __init__(self, layers: MapLayers, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.layers = layers
        self.entries: list[LegendEntry] = []
        self._box = QVBoxLayout(self)
        self._box.setContentsMargins(2, 2, 2, 2)
        self._box.setSpacing(4)
        layers.drawn.connect(self.refresh)
        for layer in layers.stack.layers:
            layer.changed.connect(self.refresh)
        layers.stack.order_changed.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        while self._box.count():
            item = self._box.takeAt(0)
            widget = item.widget()
            if widget is not None:     # hidden now: a deferred delete would paint under the new one
                widget.hide()
                widget.setParent(None)
                widget.deleteLater()
        self.entries = self.layers.legend()
        for entry in self.entries:
            self._box.addWidget(self._entry_widget(entry))
        self.setVisible(bool(self.entries))

    def _entry_widget(self, entry: LegendEntry) -> QWidget:
        widget = QWidget()
        widget.setObjectName(f"legend-{entry.key}")
        layout = QVBoxLayout(widget)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(1)
        title = QLabel(entry.title)
        title.setStyleSheet("font-size: 11px; color: #3c4043;")
        layout.addWidget(title)
        if entry.colormap is not None:
            row = QHBoxLayout()
            ramp = QLabel()
            ramp.setPixmap(ramp_pixmap(entry.colormap))
            for text in (entry.low, None, entry.high):
                if text is None:
                    row.addWidget(ramp)
                    continue
                label = QLabel(text)
                label.setStyleSheet("font-size: 10px; color: #606368;")
                row.addWidget(label)
            row.addStretch(1)
            layout.addLayout(row)
        if entry.symbols:
            grid = QGridLayout()
            grid.setHorizontalSpacing(4)
            for i, (symbol, colour, text) in enumerate(entry.symbols):
                icon = QLabel()
                icon.setPixmap(symbol_pixmap(symbol, colour))
                label = QLabel(text)
                label.setStyleSheet("font-size: 10px; color: #606368;")
                grid.addWidget(icon, i // 2, 2 * (i % 2), Qt.AlignmentFlag.AlignLeft)
                grid.addWidget(label, i // 2, 2 * (i % 2) + 1, Qt.AlignmentFlag.AlignLeft)
            grid.setColumnStretch(4, 1)
            layout.addLayout(grid)
        return widget
