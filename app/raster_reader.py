"""Reads map windows off the GUI thread at the resolution they will be shown at.

One reader thread owns its own handle on the map (raster handles are not shared between threads). Requests
go by channel ("view", "preview"...); only the newest request of a channel is served, so panning quickly
never builds a backlog of stale reads. The thread runs one Python loop for its whole life (no per-slot
thread states), which GDAL/PROJ thread-local state needs.
"""
from __future__ import annotations

import queue
import threading

from PySide6.QtCore import QObject, QThread, Signal

from engine.pipeline import MapRaster

_CLOSE = object()


class RasterReader(QThread):
    """`request(channel, bounds, size)` from the GUI; results arrive as `ready(channel, rgb, valid, bounds)`."""

    ready = Signal(str, object, object, object)
    overview_ready = Signal(object, object)     # rgb, transform (affine)
    failed = Signal(str)

    def __init__(self, path: str, overview_side: int = 1024, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("raster-reader")
        self.path = path
        self.overview_side = overview_side
        self._requests: queue.Queue = queue.Queue()
        self._latest: dict[str, int] = {}
        self._lock = threading.Lock()
        self.start()

    def request(self, channel: str, bounds: tuple[float, float, float, float], size: tuple[int, int]) -> None:
        width, height = max(1, int(size[0])), max(1, int(size[1]))
        with self._lock:
            generation = self._latest.get(channel, 0) + 1
            self._latest[channel] = generation
        self._requests.put((channel, generation, tuple(float(v) for v in bounds), (width, height)))

    def _is_latest(self, channel: str, generation: int) -> bool:
        with self._lock:
            return self._latest.get(channel) == generation

    def run(self) -> None:
        try:
            raster = MapRaster(self.path)
        except Exception as exc:   # the GUI opened it a moment ago; report whatever changed since
            self.failed.emit(f"{self.path}: {exc}")
            return
        try:
            rgb, transform = raster.read_overview(self.overview_side)
            self.overview_ready.emit(rgb, transform)
        except Exception as exc:
            self.failed.emit(f"{self.path}: {exc}")
        while True:
            item = self._requests.get()
            if item is _CLOSE:
                break
            channel, generation, bounds, size = item
            if not self._is_latest(channel, generation):
                continue           # a newer request of this channel is queued behind this one
            try:
                rgb, valid = raster.read_bounds(bounds, size)
            except Exception as exc:
                self.failed.emit(f"{self.path}: {exc}")
                continue
            if self._is_latest(channel, generation):
                self.ready.emit(channel, rgb, valid, bounds)
        raster.close()

    def shutdown(self) -> None:
        """Close the map handle in its own thread, then join the thread."""
        self._requests.put(_CLOSE)
        self.wait()
