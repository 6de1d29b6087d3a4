"""Workers for engine work: the engine process (index maps, localise photos in order), training runs
(a process each) and short jobs such as exports (threads).

Widgets never call the engine: they queue jobs here and listen to signals (delivered on the GUI thread).
Long jobs can be cancelled; the model is loaded in the engine process too.
"""
from __future__ import annotations

import itertools
import multiprocessing
import os
import sys
import threading
import traceback
from collections.abc import Callable

from PySide6.QtCore import QObject, QThread, Signal

from app.engine_process import serve_engine
from app.error_text import one_line
from app.images import PREVIEW_SIZE, THUMBNAIL_SIZE, load_scaled
from app.training_process import train_in_child, yield_cpu_to_gui
from engine.pipeline import FAILED, LocalizationResult
from engine.train import TrainConfig


def lower_relay_thread_priority() -> None:
    """Linux nice is per thread and a child inherits its parent thread's: lowering a relay thread makes the
    processes it starts yield to the GUI from birth, through their imports too. Elsewhere nice is per process
    and would slow the GUI as well, so the children lower themselves instead."""
    if sys.platform.startswith("linux"):
        yield_cpu_to_gui()


def reports_until_exit(process, reader, poll_s: float = 0.25):
    """The messages a child process sends on `reader` until it exits or its end of the pipe closes."""
    while True:
        try:
            if not reader.poll(poll_s):
                if process.is_alive():
                    continue
                if not reader.poll(0):
                    return
            message = reader.recv()
        except (EOFError, OSError):
            return
        yield message


ENGINE_STOP_TIMEOUT_S = 10.0
ENGINE_RETRIES = 3          # engine processes that may die in a row before queued jobs are dropped


def engine_context():
    """Start method for the engine process. A fork server imports the engine once per app (in its own
    single-threaded process, so forking it is safe beside Qt's threads) and every engine process after the
    first starts in milliseconds; where there is none (or in a frozen app, whose bootloader re-runs itself
    for spawned children only), spawn."""
    if "forkserver" in multiprocessing.get_all_start_methods() and not getattr(sys, "frozen", False):
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["app.engine_process"])
        return context
    return multiprocessing.get_context("spawn")


class EngineWorker(QThread):
    """The session's engine: a child process (app.engine_process) that opens maps, indexes them and localises
    photos, and this thread, which relays its reports as signals on the GUI thread.

    Jobs carry the session's generation and every answer hands it back, so the session can drop answers
    that belong to a map or model it has replaced since. If the engine process dies, `crashed` says why, the
    job it was running fails with that reason, and a fresh process rebuilds the gallery (from the disk cache)
    and takes the queued jobs."""

    model_loaded = Signal(str)                    # description of the model now in use
    model_failed = Signal(str)
    map_read = Signal(object, object)             # MapInfo, what the caller asked it for (opaque)
    map_read_failed = Signal(str, str, object)    # path, reason, purpose
    map_too_large = Signal(str, int, str, object)  # path, region count, reason, purpose: it can be cut
    regions_written = Signal(str, object, object, object)  # map path, [(MapRegion, VRT path)], photo GPS, purpose
    regions_folder_unwritable = Signal(str, str, object)   # map path, folder, purpose
    regions_failed = Signal(str, str, object)     # map path, reason, purpose
    index_started = Signal(str)
    index_progress = Signal(str, int, int)        # stage, done, total
    index_finished = Signal(object)               # IndexSummary
    index_failed = Signal(str, str)               # map path, reason
    index_cancelled = Signal(str)
    index_refused = Signal(str, str)              # map path, why its index plan refuses it (index_map force=True)
    photo_started = Signal(str, int, object, object)   # path, generation, thumbnail QImage, preview QImage
    photo_progress = Signal(str, str, int, int)   # path, stage, done, total
    photo_finished = Signal(str, int, object, object)  # path, generation, LocalizationResult, flags
    photo_cancelled = Signal(str, int)
    idle = Signal()                               # the queue ran empty
    crashed = Signal(str)                         # the engine process ended unasked: why

    def __init__(self, model_source=None, device: str | None = None, config=None, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("engine-relay")
        self._model = self._previous_model = (model_source, device)
        self._indexed = None
        self._config = config
        self._context = engine_context()
        self._lock = threading.Lock()
        self._numbers = itertools.count(1)
        self._pending: dict[int, tuple] = {}          # job number -> the job, until the engine says done
        self._index_token = next(self._numbers)
        self._photo_token = next(self._numbers)
        self._inbox_reader, self._inbox = self._context.Pipe(duplex=False)
        self._stopping = False
        self.model_description = ""
        self.process = None

    # ------------------------------------------------------------ GUI-side API (any thread)
    def set_model(self, source, device: str | None = None) -> None:
        self._previous_model, self._model = self._model, (source, device or self._model[1])
        self._send_job("model", source, device)

    def read_map(self, path: str, purpose=None) -> None:
        self._send_job("read", str(path), purpose)

    def write_regions(self, path: str, folder: str | None = None, photo_paths: list[str] | None = None,
                      purpose=None) -> None:
        """Cut a map too large for one ground frame into region VRTs (folder None: beside the map); the
        answer carries the EXIF GPS positions of `photo_paths`."""
        self._send_job("regions", str(path), None if folder is None else str(folder), list(photo_paths or []),
                       purpose)

    def index_map(self, path: str, generation: int, force: bool = False) -> None:
        with self._lock:
            self._index_token = next(self._numbers)
            self._indexed = None         # (path, generation) of the gallery the engine process holds
        self._send_job("index", str(path), generation, self._index_token, force)

    def localize(self, paths: list[str], generation: int) -> None:
        for path in paths:
            self._send_job("photo", str(path), generation, self._photo_token)

    def cancel_indexing(self) -> None:
        self._send(("cancel", self._index_token))

    def cancel_photos(self) -> None:
        """Stop the photo being localised and drop the queued ones (each reports photo_cancelled)."""
        with self._lock:
            token, self._photo_token = self._photo_token, next(self._numbers)
        self._send(("cancel", token))

    def stop(self) -> None:
        self._stopping = True
        self._send(("cancel", self._index_token))
        self._send(("cancel", self._photo_token))
        self._send(("stop",))
        self.wait()

    def _send_job(self, kind: str, *payload) -> None:
        with self._lock:
            number = next(self._numbers)
            self._pending[number] = (kind, *payload)
        self._send((kind, number, *payload))

    def _send(self, message: tuple) -> None:
        with self._lock:
            try:
                self._inbox.send(message)
            except OSError:
                pass           # the process is gone: the relay fails its jobs and starts another

    # ------------------------------------------------------------ relay thread
    def run(self) -> None:
        lower_relay_thread_priority()    # the fork server (or a spawned engine) is born with it
        crashes = 0                 # in a row, without a job finished in between
        while True:
            process, outbox = self._start_process()
            finished = self._relay_until_exit(process, outbox)
            if self._stopping:
                break
            crashes = 0 if finished else crashes + 1
            self._recover(process.exitcode, retry=crashes < ENGINE_RETRIES)

    def _recover(self, exit_code, retry: bool) -> None:
        """The job the dead process was running fails; the jobs queued behind it go to a new process (after
        it rebuilds the gallery it had), unless processes keep dying."""
        reason = f"the engine process stopped unexpectedly (exit code {exit_code})"
        lost = self._start_afresh()
        culprit, queued = lost[:1], lost[1:]
        if culprit and culprit[0][0] == "model":
            self._model = self._previous_model       # the next process must not load it again
        self.crashed.emit(reason + ("; a new one takes the queued jobs" if retry else
                                    f"; it stopped {ENGINE_RETRIES} times in a row, queued jobs dropped"))
        self._fail(culprit, reason)
        if not retry:
            self._fail(queued, reason)
            return
        if self._indexed is not None:
            with self._lock:
                token = next(self._numbers)
            self._send_job("reindex", *self._indexed, token, True)
        for kind, *payload in queued:
            if kind == "photo" and payload[2] != self._photo_token:
                self.photo_cancelled.emit(payload[0], payload[1])
            elif kind == "index" and payload[2] != self._index_token:
                self.index_cancelled.emit(payload[0])
            elif kind != "reindex":
                self._send_job(kind, *payload)

    def _start_process(self):
        reader, writer = self._context.Pipe(duplex=False)
        model_source, device = self._model
        process = self._context.Process(target=serve_engine,
                                        args=(model_source, device, self._config, dict(os.environ),
                                              self._inbox_reader, writer),
                                        name="viewfinder-engine", daemon=True)
        process.start()
        writer.close()
        self.process = process
        return process, reader

    def _relay_until_exit(self, process, outbox) -> int:
        """Relay reports until the process ends; how many jobs it finished."""
        finished = 0
        for message in reports_until_exit(process, outbox):
            finished += message[0] == "done"
            self._relay(message)
        outbox.close()
        process.join(ENGINE_STOP_TIMEOUT_S)
        if process.is_alive():
            process.terminate()
            process.join()
        return finished

    def _start_afresh(self) -> list[tuple]:
        """A new inbox for the next process; returns the jobs the dead one held (they fail)."""
        with self._lock:
            self._inbox.close()
            self._inbox_reader.close()
            self._inbox_reader, self._inbox = self._context.Pipe(duplex=False)
            lost, self._pending = list(self._pending.values()), {}
        return lost

    def _relay(self, message: tuple) -> None:
        kind, *values = message
        if kind == "done":
            with self._lock:
                self._pending.pop(values[0], None)
        elif kind == "idle":
            self.idle.emit()
        elif kind == "model_loaded":
            self.model_description = values[0]
            self.model_loaded.emit(values[0])
        elif kind == "index_finished":
            self._indexed = (values[0].map_path, values[0].generation)
            self.index_finished.emit(values[0])
        elif kind == "photo_started":
            path, generation = values
            self.photo_started.emit(path, generation, load_scaled(path, THUMBNAIL_SIZE),
                                    load_scaled(path, PREVIEW_SIZE))
        else:
            getattr(self, kind).emit(*values)

    def _fail(self, jobs: list[tuple], reason: str) -> None:
        for kind, *payload in jobs:
            if kind == "model":
                self.model_failed.emit(f"{payload[0]}: {reason}")
            elif kind == "read":
                self.map_read_failed.emit(payload[0], reason, payload[1])
            elif kind == "regions":
                self.regions_failed.emit(payload[0], f"{payload[0]}: {reason}", payload[-1])
            elif kind in ("index", "reindex"):
                self.index_failed.emit(payload[0], reason)
            elif kind == "photo":
                path, generation, _ = payload
                self.photo_finished.emit(path, generation,
                                         LocalizationResult(photo=path, status=FAILED, error=f"{path}: {reason}"),
                                         [])


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
            self.failed.emit(one_line(exc))
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
        lower_relay_thread_priority()
        reader, writer = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=train_in_child, args=(self.config, self.resume, self.overwrite, writer, self._cancel_reader),
            name="viewfinder-training", daemon=True)
        process.start()
        writer.close()
        self._cancel_reader.close()
        outcome = None
        for message in reports_until_exit(process, reader):
            outcome = self._relay(message)
            if outcome is not None:
                break
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
