"""GeoJSON writing per RFC 7946 (WGS84 lon/lat, 7 decimals, counter-clockwise exterior rings), atomically."""
from __future__ import annotations

import os

import geopandas as gpd

from engine.atomic import atomic_path

RFC7946_OPTIONS = {"RFC7946": "YES", "COORDINATE_PRECISION": "7", "WRITE_NAME": "NO"}


def write_geojson(frame: gpd.GeoDataFrame, path: str | os.PathLike) -> None:
    """Write a GeoDataFrame (any CRS) as an RFC 7946 FeatureCollection."""
    if frame.crs is None:
        raise ValueError(f"{path}: the GeoDataFrame has no CRS; cannot convert to WGS84")
    frame = frame.to_crs(4326)
    with atomic_path(path, suffix=".geojson") as tmp:
        tmp.unlink()  # the GeoJSON driver refuses to overwrite an existing file
        frame.to_file(tmp, driver="GeoJSON", engine="pyogrio", layer_options=RFC7946_OPTIONS)
