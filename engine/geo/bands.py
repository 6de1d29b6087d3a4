"""Which band of a raster is its alpha: one rule for reading maps and for warping them into regions."""
from __future__ import annotations

from rasterio.enums import ColorInterp

#: Band counts whose last band may be alpha: grey + alpha, RGB + alpha, RGB + NIR + alpha.
COUNTS_WITH_ALPHA = (2, 4, 5)


def alpha_band(dataset) -> int | None:
    """The 1-based index of the dataset's alpha band (always the last one), or None."""
    count = dataset.count
    if count in COUNTS_WITH_ALPHA and dataset.colorinterp[-1] == ColorInterp.alpha:
        return count
    return None
