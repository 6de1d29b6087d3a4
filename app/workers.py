"""Worker threads for engine work: the engine thread (index maps, localise photos in order), training
runs, and short jobs such as exports.

Widgets never call the engine: they queue jobs here and listen to signals (delivered on the GUI thread).
Every job can be cancelled through its CancelToken; the model is loaded in the worker too.
"""
from __future__ import annotations

import multiprocessing
import os
import queue
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, QThread, Signal

from engine.pipeline import FAILED, CancelToken, Cancelled, EngineJobs, LocalizationResult, read_map_info
from engine.train import TrainConfig

from app.images import PREVIEW_SIZE, THUMBNAIL_SIZE, load_scaled
from app.training_process import train_in_child, yield_cpu_to_gui

_STOP = object()


@dataclass
class IndexSummary:
    """What the GUI needs to know about an indexed map (the gallery itself stays in the worker)."""

    map_path: str
    tiles: int
    from_cache: bool
    seconds: float
    footprints: list = field(default_factory=list)   # shapely polygons, map CRS
    model_description: str = ""
    generation: int = 0                              # the session generation it was indexed for


WORKER_NICENESS = 5


def yield_cpu_to_the_gui() -> None:
    """Lower the calling worker thread's CPU priority (Linux: per-thread nice) so the GUI thread is
    scheduled first on a busy machine; threads it starts afterwards (torch's OpenMP team, data loader
    processes) inherit it. Elsewhere nothing changes."""
    if not hasattr(os, "setpriority"):
        return
    try:
        thread = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(19, current + WORKER_NICENESS))
    except OSError:
        pass


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or exc.__class__.__name__
    return text.splitlines()[0]


class EngineWorker(QThread):
    """The one thread that talks to the engine for the session: map headers, indexing, localisation.

    Jobs carry the session's generation and every answer hands it back, so the session can drop answers
    that belong to a map or model it has replaced since."""

    model_loaded = Signal(str)                    # description of the model now in use
    model_failed = Signal(str)
    map_read = Signal(object, object)             # MapInfo, what the caller asked it for (opaque)
    map_read_failed = Signal(str, str, object)    # path, reason, purpose
    index_started = Signal(str)
    index_progress = Signal(str, int, int)        # stage, done, total
    index_finished = Signal(object)               # IndexSummary
    index_failed = Signal(str, str)               # map path, reason
    index_cancelled = Signal(str)
    photo_started = Signal(str, int, object, object)   # path, generation, thumbnail QImage, preview QImage
    photo_progress = Signal(str, str, int, int)   # path, stage, done, total
    photo_finished = Signal(str, int, object, object)  # path, generation, LocalizationResult, flags
    photo_cancelled = Signal(str, int)
    idle = Signal()                               # the queue ran empty

    def __init__(self, model_source=None, device: str | None = None, config=None, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("engine-worker")
        self._jobs: queue.Queue = queue.Queue()
        self._engine = EngineJobs(model_source, device, config)
        self._loaded = False
        self._index_cancel = CancelToken()
        self._photo_cancel = CancelToken()
        self.model_description = ""

    # ------------------------------------------------------------ GUI-side API (any thread)
    def set_model(self, source, device: str | None = None) -> None:
        self._jobs.put(("model", (source, device)))

    def read_map(self, path: str, purpose=None) -> None:
        self._jobs.put(("read", (str(path), purpose)))

    def index_map(self, path: str, generation: int) -> None:
        self._index_cancel = CancelToken()
        self._jobs.put(("index", (str(path), generation, self._index_cancel)))

    def localize(self, paths: list[str], generation: int) -> None:
        for path in paths:
            self._jobs.put(("photo", (str(path), generation, self._photo_cancel)))

    def cancel_indexing(self) -> None:
        self._index_cancel.cancel()

    def cancel_photos(self) -> None:
        """Stop the photo being localised and drop the queued ones (each reports photo_cancelled)."""
        token, self._photo_cancel = self._photo_cancel, CancelToken()
        token.cancel()

    def stop(self) -> None:
        self._index_cancel.cancel()
        self._photo_cancel.cancel()
        self._jobs.put((_STOP, None))
        self.wait()

    # ------------------------------------------------------------ worker thread
    def run(self) -> None:
        yield_cpu_to_the_gui()
        while True:
            kind, payload = self._jobs.get()
            if kind is _STOP:
                break
            if kind == "model":
                self._load_model(*payload)
            elif kind == "read":
                self._read(*payload)
            elif kind == "index":
                self._index(*payload)
            elif kind == "photo":
                self._localize(*payload)
            if self._jobs.empty():
                self.idle.emit()

    def _ensure_localizer(self):
        localizer = self._engine.localizer
        if not self._loaded:
            self._loaded = True
            self.model_description = localizer.model_description
            self.model_loaded.emit(self.model_description)
        return localizer

    def _load_model(self, source, device) -> None:
        self._engine.set_model(source)
        self._engine.device = device or self._engine.device
        self._loaded = False
        try:
            self._ensure_localizer()
        except Exception as exc:
            self.model_failed.emit(f"{source}: {_one_line(exc)}")

    def _read(self, path: str, purpose) -> None:
        try:
            info = read_map_info(path)
        except Exception as exc:        # RasterError names the file; anything else is reported the same way
            self.map_read_failed.emit(path, _one_line(exc), purpose)
            return
        self.map_read.emit(info, purpose)

    def _index(self, path: str, generation: int, cancel: CancelToken) -> None:
        self.index_started.emit(path)
        try:
            self._ensure_localizer()
            gallery = self._engine.index(path, progress=self.index_progress.emit, cancel=cancel)
        except Cancelled:
            self.index_cancelled.emit(path)
            return
        except Exception as exc:
            traceback.print_exc()
            self.index_failed.emit(path, _one_line(exc))
            return
        self.index_finished.emit(IndexSummary(path, len(gallery), bool(gallery.from_cache),
                                              float(gallery.index_seconds), list(gallery.footprints()),
                                              self.model_description, generation))

    def _localize(self, path: str, generation: int, cancel: CancelToken) -> None:
        if cancel.cancelled or self._engine.gallery is None:
            self.photo_cancelled.emit(path, generation)
            return
        self.photo_started.emit(path, generation, load_scaled(path, THUMBNAIL_SIZE), load_scaled(path, PREVIEW_SIZE))
        start = time.perf_counter()
        flags: list[str] = []
        try:
            result, flags = self._engine.localize(
                path, progress=lambda stage, done, total: self.photo_progress.emit(path, stage, done, total),
                cancel=cancel)
        except Cancelled:
            self.photo_cancelled.emit(path, generation)
            return
        except Exception as exc:   # the engine reports bad photos as failed results; anything else lands here
            traceback.print_exc()
            result = LocalizationResult(photo=path, status=FAILED, error=f"{path}: {_one_line(exc)}",
                                        timings_ms={"total": (time.perf_counter() - start) * 1000})
        self.photo_finished.emit(path, generation, result, flags)


class TaskThread(QThread):
    """A short blocking job (an export) in its own thread; `succeeded`/`failed` arrive on the GUI thread.

    A fresh QThread rather than the thread pool: pyproj keeps per-thread state that a pooled thread
    reusing a new Python thread state for its next job crashes on.
    """

    succeeded = Signal(object)
    failed = Signal(str)

    def __init__(self, function: Callable[[], object], parent: QObject) -> None:
        super().__init__(parent)
        self.function = function
        self.finished.connect(self.deleteLater)

    def run(self) -> None:
        try:
            value = self.function()
        except Exception as exc:
            traceback.print_exc()
            self.failed.emit(_one_line(exc))
            return
        self.succeeded.emit(value)


def run_in_thread(function: Callable[[], object], on_succeeded: Callable[[object], None],
                  on_failed: Callable[[str], None], parent: QObject) -> TaskThread:
    thread = TaskThread(function, parent)
    thread.succeeded.connect(on_succeeded)
    thread.failed.connect(on_failed)
    thread.start()
    return thread


class TrainingJob(QThread):
    """One training run of a ready TrainConfig in a child process; this thread relays its reports as signals.
    cancel() stops it at the next step (a checkpoint is kept)."""

    step = Signal(int, int, int, object, float)     # epoch, step, steps, losses, lr
    epoch_end = Signal(int, object)                 # epoch, metrics
    checkpoint = Signal(str)
    log = Signal(str)
    progress = Signal(str, int, int)
    succeeded = Signal(object)                      # TrainSummary (stopped: completed / cancelled / time budget)
    failed = Signal(str)

    def __init__(self, config: TrainConfig, resume: bool = False, overwrite: bool = False,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("training")
        self.config = config
        self.resume = resume
        self.overwrite = overwrite
        self._context = multiprocessing.get_context("spawn")     # no fork of a threaded Qt process
        self._cancel_reader, self._cancel_writer = self._context.Pipe(duplex=False)
        self._cancel_lock = threading.Lock()

    def cancel(self) -> None:
        with self._cancel_lock:
            if self._cancel_writer.closed:
                return
            try:
                self._cancel_writer.send("cancel")
            except OSError:
                pass           # the process is gone already

    def run(self) -> None:
        if sys.platform.startswith("linux"):
            # Linux nice is per thread and a child inherits its parent thread's: lowering this relay thread
            # makes the child yield to the GUI from birth, through its imports and data generation too
            yield_cpu_to_gui()
        reader, writer = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=train_in_child, args=(self.config, self.resume, self.overwrite, writer, self._cancel_reader),
            name="viewfinder-training", daemon=True)
        process.start()
        writer.close()
        self._cancel_reader.close()
        outcome = None
        while outcome is None:
            try:
                if not reader.poll(0.25):
                    if not process.is_alive() and not reader.poll(0):
                        break
                    continue
                message = reader.recv()
            except (EOFError, OSError):
                break
            outcome = self._relay(message)
        reader.close()
        process.join()
        with self._cancel_lock:
            self._cancel_writer.close()
        if outcome is None:
            self.failed.emit(f"the training process ended without a result (exit code {process.exitcode})")

    def _relay(self, message: tuple) -> bool | None:
        """Emit one report; True once the run's outcome was sent."""
        kind, *values = message
        if kind == "step":
            self.step.emit(*values)
        elif kind == "epoch":
            self.epoch_end.emit(*values)
        elif kind == "checkpoint":
            self.checkpoint.emit(*values)
        elif kind == "log":
            self.log.emit(*values)
        elif kind == "progress":
            self.progress.emit(*values)
        elif kind == "done":
            self.succeeded.emit(*values)
            return True
        elif kind == "failed":
            self.failed.emit(*values)
            return True
        return None
