"""The map canvas: the satellite map in map CRS coordinates (x east, y north, north up), pan and zoom.

The whole map is shown from a small overview at once; when the view zooms in past the overview's
resolution, the visible window is re-read at screen resolution in the reader thread (debounced), so a huge
GeoTIFF opens instantly and panning never waits for the disk.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QWidget

from app.overlays import affine_to_qtransform
from app.raster_reader import RasterReader
from app.scale_bar import NorthArrow, ScaleBar

pg.setConfigOptions(imageAxisOrder="row-major", antialias=True)

VIEW_CHANNEL = "view"
OVERVIEW_SIDE = 1024
READ_DEBOUNCE_MS = 50
MAX_READ_SIDE = 4096
READ_MARGIN = 0.15          # read a little around the view so small pans stay sharp
ZOOM_STEP = 1.25            # one + / - key press
PAN_STEP = 0.2              # one arrow key press: a fifth of the view
PAN_KEYS = {Qt.Key.Key_Left: (-1, 0), Qt.Key.Key_Right: (1, 0), Qt.Key.Key_Up: (0, 1), Qt.Key.Key_Down: (0, -1)}
ZOOM_KEYS = {Qt.Key.Key_Plus: 1 / ZOOM_STEP, Qt.Key.Key_Equal: 1 / ZOOM_STEP, Qt.Key.Key_Minus: ZOOM_STEP}


def intersect(a, b):
    left, bottom = max(a[0], b[0]), max(a[1], b[1])
    right, top = min(a[2], b[2]), min(a[3], b[3])
    return (left, bottom, right, top) if right > left and top > bottom else None


def rgba_with_alpha(rgb: np.ndarray, valid: np.ndarray) -> np.ndarray:
    rgba = np.empty(rgb.shape[:2] + (4,), dtype=np.uint8)
    rgba[..., :3] = rgb
    rgba[..., 3] = np.where(valid, 255, 0)
    return rgba


class MapCanvas(pg.PlotWidget):
    cursor_moved = Signal(float, float)       # map x, y
    left_view = Signal()
    detail_shown = Signal()                   # a screen-resolution window was drawn (tests wait on it)
    overview_shown = Signal()
    map_failed = Signal(str)
    tile_read = Signal(str, object, object, object)   # other channels' reads: channel, rgb, valid, bounds

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, background=QColor(46, 49, 54))
        plot = self.getPlotItem()
        for axis in ("left", "bottom"):
            plot.hideAxis(axis)
        plot.hideButtons()
        plot.setMenuEnabled(False)
        plot.layout.setContentsMargins(0, 0, 0, 0)
        self.view: pg.ViewBox = plot.getViewBox()
        self.view.setAspectLocked(True, ratio=1.0)
        self.view.setMenuEnabled(False)
        self.view.setDefaultPadding(0.02)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)     # arrows pan, + and - zoom
        self.setAcceptDrops(False)             # drops go to the main window
        self.viewport().setAcceptDrops(False)

        self.overview_item = pg.ImageItem()
        # visibility belongs to the satellite layer; "no detail" is an empty image
        self.detail_item = pg.ImageItem()
        self.scale_bar = ScaleBar(self)
        self.north_arrow = NorthArrow(self)

        self.reader: RasterReader | None = None
        self.map_path: str | None = None
        self.map_bounds: tuple[float, float, float, float] | None = None
        self.map_metres_per_px = 1.0
        self.overview_metres_per_px = float("inf")
        self.detail_bounds: tuple | None = None

        self._read_timer = QTimer(self)
        self._read_timer.setSingleShot(True)
        self._read_timer.setInterval(READ_DEBOUNCE_MS)
        self._read_timer.timeout.connect(self._request_view_read)
        self.view.sigRangeChanged.connect(self._on_range_changed)
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)

    # ------------------------------------------------------------ map
    def set_map(self, path: str, bounds: tuple[float, float, float, float], metres_per_px: float,
                satellite_layer) -> None:
        """Show a map; `satellite_layer` receives the overview and detail image items."""
        self.close_map()
        self.map_path = str(path)
        self.map_bounds = tuple(float(v) for v in bounds)
        self.map_metres_per_px = float(metres_per_px)
        if not satellite_layer.items:
            satellite_layer.add(self.overview_item, sub_z=0.0)
            satellite_layer.add(self.detail_item, sub_z=1.0)
        self.reader = RasterReader(self.map_path, OVERVIEW_SIDE, self)
        self.reader.overview_ready.connect(self._on_overview)
        self.reader.ready.connect(self._on_read)
        self.reader.failed.connect(self.map_failed)
        left, bottom, right, top = self.map_bounds
        self.view.setLimits(xMin=left - (right - left), xMax=right + (right - left),
                            yMin=bottom - (top - bottom), yMax=top + (top - bottom),
                            minXRange=10 * self.map_metres_per_px / 4, minYRange=10 * self.map_metres_per_px / 4)
        self.zoom_to(self.map_bounds)

    def close_map(self) -> None:
        if self.reader is not None:
            self.reader.shutdown()
            self.reader.deleteLater()
            self.reader = None
        self.overview_item.clear()
        self._drop_detail()
        self.map_bounds = None
        self.detail_bounds = None
        self.overview_metres_per_px = float("inf")

    def _on_overview(self, rgb: np.ndarray, transform) -> None:
        self.overview_item.setImage(rgba_with_alpha(rgb, np.any(rgb > 0, axis=-1)), levels=(0, 255))
        self.overview_item.setTransform(affine_to_qtransform(transform))
        self.overview_metres_per_px = abs(list(transform)[0])
        self.overview_shown.emit()
        self._read_timer.start()

    # ------------------------------------------------------------ view
    def zoom_to(self, bounds: tuple[float, float, float, float], padding: float = 0.04) -> None:
        left, bottom, right, top = bounds
        self.view.setRange(xRange=(left, right), yRange=(bottom, top), padding=padding)

    def zoom_to_map(self) -> None:
        if self.map_bounds is not None:
            self.zoom_to(self.map_bounds)

    def view_bounds(self) -> tuple[float, float, float, float]:
        (left, right), (bottom, top) = self.view.viewRange()
        return left, bottom, right, top

    def view_size_px(self) -> tuple[float, float]:
        """The view's size in device pixels."""
        rect = self.view.sceneBoundingRect()
        ratio = self.devicePixelRatioF()
        return max(1.0, rect.width() * ratio), max(1.0, rect.height() * ratio)

    def metres_per_screen_px(self) -> float:
        left, _, right, _ = self.view_bounds()
        return (right - left) / max(1.0, self.view.sceneBoundingRect().width())

    def map_to_widget(self, x: float, y: float) -> QPointF:
        """Widget (viewport) coordinates of a map point; tests use it to aim the mouse."""
        return self.mapFromScene(self.view.mapViewToScene(QPointF(x, y))).toPointF()

    def _on_range_changed(self, *args) -> None:
        self.scale_bar.set_metres_per_px(self.metres_per_screen_px())
        self._read_timer.start()

    def _request_view_read(self) -> None:
        if self.reader is None or self.map_bounds is None or not np.isfinite(self.overview_metres_per_px):
            return     # the overview comes first; its arrival asks again
        view = self.view_bounds()
        width_px, height_px = self.view_size_px()
        metres_per_device_px = (view[2] - view[0]) / width_px
        if metres_per_device_px >= self.overview_metres_per_px * 0.95:
            self._drop_detail()                     # the overview is already as sharp as the screen
            return
        margin_x, margin_y = (view[2] - view[0]) * READ_MARGIN, (view[3] - view[1]) * READ_MARGIN
        padded = (view[0] - margin_x, view[1] - margin_y, view[2] + margin_x, view[3] + margin_y)
        window = intersect(padded, self.map_bounds)
        if window is None:
            self._drop_detail()
            return
        # Never read finer than the map itself, nor more pixels than a screen can show.
        metres_per_read_px = max(metres_per_device_px, self.map_metres_per_px)
        width = (window[2] - window[0]) / metres_per_read_px
        height = (window[3] - window[1]) / metres_per_read_px
        shrink = max(1.0, max(width, height) / MAX_READ_SIDE)
        self.reader.request(VIEW_CHANNEL, window, (round(width / shrink), round(height / shrink)))

    def _drop_detail(self) -> None:
        if self.detail_item.image is not None:
            self.detail_item.clear()
        self.detail_bounds = None

    def request_read(self, channel: str, bounds: tuple, size: tuple[int, int]) -> None:
        """Read a map window in the reader thread; it arrives as tile_read(channel, ...)."""
        if self.reader is not None:
            self.reader.request(channel, bounds, size)

    def _on_read(self, channel: str, rgb: np.ndarray, valid: np.ndarray, bounds: tuple) -> None:
        if channel != VIEW_CHANNEL:
            self.tile_read.emit(channel, rgb, valid, bounds)
            return
        left, bottom, right, top = bounds
        height, width = rgb.shape[:2]
        self.detail_item.setImage(rgba_with_alpha(rgb, valid), levels=(0, 255))
        self.detail_item.setTransform(affine_to_qtransform(
            ((right - left) / width, 0.0, left, 0.0, -(top - bottom) / height, top)))
        self.detail_bounds = bounds
        self.detail_shown.emit()

    def keyPressEvent(self, event) -> None:  # noqa: N802 (Qt API)
        """Keyboard navigation as in desktop GIS: arrows pan by a fifth of the view, + / - zoom about the centre."""
        key = Qt.Key(event.key())
        left, bottom, right, top = self.view_bounds()
        width, height = right - left, top - bottom
        if key in PAN_KEYS:
            dx, dy = PAN_KEYS[key]
            self.view.translateBy(x=dx * PAN_STEP * width, y=dy * PAN_STEP * height)
        elif key in ZOOM_KEYS:
            self.view.scaleBy((ZOOM_KEYS[key], ZOOM_KEYS[key]))
        else:
            super().keyPressEvent(event)
            return
        event.accept()

    # ------------------------------------------------------------ cursor and chrome
    def _on_mouse_moved(self, scene_pos: QPointF) -> None:
        if self.view.sceneBoundingRect().contains(scene_pos):
            point = self.view.mapSceneToView(scene_pos)
            self.cursor_moved.emit(float(point.x()), float(point.y()))
        else:
            self.left_view.emit()

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt API)
        super().resizeEvent(event)
        if "scale_bar" not in self.__dict__:
            return   # pyqtgraph resizes once inside its own constructor
        self.scale_bar.move(10, self.height() - self.scale_bar.height() - 10)
        self.north_arrow.move(self.width() - self.north_arrow.width() - 12, 10)
        self.scale_bar.set_metres_per_px(self.metres_per_screen_px())
        self._read_timer.start()

    def shutdown(self) -> None:
        self._read_timer.stop()
        self.close_map()
