"""The one API the app and the CLI call: open maps, index them, localise photos, export results."""
from engine.geo.raster import MapRaster as open_map
from engine.pipeline.results import (DONE, FAILED, MANUAL, Candidate, GeoGrid, LocalizationResult, Position,
                                     RankedPosition)
from engine.progress import CancelToken, Cancelled, ProgressCallback

__all__ = [
    "DONE", "FAILED", "MANUAL", "Candidate", "CancelToken", "Cancelled", "GeoGrid", "LocalizationResult",
    "Position", "ProgressCallback", "RankedPosition", "open_map",
]
