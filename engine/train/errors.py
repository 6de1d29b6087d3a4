"""Errors a training run stops with."""
from __future__ import annotations

from pathlib import Path

from engine.errors import ViewfinderError


class TrainingError(ViewfinderError, RuntimeError):
    """Training cannot start or go on (bad resume point, output folder in use, ...)."""


class NonFiniteLossError(TrainingError):
    """The loss became NaN or infinite; the run stopped before the bad step changed the weights."""

    def __init__(self, message: str, epoch: int, step: int, losses: dict[str, float],
                 checkpoint: Path | None) -> None:
        super().__init__(message)
        self.epoch, self.step, self.losses, self.checkpoint = epoch, step, losses, checkpoint
