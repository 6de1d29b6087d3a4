"""Scale bar and north arrow drawn over the map canvas in screen pixels."""
from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QWidget

NICE_STEPS = (1.0, 2.0, 2.5, 5.0)


def nice_length(max_metres: float) -> float:
    """The largest 1/2/2.5/5 x 10^n length not longer than `max_metres`."""
    if not math.isfinite(max_metres) or max_metres <= 0:
        return 0.0
    exponent = math.floor(math.log10(max_metres))
    best = 0.0
    for power in (exponent - 1, exponent):
        for step in NICE_STEPS:
            value = step * 10.0 ** power
            if value <= max_metres * (1 + 1e-9):
                best = max(best, value)
    return best


def format_length(metres: float) -> str:
    if metres >= 1000:
        km = metres / 1000
        return f"{km:g} km"
    if metres >= 1:
        return f"{metres:g} m"
    return f"{metres * 100:g} cm"


class ScaleBar(QWidget):
    """A two-segment black/white bar with its length, about `target_px` wide, at the canvas' bottom left."""

    def __init__(self, parent: QWidget, target_px: int = 120) -> None:
        super().__init__(parent)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.target_px = target_px
        self.metres_per_px = 0.0
        self.length_m = 0.0
        self.resize(target_px + 60, 34)

    def set_metres_per_px(self, metres_per_px: float) -> None:
        self.metres_per_px = metres_per_px
        self.length_m = nice_length(metres_per_px * self.target_px) if metres_per_px > 0 else 0.0
        self.update()

    @property
    def bar_px(self) -> float:
        return self.length_m / self.metres_per_px if self.metres_per_px > 0 else 0.0

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt API)
        if self.length_m <= 0:
            return
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        width = self.bar_px
        x0, y0, height = 8.0, 20.0, 6.0
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(255, 255, 255, 170))
        painter.drawRoundedRect(QRectF(2, 2, width + 12 + 40, 30), 4, 4)
        half = width / 2
        painter.setPen(QPen(QColor(20, 20, 20), 1))
        painter.setBrush(QColor(20, 20, 20))
        painter.drawRect(QRectF(x0, y0, half, height))
        painter.setBrush(QColor(250, 250, 250))
        painter.drawRect(QRectF(x0 + half, y0, half, height))
        font = QFont(painter.font())
        font.setPointSizeF(8.5)
        painter.setFont(font)
        painter.setPen(QColor(20, 20, 20))
        painter.drawText(QPointF(x0, y0 - 4), "0")
        label = format_length(self.length_m)
        label_width = painter.fontMetrics().horizontalAdvance(label)
        painter.drawText(QPointF(x0 + width - label_width / 2, y0 - 4), label)
        painter.end()


class NorthArrow(QWidget):
    """The canvas is always north up; the arrow says so."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.resize(28, 44)

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt API)
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        cx = self.width() / 2
        left, right = QPainterPath(), QPainterPath()
        left.moveTo(cx, 16)
        left.lineTo(cx - 8, 40)
        left.lineTo(cx, 34)
        left.closeSubpath()
        right.moveTo(cx, 16)
        right.lineTo(cx + 8, 40)
        right.lineTo(cx, 34)
        right.closeSubpath()
        outline = QPen(QColor(20, 20, 20), 1.2)
        painter.setPen(outline)
        painter.setBrush(QColor(20, 20, 20))
        painter.drawPath(left)
        painter.setBrush(QColor(255, 255, 255))
        painter.drawPath(right)
        font = QFont(painter.font())
        font.setBold(True)
        font.setPointSizeF(9)
        painter.setFont(font)
        painter.setPen(QColor(255, 255, 255))
        metrics = painter.fontMetrics()
        text_x = cx - metrics.horizontalAdvance("N") / 2
        for dx, dy in ((-1, 0), (1, 0), (0, -1), (0, 1)):   # halo keeps the N readable on any imagery
            painter.drawText(QPointF(text_x + dx, 12 + dy), "N")
        painter.setPen(QColor(20, 20, 20))
        painter.drawText(QPointF(text_x, 12), "N")
        painter.end()
