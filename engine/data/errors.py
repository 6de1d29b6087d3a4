"""Typed errors of the data layer; every message names the file or folder and the problem."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.errors import ViewfinderError


class DatasetError(ViewfinderError, ValueError):
    """A dataset folder or index file that cannot be used at all."""


class EmptyDatasetError(DatasetError):
    """A dataset folder that holds no usable item (after skipping missing and corrupt files)."""


@dataclass(frozen=True)
class SkippedFile:
    """A file a reader or a Dataset left out and why ("missing", "unreadable image ...", "malformed ...")."""

    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


class UnusableItemError(DatasetError):
    """One pair that cannot be turned into a sample (an image that does not decode, a camera off its tile)."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = Path(path)
        self.reason = reason
