"""Typed errors for geodata input; messages always name the file and the problem."""
from __future__ import annotations

from engine.errors import ViewfinderError


class GeoInputError(ViewfinderError, ValueError):
    """A map or photo file cannot be used. `path` is the offending file."""

    def __init__(self, path, problem: str) -> None:
        self.path, self.problem = str(path), problem
        super().__init__(f"{path}: {problem}")


class RasterError(GeoInputError):
    """A raster cannot be used as a map (unreadable, no georeferencing, unsupported bands)."""
