"""Narrow-FoV queries cut from 360-degree panoramas (CVUSA, CVACT, VIGOR, CV-Cities), repeatable per seed.

Convention: these panoramas are north-aligned with north at the centre column and bearings growing to the
right (clockwise, as seen from inside), the layout the public polar-transform code assumes (its aerial polar
image puts south at column 0, west at W/4, north at W/2, east at 3W/4). A crop of width FoV/360 of the
panorama starting at a random column is a photo whose heading is the bearing of the crop's centre column.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.data.datasets.records import stable_item_key
from engine.data.geometry import panorama_column_bearing

#: The FoV settings CAFR evaluates CVUSA and CVACT at.
BENCHMARK_FOVS = (360.0, 180.0, 90.0, 70.0)


@dataclass(frozen=True)
class PanoramaCrop:
    """Columns [start_column, start_column + width_px) of a panorama (wrapping around) and their geometry."""

    start_column: int
    width_px: int
    panorama_width_px: int
    fov_deg: float                 # width_px / panorama_width_px * 360, after rounding to whole columns
    heading_deg: float | None      # bearing of the crop's centre; None when the panorama's north is unknown


def choose_panorama_crop(panorama_width_px: int, fov_deg: float, seed: int, item_id: str,
                         north_x_fraction: float | None, *, epoch: int = 0,
                         random_orientation: bool = True) -> PanoramaCrop:
    """The crop of one item at one FoV: the same for the same (seed, item, FoV, epoch), on any machine.

    random_orientation=False centres the crop on north instead (heading 0).
    """
    if not 0.0 < fov_deg <= 360.0:
        raise ValueError(f"panorama crop FoV must be in (0, 360], got {fov_deg}")
    width = int(panorama_width_px)
    crop_width = min(width, max(1, round(width * fov_deg / 360.0)))
    if random_orientation:
        rng = np.random.default_rng([int(seed), stable_item_key(item_id), round(fov_deg * 1000), int(epoch)])
        start = int(rng.integers(0, width))
    else:
        north_x = (north_x_fraction if north_x_fraction is not None else 0.5) * width
        start = int(np.floor(north_x - crop_width / 2.0 + 0.5)) % width
    heading = None
    if north_x_fraction is not None:
        heading = float(panorama_column_bearing(start + crop_width / 2.0, width, north_x_fraction * width))
    return PanoramaCrop(start, crop_width, width, crop_width * 360.0 / width, heading)


def crop_panorama(panorama: np.ndarray, crop: PanoramaCrop) -> np.ndarray:
    """Cut `crop` out of an (H, W, ...) panorama array, wrapping around its seam."""
    if panorama.shape[1] != crop.panorama_width_px:
        raise ValueError(f"crop was chosen for a {crop.panorama_width_px} px wide panorama, "
                         f"got {panorama.shape[1]} px")
    columns = (crop.start_column + np.arange(crop.width_px)) % crop.panorama_width_px
    return np.take(panorama, columns, axis=1)
