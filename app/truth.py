"""Scene truth (truth.geojson beside a synthetic/demo map or its photos) in the map CRS, for the truth layer."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePath

import numpy as np
import shapely

from engine.pipeline import lonlat_to_map, read_truth

TRUTH_FILE = "truth.geojson"


@dataclass
class PhotoTruth:
    """Where a photo was really taken (map CRS) and the map region it really shows."""

    x: float
    y: float
    heading_deg: float | None = None
    fov_deg: float | None = None
    overlap: object | None = None       # shapely geometry, map CRS


def photo_stem(path: str) -> str:
    return PurePath(path.replace("\\", "/")).stem


def truth_file_near(*paths: str) -> Path | None:
    """truth.geojson in the folder of a path or the folder above it (scene/photos/x.jpg -> scene/)."""
    for path in paths:
        folder = Path(path).resolve().parent
        for candidate in (folder / TRUTH_FILE, folder.parent / TRUTH_FILE):
            if candidate.is_file():
                return candidate
    return None


def load_truth(path: Path, crs) -> dict[str, PhotoTruth]:
    """{photo stem: truth in `crs`}; ValueError/OSError when the file is not a truth table."""
    def to_map(coords: np.ndarray) -> np.ndarray:
        x, y = lonlat_to_map(crs, coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    truths = {}
    for stem, record in read_truth(path).items():
        overlap = shapely.transform(record.overlap_lonlat, to_map) if record.overlap_lonlat is not None else None
        truths[stem] = PhotoTruth(record.x, record.y, record.heading_deg, record.fov_deg, overlap)
    return truths
