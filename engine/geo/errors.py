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


class MapTooLarge(RasterError):
    """No single projection holds the map's ground scale: it must be cut into `region_count` regions
    (engine.geo.regions.write_regions) and each used as a map."""

    def __init__(self, path, problem: str, region_count: int) -> None:
        self.region_count = region_count
        super().__init__(path, problem)

    def __reduce__(self):       # crosses process boundaries (the app's engine process) whole
        return (type(self), (self.path, self.problem, self.region_count))


def cause_line(exc: BaseException) -> str:
    """The first line of the most telling message: rasterio wraps GDAL's cause ("TIFFReadEncodedTile() failed",
    "LZW decode error") in "Read failed. See previous exception for details.", so the chain is searched."""
    chain: list[str] = []
    seen: BaseException | None = exc
    while seen is not None and len(chain) < 8:
        text = str(seen).strip()
        if text and "see previous exception" not in text.lower():
            chain.append(text.splitlines()[0])
        seen = seen.__cause__ or seen.__context__
    return chain[0] if chain else exc.__class__.__name__
