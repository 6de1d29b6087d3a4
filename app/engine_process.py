"""The child-process side of app.workers.EngineWorker: map headers, indexing and photo localisation.

The engine runs in its own process, not a thread of the GUI's: model loading, GDAL, PROJ and numpy hold the
GIL for tens to hundreds of milliseconds at a time, and every such hold froze the GUI thread (worst event-loop
gaps of 100-200 ms while a map indexed on 2 busy cores). No Qt here.

Protocol. The parent sends tuples on `inbox`:
    ("model", job, source, device) / ("read", job, path, purpose) / ("index", job, path, generation, token, force)
    ("photo", job, path, generation, token) / ("reindex", job, path, generation, token, force) / ("cancel", token)
    ("regions", job, path, folder, photo_paths, purpose) / ("stop",)
"reindex" rebuilds the gallery of a map indexed before (by a process that died) without reporting it again.
Jobs run one at a time in order; "cancel" acts at once on every job holding that token. The child answers on
`outbox` with (signal name, *values) tuples named after EngineWorker's signals, ("done", job) after each job
and ("idle",) when no job is waiting.
"""
from __future__ import annotations

import os
import queue
import threading
import time
import traceback
from dataclasses import dataclass, field

from app.error_text import naming_the_file, one_line
from app.training_process import yield_cpu_to_gui
from engine.pipeline import (
    FAILED,
    Cancelled,
    CancelToken,
    EngineJobs,
    IndexRefused,
    LocalizationResult,
    MapTooLarge,
    photo_gps_lonlat,
    write_regions,
)


@dataclass
class IndexSummary:
    """What the GUI needs to know about an indexed map (the gallery itself stays in the engine process)."""

    map_path: str
    tiles: int
    from_cache: bool
    seconds: float
    footprints: list = field(default_factory=list)   # shapely polygons, map CRS
    model_description: str = ""
    generation: int = 0                              # the session generation it was indexed for


class CancelTokens:
    """Tokens by the number the parent gave them; cancelling one the child has not seen yet still counts."""

    def __init__(self) -> None:
        self._tokens: dict[int, CancelToken] = {}
        self._lock = threading.Lock()

    def get(self, number: int) -> CancelToken:
        with self._lock:
            return self._tokens.setdefault(number, CancelToken())

    def cancel(self, number: int) -> None:
        self.get(number).cancel()


class EngineServer:
    """Runs one job at a time against the engine and reports through `send`."""

    def __init__(self, jobs: EngineJobs, send) -> None:
        self.engine = jobs
        self.send = send
        self.loaded = False

    def handle(self, kind: str, payload: tuple, tokens: CancelTokens) -> None:
        if kind == "model":
            self._load_model(*payload)
        elif kind == "read":
            self._read(*payload)
        elif kind in ("index", "reindex"):
            path, generation, token, force = payload
            self._index(path, generation, tokens.get(token), force, quiet=kind == "reindex")
        elif kind == "photo":
            path, generation, token = payload
            self._localize(path, generation, tokens.get(token))
        elif kind == "regions":
            self._write_regions(*payload)

    def _ensure_localizer(self):
        localizer = self.engine.localizer
        if not self.loaded:
            self.loaded = True
            self.send(("model_loaded", localizer.model_description))
        return localizer

    def _load_model(self, source, device) -> None:
        self.engine.set_model(source)
        self.engine.device = device or self.engine.device
        self.loaded = False
        try:
            self._ensure_localizer()
        except Exception as exc:
            self.send(("model_failed", f"{source}: {one_line(exc)}"))

    def _read(self, path: str, purpose) -> None:
        try:
            info = self.engine.read_map(path)       # kept open: indexing it next does not open it again
        except MapTooLarge as exc:      # the app offers to cut it into regions
            self.send(("map_too_large", path, exc.region_count, one_line(exc), purpose))
            return
        except Exception as exc:        # RasterError names the file; anything else is reported the same way
            self.send(("map_read_failed", path, one_line(exc), purpose))
            return
        self.send(("map_read", info, purpose))

    def _write_regions(self, path: str, folder: str | None, photo_paths: list[str], purpose) -> None:
        """One VRT per region of the map at `path`, into `folder` (None: beside the map), with the EXIF GPS
        positions of `photo_paths` (so the app can suggest the region holding most photos)."""
        target = folder if folder is not None else os.path.dirname(os.path.abspath(path))
        if not os.access(target, os.W_OK | os.X_OK):     # checked first: the app then asks for another folder
            self.send(("regions_folder_unwritable", path, target, purpose))
            return
        try:
            written = write_regions(path, folder)
        except Exception as exc:
            self.send(("regions_failed", path, naming_the_file(path, one_line(exc)), purpose))
            return
        lonlats = [point for photo in photo_paths if (point := photo_gps_lonlat(photo)) is not None]
        self.send(("regions_written", path, [(region, str(vrt)) for region, vrt in written], lonlats, purpose))

    def _index(self, path: str, generation: int, cancel: CancelToken, force: bool, quiet: bool = False) -> None:
        report = (lambda message: None) if quiet else self.send
        report(("index_started", path))
        try:
            localizer = self._ensure_localizer()
            gallery = self.engine.index(path, progress=lambda *values: report(("index_progress", *values)),
                                        cancel=cancel, force=force)
        except Cancelled:
            report(("index_cancelled", path))
            return
        except IndexRefused as exc:
            self.send(("index_refused", path, "\n".join(exc.reasons)))
            return
        except Exception as exc:
            traceback.print_exc()
            self.send(("index_failed", path, one_line(exc)))
            return
        report(("index_finished", IndexSummary(path, len(gallery), bool(gallery.from_cache),
                                                  float(gallery.index_seconds), list(gallery.footprints()),
                                                  localizer.model_description, generation)))

    def _localize(self, path: str, generation: int, cancel: CancelToken) -> None:
        if cancel.cancelled or self.engine.gallery is None:
            self.send(("photo_cancelled", path, generation))
            return
        self.send(("photo_started", path, generation))
        start = time.perf_counter()
        flags: list[str] = []
        try:
            result, flags = self.engine.localize(
                path, progress=lambda stage, done, total: self.send(("photo_progress", path, stage, done, total)),
                cancel=cancel)
        except Cancelled:
            self.send(("photo_cancelled", path, generation))
            return
        except Exception as exc:   # the engine reports bad photos as failed results; anything else lands here
            traceback.print_exc()
            result = LocalizationResult(photo=path, status=FAILED, error=f"{path}: {one_line(exc)}",
                                        timings_ms={"total": (time.perf_counter() - start) * 1000})
        self.send(("photo_finished", path, generation, result, flags))


def _listen(inbox, jobs: queue.Queue, tokens: CancelTokens) -> None:
    """Cancels take effect at once; everything else queues. A closed inbox (the app went away) stops."""
    while True:
        try:
            message = inbox.recv()
        except (EOFError, OSError):
            message = ("stop",)
        if message[0] == "cancel":
            tokens.cancel(message[1])
            continue
        jobs.put(message)
        if message[0] == "stop":
            return


def adopt_environment(environment: dict[str, str]) -> None:
    """A fork server's children inherit the environment it started with, not the app's of now (a cache
    folder set since, say): take the parent's."""
    for name in set(os.environ) - set(environment):
        del os.environ[name]
    os.environ.update(environment)


def serve_engine(model_source, device, config, environment, inbox, outbox) -> None:
    """Process target: run the parent's jobs until told to stop."""
    adopt_environment(environment)
    yield_cpu_to_gui()
    jobs: queue.Queue = queue.Queue()
    tokens = CancelTokens()
    threading.Thread(target=_listen, args=(inbox, jobs, tokens), daemon=True, name="engine-inbox").start()
    send_lock = threading.Lock()

    def send(message: tuple) -> None:
        with send_lock:
            outbox.send(message)

    server = EngineServer(EngineJobs(model_source, device, config), send)
    try:
        while True:
            kind, *rest = jobs.get()
            if kind == "stop":
                break
            job, *payload = rest
            server.handle(kind, tuple(payload), tokens)
            send(("done", job))
            if jobs.empty():
                send(("idle",))
    except (BrokenPipeError, EOFError, OSError):
        pass           # the parent went away: nobody to report to
    finally:
        outbox.close()
