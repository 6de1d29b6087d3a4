"""Graphics items that draw result objects on the map: polygons, points, camera markers, georeferenced grids.

Everything is placed in map CRS coordinates (y up); markers keep a constant screen size.
"""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QPainter, QPainterPath, QPen, QTransform
from PySide6.QtWidgets import QGraphicsEllipseItem, QGraphicsItem, QGraphicsPathItem

HEATMAP_COLORMAP = "inferno"
SCORE_COLORMAP = "viridis"
POSE_COLORMAP = "plasma"
ALPHA_FLOOR = 0.3


def affine_to_qtransform(transform) -> QTransform:
    """Rasterio-style affine (pixel corners -> map) as the Qt transform of an image item."""
    a, b, c, d, e, f = list(transform)[:6]
    return QTransform(a, d, b, e, c, f)


def geometry_path(geometry) -> QPainterPath:
    """A shapely (multi)polygon or collection as a painter path with holes (odd-even fill)."""
    path = QPainterPath()
    path.setFillRule(Qt.FillRule.OddEvenFill)
    if geometry is None or geometry.is_empty:
        return path
    parts = getattr(geometry, "geoms", [geometry])
    for part in parts:
        if part.geom_type == "Polygon":
            for ring in (part.exterior, *part.interiors):
                _add_ring(path, np.asarray(ring.coords))
        elif part.geom_type in ("MultiPolygon", "GeometryCollection"):
            path.addPath(geometry_path(part))
    return path


def _add_ring(path: QPainterPath, coords: np.ndarray) -> None:
    if len(coords) < 3:
        return
    path.moveTo(QPointF(*coords[0][:2]))
    for x, y in coords[1:, :2]:
        path.lineTo(QPointF(x, y))
    path.closeSubpath()


def cosmetic_pen(color: QColor | str, width: float = 1.5, style=Qt.PenStyle.SolidLine) -> QPen:
    pen = QPen(QColor(color), width, style)
    pen.setCosmetic(True)   # constant screen width at every zoom
    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    return pen


def round_pen(color: QColor, width: float) -> QPen:
    pen = QPen(QColor(color), width)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    return pen


class GeometryItem(QGraphicsPathItem):
    """A polygon (map CRS) with a cosmetic outline and an optional fill."""

    def __init__(self, geometry, outline: QColor | str, fill: QColor | None = None, width: float = 1.5,
                 style=Qt.PenStyle.SolidLine, tooltip: str = "") -> None:
        super().__init__(geometry_path(geometry))
        self.geometry = geometry
        self.setPen(cosmetic_pen(outline, width, style))
        self.setBrush(QBrush(fill) if fill is not None else Qt.BrushStyle.NoBrush)
        if tooltip:
            self.setToolTip(tooltip)


class CircleItem(QGraphicsEllipseItem):
    """A circle of `radius` map units (an EXIF position prior), dashed outline, light fill."""

    def __init__(self, x: float, y: float, radius: float, color: QColor | str, tooltip: str = "") -> None:
        super().__init__(x - radius, y - radius, 2 * radius, 2 * radius)
        colour = QColor(color)
        self.setPen(cosmetic_pen(colour, 1.8, Qt.PenStyle.DashLine))
        fill = QColor(colour)
        fill.setAlpha(28)
        self.setBrush(QBrush(fill))
        self.centre = (x, y)
        self.radius = radius
        if tooltip:
            self.setToolTip(tooltip)


def colorize(values: np.ndarray, colormap: str, levels: tuple[float, float] | None = None,
             alpha_ramp: bool = False, max_alpha: int = 230) -> tuple[np.ndarray, tuple[float, float]]:
    """Map a float grid to RGBA uint8. NaN is transparent. With `alpha_ramp` low values are a light veil
    (the grid's extent stays visible) and opacity grows with the value, so hot spots stand out."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    if levels is None:
        if finite.any():
            low, high = float(values[finite].min()), float(values[finite].max())
        else:
            low, high = 0.0, 1.0
        levels = (low, high if high > low else low + 1e-9)
    low, high = levels
    normal = np.clip((np.where(finite, values, low) - low) / max(high - low, 1e-12), 0.0, 1.0)
    lut = pg.colormap.get(colormap).getLookupTable(0.0, 1.0, 256, alpha=False)
    rgba = np.empty(values.shape + (4,), dtype=np.uint8)
    rgba[..., :3] = lut[np.round(normal * 255).astype(np.int64)]
    alpha = ALPHA_FLOOR + (1.0 - ALPHA_FLOOR) * np.sqrt(normal) if alpha_ramp else np.ones_like(normal)
    rgba[..., 3] = np.where(finite, np.round(alpha * max_alpha), 0).astype(np.uint8)
    return rgba, levels


def crop_to_bounds(values: np.ndarray, transform, bounds) -> tuple[np.ndarray, tuple]:
    """The part of a north-up georeferenced array inside `bounds` (overlays never draw past the map edge)."""
    a, b, c, d, e, f = list(transform)[:6]
    if bounds is None or b != 0 or d != 0 or a <= 0 or e >= 0:
        return values, (a, b, c, d, e, f)
    left, bottom, right, top = bounds
    rows, cols = values.shape[:2]
    col0, col1 = max(0, int(np.floor((left - c) / a))), min(cols, int(np.ceil((right - c) / a)))
    row0, row1 = max(0, int(np.floor((f - top) / -e))), min(rows, int(np.ceil((f - bottom) / -e)))
    if col1 <= col0 or row1 <= row0:
        return values[:0, :0], (a, b, c, d, e, f)
    return values[row0:row1, col0:col1], (a, 0.0, c + col0 * a, 0.0, e, f + row0 * e)


class ClippedImageItem(pg.ImageItem):
    """An image on the map that paints nothing outside `clip` (map bounds): a cell straddling the map's edge
    is drawn up to the edge, not past it."""

    def set_clip(self, clip) -> None:
        self._clip_local = None
        if clip is not None:
            inverse, ok = self.transform().inverted()
            left, bottom, right, top = clip
            if ok:
                self._clip_local = inverse.mapRect(QRectF(left, bottom, right - left, top - bottom))

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt API)
        rect = super().boundingRect()
        clip = getattr(self, "_clip_local", None)
        return rect.intersected(clip) if clip is not None else rect

    def paint(self, painter, *args) -> None:
        clip = getattr(self, "_clip_local", None)
        if clip is not None:
            painter.setClipRect(clip)
        super().paint(painter, *args)


class GridImageItem(ClippedImageItem):
    """A GeoGrid (attention map, score or probability surface) drawn where it lies on the map, cut to `clip`."""

    def __init__(self, grid, colormap: str, levels: tuple[float, float] | None = None,
                 alpha_ramp: bool = False, clip=None) -> None:
        values, transform = crop_to_bounds(grid.values, grid.transform, clip)
        rgba, self.levels_used = colorize(values, colormap, levels, alpha_ramp)
        super().__init__(rgba, levels=(0, 255))
        self.grid = grid
        self.colormap = colormap
        self.setTransform(affine_to_qtransform(transform))
        self.set_clip(clip)


class GeoImageItem(ClippedImageItem):
    """A georeferenced RGBA picture (the photo's bird's-eye view at its pose), cut to `clip`."""

    def __init__(self, geo_image, clip=None) -> None:
        rgba, transform = crop_to_bounds(geo_image.rgba, geo_image.transform, clip)
        super().__init__(np.ascontiguousarray(rgba), levels=(0, 255))
        self.geo_image = geo_image
        self.setTransform(affine_to_qtransform(transform))
        self.set_clip(clip)


def marker_color(status: str, selected: bool) -> QColor:
    if status == "manual":
        return QColor(255, 140, 0) if selected else QColor(220, 130, 30)
    return QColor(255, 45, 85) if selected else QColor(230, 60, 90)


class CameraMarker(pg.GraphicsObject):
    """A camera: dot, heading arrow and field-of-view wedge, constant size on screen, optionally draggable.

    Dragging moves the marker; when the drag ends `moved(key, x, y)` reports the new map position.
    """

    moved = Signal(str, float, float)
    clicked = Signal(str)

    DOT_PX = 6.5
    WEDGE_PX = 52.0
    ARROW_PX = 34.0

    def __init__(self, key, x: float, y: float, heading_deg: float | None, fov_deg: float | None,
                 color: QColor, *, draggable: bool = True, hollow: bool = False, label: str = "",
                 show_label: bool = False, heading_sigma_deg: float | None = None, tooltip: str = "") -> None:
        super().__init__()
        self.key = key
        self.heading_deg = heading_deg if heading_deg is not None and math.isfinite(heading_deg) else None
        sigma = heading_sigma_deg if heading_sigma_deg is not None and math.isfinite(heading_sigma_deg) else None
        self.heading_sigma_deg = min(sigma, 180.0) if sigma is not None and self.heading_deg is not None else None
        self.fov_deg = fov_deg if fov_deg is not None and math.isfinite(fov_deg) else None
        self.color = QColor(color)
        self.draggable = draggable
        self.hollow = hollow
        self.label = label
        self.show_label = show_label
        self._drag_offset: QPointF | None = None
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        self.setPos(QPointF(x, y))
        if draggable:
            self.setCursor(Qt.CursorShape.OpenHandCursor)
        hint = "Drag to correct the position" if draggable else ""
        self.setToolTip("\n".join(part for part in (tooltip or label, hint) if part))

    # Item coordinates are screen pixels with y down, so a compass heading h points along (sin h, -cos h).
    @staticmethod
    def _direction(heading_deg: float) -> QPointF:
        radians = math.radians(heading_deg)
        return QPointF(math.sin(radians), -math.cos(radians))

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt API)
        r = self.WEDGE_PX + 4
        rect = QRectF(-r, -r, 2 * r, 2 * r)
        return rect.united(self._label_rect()) if self.show_label and self.label else rect

    def _label_rect(self) -> QRectF:
        width = 7.0 * len(self.label) + 12
        return QRectF(self.DOT_PX + 4, self.DOT_PX - 2, width, 20)

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        grab = self.DOT_PX + 5    # only the dot grabs the mouse; the wedge leaves panning to the map
        path.addEllipse(QPointF(0, 0), grab, grab)
        return path

    def wedge_path(self) -> QPainterPath:
        path = QPainterPath()
        if self.heading_deg is None or self.fov_deg is None:
            return path
        path.moveTo(0, 0)
        # Qt arc angles: degrees counter-clockwise from 3 o'clock on screen.
        start = 90.0 - (self.heading_deg + self.fov_deg / 2.0)
        r = self.WEDGE_PX
        path.arcTo(QRectF(-r, -r, 2 * r, 2 * r), start, self.fov_deg)
        path.closeSubpath()
        return path

    def spread_path(self) -> QPainterPath:
        """The heading's 1-sigma spread: an arc band at the arrow's tip from heading - sigma to heading + sigma."""
        path = QPainterPath()
        if self.heading_sigma_deg is None:
            return path
        r = self.ARROW_PX + 6
        start = 90.0 - (self.heading_deg + self.heading_sigma_deg)
        path.arcMoveTo(QRectF(-r, -r, 2 * r, 2 * r), start)
        path.arcTo(QRectF(-r, -r, 2 * r, 2 * r), start, 2 * self.heading_sigma_deg)
        return path

    def paint(self, painter: QPainter, option, widget=None) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        spread = self.spread_path()
        if not spread.isEmpty():
            painter.setPen(round_pen(QColor(255, 255, 255, 200), 6.0))
            painter.drawPath(spread)
            painter.setPen(round_pen(self.color, 3.0))
            painter.drawPath(spread)
        wedge_fill = QColor(self.color)
        wedge_fill.setAlpha(50 if not self.hollow else 25)
        wedge = self.wedge_path()
        if not wedge.isEmpty():
            style = Qt.PenStyle.DashLine if self.hollow else Qt.PenStyle.SolidLine
            painter.setPen(QPen(QColor(self.color), 1.2, style))
            painter.setBrush(wedge_fill)
            painter.drawPath(wedge)
        if self.heading_deg is not None:
            direction = self._direction(self.heading_deg)
            tip = direction * self.ARROW_PX
            normal = QPointF(-direction.y(), direction.x())
            shaft = QPainterPath()
            shaft.moveTo(direction * (self.DOT_PX + 1))
            shaft.lineTo(tip - direction * 8)
            painter.setPen(round_pen(QColor(255, 255, 255, 220), 5.0))
            painter.drawPath(shaft)
            painter.setPen(round_pen(self.color, 2.4))
            painter.drawPath(shaft)
            head = QPainterPath()
            head.moveTo(tip)
            head.lineTo(tip - direction * 11 + normal * 5.5)
            head.lineTo(tip - direction * 11 - normal * 5.5)
            head.closeSubpath()
            painter.setPen(QPen(QColor(255, 255, 255), 1.2))
            painter.setBrush(self.color)
            painter.drawPath(head)
        painter.setPen(QPen(QColor(255, 255, 255), 2.0))
        painter.setBrush(Qt.BrushStyle.NoBrush if self.hollow else QBrush(self.color))
        if self.hollow:
            painter.setPen(QPen(self.color, 2.2))
        painter.drawEllipse(QPointF(0, 0), self.DOT_PX, self.DOT_PX)
        if self.show_label and self.label:
            rect = self._label_rect()
            text_width = painter.fontMetrics().horizontalAdvance(self.label) + 10
            rect.setWidth(text_width)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(20, 22, 26, 190))
            painter.drawRoundedRect(rect, 4, 4)
            painter.setPen(QColor(255, 255, 255))
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, self.label)

    def map_position(self) -> tuple[float, float]:
        return float(self.pos().x()), float(self.pos().y())

    def mouseClickEvent(self, ev) -> None:  # noqa: N802 (pyqtgraph API)
        if ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            self.clicked.emit(self.key)

    def mouseDragEvent(self, ev) -> None:  # noqa: N802 (pyqtgraph API)
        if not self.draggable or ev.button() != Qt.MouseButton.LeftButton:
            ev.ignore()
            return
        ev.accept()
        parent = self.parentItem()
        scene_to_map = parent.mapFromScene if parent is not None else (lambda p: p)
        if ev.isStart():
            self._drag_offset = self.pos() - scene_to_map(ev.buttonDownScenePos())
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
        if self._drag_offset is None:
            return
        self.setPos(scene_to_map(ev.scenePos()) + self._drag_offset)
        if ev.isFinish():
            self._drag_offset = None
            self.setCursor(Qt.CursorShape.OpenHandCursor)
            x, y = self.map_position()
            self.moved.emit(self.key, x, y)


class CrossMarker(pg.GraphicsObject):
    """A true camera position: an X of constant screen size, with a heading tick when known."""

    SIZE_PX = 8.0

    def __init__(self, x: float, y: float, heading_deg: float | None, color: QColor, tooltip: str = "") -> None:
        super().__init__()
        self.color = QColor(color)
        self.heading_deg = heading_deg
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        self.setPos(QPointF(x, y))
        if tooltip:
            self.setToolTip(tooltip)

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt API)
        r = CameraMarker.ARROW_PX + 4
        return QRectF(-r, -r, 2 * r, 2 * r)

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        path.addEllipse(QPointF(0, 0), self.SIZE_PX + 2, self.SIZE_PX + 2)
        return path

    def paint(self, painter: QPainter, option, widget=None) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        s = self.SIZE_PX
        cross = QPainterPath()
        cross.moveTo(-s, -s)
        cross.lineTo(s, s)
        cross.moveTo(-s, s)
        cross.lineTo(s, -s)
        if self.heading_deg is not None and math.isfinite(self.heading_deg):
            direction = CameraMarker._direction(self.heading_deg)
            cross.moveTo(0, 0)
            cross.lineTo(direction * CameraMarker.ARROW_PX)
        painter.setPen(round_pen(QColor(0, 0, 0, 160), 5.0))
        painter.drawPath(cross)
        painter.setPen(round_pen(self.color, 2.5))
        painter.drawPath(cross)


def points_item(xy: np.ndarray, color: QColor, symbol: str = "o", size: float = 9.0,
                tooltips: list[str] | None = None) -> pg.ScatterPlotItem:
    """Constant-size point symbols at map positions (N, 2)."""
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    item = pg.ScatterPlotItem(x=xy[:, 0], y=xy[:, 1], symbol=symbol, size=size, pen=pg.mkPen("w", width=1.2),
                              brush=pg.mkBrush(color), data=tooltips, hoverable=bool(tooltips),
                              tip=(lambda x, y, data: data) if tooltips else None)
    return item


def label_item(text: str, x: float, y: float, color: QColor | str = "w",
               anchor: tuple[float, float] = (0.0, 1.0)) -> pg.TextItem:
    item = pg.TextItem(text, color=QColor(color), anchor=anchor, fill=pg.mkBrush(0, 0, 0, 140))
    item.setPos(x, y)
    return item
