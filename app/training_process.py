"""The child-process side of a training run started by app.workers.TrainingJob.

Training runs in its own process, not a thread: parts of the training pipeline hold the GIL for 100 ms and
more (GDAL writing a dataset's GeoJSON, colour augmentation), which would freeze the GUI thread. The child
reports through a pipe as tuples: (kind, *values) with kind step / epoch / checkpoint / log / progress,
and last done (TrainSummary) or failed (reason). Anything arriving on `cancel_connection`, or the parent
closing it (the app went away), stops the run at the next step.
No Qt here, so the child starts quickly.
"""
from __future__ import annotations

import os
import threading
import traceback

from app.error_text import one_line
from engine.pipeline import Cancelled, CancelToken
from engine.train import TrainCallbacks, TrainConfig, Trainer

CHILD_NICENESS = 5     # the GUI process stays first in line for the CPU


def yield_cpu_to_gui(niceness: int = CHILD_NICENESS) -> None:
    """Raise the caller's niceness to at least `niceness` (on Linux: the calling thread's only)."""
    try:
        current = os.getpriority(os.PRIO_PROCESS, 0)
        if current < niceness:
            os.setpriority(os.PRIO_PROCESS, 0, niceness)
    except (AttributeError, OSError):
        pass


class PipeCallbacks(TrainCallbacks):
    def __init__(self, connection) -> None:
        self.connection = connection

    def on_step(self, epoch: int, step: int, steps: int, losses: dict[str, float], lr: float) -> None:
        self.connection.send(("step", epoch, step, steps, {k: float(v) for k, v in losses.items()}, float(lr)))

    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        self.connection.send(("epoch", epoch, dict(metrics)))

    def on_checkpoint(self, path) -> None:
        self.connection.send(("checkpoint", str(path)))

    def on_log(self, message: str) -> None:
        self.connection.send(("log", message))

    def on_progress(self, stage: str, done: int, total: int) -> None:
        self.connection.send(("progress", stage, done, total))


def _cancel_when_told(cancel_connection, token: CancelToken) -> None:
    try:
        cancel_connection.recv()
    except (EOFError, OSError):
        pass
    token.cancel()


def train_in_child(config: TrainConfig, resume: bool, overwrite: bool, connection, cancel_connection) -> None:
    """Process target: train, stream progress, send the summary or the reason it failed."""
    yield_cpu_to_gui()     # on Linux it was born niced by its relay thread (app.workers); elsewhere not yet
    token = CancelToken()
    threading.Thread(target=_cancel_when_told, args=(cancel_connection, token), daemon=True,
                     name="cancel-watch").start()
    try:
        summary = Trainer(config, PipeCallbacks(connection), token).run(resume=resume, overwrite=overwrite)
    except Cancelled:
        connection.send(("failed", "cancelled"))
    except Exception as exc:      # config, data and training errors name their file; report them as they are
        traceback.print_exc()
        connection.send(("failed", one_line(exc)))
    else:
        connection.send(("done", summary))
    finally:
        connection.close()
