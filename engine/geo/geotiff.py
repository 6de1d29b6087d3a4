"""Writing georeferenced GeoTIFFs: tiled, compressed, with overviews, written atomically."""
from __future__ import annotations

import os

import numpy as np
import rasterio
from affine import Affine
from pyproj import CRS
from rasterio.enums import Resampling

from engine.atomic import atomic_path

OVERVIEW_FACTORS = (2, 4, 8, 16, 32)


def write_geotiff(path: str | os.PathLike, image: np.ndarray, transform: Affine, crs: CRS | int | str, *,
                  compress: str | None = None, jpeg_quality: int = 92, block_size: int = 256,
                  nodata: float | None = None, overviews: bool = True) -> None:
    """Write an (H, W) or (H, W, bands) array as a tiled GeoTIFF with internal overviews.

    RGB uint8 defaults to JPEG-in-TIFF (YCbCr), the usual orthophoto storage; anything else to DEFLATE.
    """
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3:
        raise ValueError(f"image must be (H, W) or (H, W, bands), got shape {image.shape}")
    height, width, bands = image.shape
    rgb8 = bands == 3 and image.dtype == np.uint8
    compress = compress or ("jpeg" if rgb8 else "deflate")
    profile = {
        "driver": "GTiff", "width": width, "height": height, "count": bands, "dtype": image.dtype.name,
        "crs": CRS.from_user_input(crs), "transform": transform, "tiled": True,
        "blockxsize": block_size, "blockysize": block_size, "compress": compress, "interleave": "pixel",
    }
    if compress == "jpeg":
        if not rgb8:
            raise ValueError("JPEG compression needs an RGB uint8 image")
        profile.update(photometric="ycbcr", jpeg_quality=int(jpeg_quality))
    elif compress == "deflate":
        profile.update(predictor=2 if np.issubdtype(image.dtype, np.integer) else 3)
    if nodata is not None:
        profile["nodata"] = nodata
    with atomic_path(path, suffix=".tif") as tmp:
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(np.moveaxis(image, 2, 0))
            if rgb8:
                dst.colorinterp = [rasterio.enums.ColorInterp.red, rasterio.enums.ColorInterp.green,
                                   rasterio.enums.ColorInterp.blue]
            factors = [f for f in OVERVIEW_FACTORS if min(width, height) // f >= 64] if overviews else []
            if factors:
                dst.build_overviews(factors, Resampling.average)
                dst.update_tags(ns="rio_overview", resampling="average")
