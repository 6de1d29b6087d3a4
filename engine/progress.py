"""Progress reporting and cancellation for long engine work (indexing, batch localisation, training).

Work calls `progress(stage, done, total)` and checks `cancel.raise_if_cancelled()` between units of work;
the CLI turns progress into bars, the app into its status bar and dialogs, and sets the token to stop.
"""
from __future__ import annotations

import threading
from collections.abc import Callable

from engine.errors import ViewfinderError

ProgressCallback = Callable[[str, int, int], None]


class Cancelled(ViewfinderError):
    """Work stopped because its cancel token was set."""


class CancelToken:
    """Thread-safe flag: one thread (the GUI) sets it, the worker checks it."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled("cancelled")


def no_progress(stage: str, done: int, total: int) -> None:
    """The default progress callback: report nothing."""
