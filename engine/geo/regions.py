"""Maps too large for one projection, cut into regions that each carry their own ground frame.

A continent-size raster has no single metric CRS that keeps ground scale within `MAX_DISTORTION`. It is
split into regions about `REGION_SPAN_KM` across (neighbours overlap by `REGION_OVERLAP_KM`, so a camera and
its search window near an edge lie whole inside one of them). Each region is written as a small GDAL VRT that
warps the source on the fly into a transverse Mercator centred on the region, where a CRS metre is a ground
metre to within 0.1 %: every part of Viewfinder then opens a region as an ordinary map.
"""
from __future__ import annotations

import math
import os
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from pyproj import CRS
from rasterio import shutil as rio_shutil
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.warp import calculate_default_transform, transform_bounds
from rasterio.windows import from_bounds

from engine.geo.bands import alpha_band
from engine.geo.errors import RasterError, cause_line
from engine.geo.ground import local_tmerc
from engine.geo.output_set import check_targets, write_together

REGION_SPAN_KM = 500.0        # a transverse Mercator 250 km off its meridian is 0.08 % off true scale
REGION_OVERLAP_KM = 5.0
KM_PER_DEGREE_LAT = 111.2
MERCATOR_LAT_LIMIT = 85.05    # Web Mercator's own edge: beyond it there is no map
SOURCE_HASH_KEY = "VIEWFINDER_SOURCE_SHA256"


@dataclass(frozen=True)
class MapRegion:
    name: str                                       # r{row}c{col}, row 0 in the north
    lonlat_bounds: tuple[float, float, float, float]  # west, south, east, north (overlap included)

    @property
    def centre(self) -> tuple[float, float]:
        west, south, east, north = self.lonlat_bounds
        return (west + east) / 2.0, (south + north) / 2.0

    @property
    def crs(self) -> CRS:
        return local_tmerc(*self.centre)


def plan_regions(lonlat_bounds: tuple[float, float, float, float], span_km: float = REGION_SPAN_KM,
                 overlap_km: float = REGION_OVERLAP_KM) -> list[MapRegion]:
    """Cut lon/lat bounds into bands of latitude, each into columns no wider than `span_km` on its widest
    parallel (the one nearest the equator), every region grown by `overlap_km` and clipped to the bounds."""
    west, south, east, north = lonlat_bounds
    rows = max(1, math.ceil((north - south) * KM_PER_DEGREE_LAT / span_km))
    band = (north - south) / rows
    pad_lat = overlap_km / KM_PER_DEGREE_LAT
    regions = []
    for row in range(rows):
        top = north - row * band
        bottom = top - band
        widest = 0.0 if bottom <= 0.0 <= top else min(abs(bottom), abs(top))
        km_per_degree_lon = KM_PER_DEGREE_LAT * max(math.cos(math.radians(widest)), 1e-3)
        cols = max(1, math.ceil((east - west) * km_per_degree_lon / span_km))
        step = (east - west) / cols
        pad_lon = overlap_km / km_per_degree_lon
        for col in range(cols):
            left = west + col * step
            bounds = (max(west, left - pad_lon), max(south, bottom - pad_lat),
                      min(east, left + step + pad_lon), min(north, top + pad_lat))
            regions.append(MapRegion(f"r{row}c{col}", bounds))
    return regions


def source_lonlat_bounds(path: Path, src) -> tuple[float, float, float, float]:
    """The source's extent in lon/lat; RasterError for files a region cannot be cut from."""
    if src.crs is None or src.transform.is_identity:
        raise RasterError(path, "only maps georeferenced by a CRS and geotransform can be cut into regions "
                                "(control points or RPCs: warp the file first, e.g. gdalwarp)")
    if abs(src.transform.b) > 1e-12 or abs(src.transform.d) > 1e-12:
        raise RasterError(path, "rotated geotransforms cannot be cut into regions (warp it north-up first)")
    west, south, east, north = transform_bounds(src.crs, "EPSG:4326", *src.bounds, densify_pts=21)
    crs = CRS.from_user_input(src.crs)
    if crs.is_geographic and east > 180.0 + 1e-9:
        raise RasterError(path, "maps crossing the antimeridian cannot be cut into regions yet")
    method = crs.coordinate_operation.method_name if crs.coordinate_operation is not None else ""
    limit = MERCATOR_LAT_LIMIT if "Mercator" in method and "Transverse" not in method else 90.0
    return west, max(south, -limit), east, min(north, limit)


def _alpha_arguments(src) -> dict:
    """The warp's alpha: the source's own alpha band carried through, else one added for outside the map."""
    band = alpha_band(src)
    return {"src_alpha": band, "dst_alpha": band} if band is not None else {"add_alpha": True}


def _region_vrt_bytes(src, region: MapRegion, folder: Path, source_hash: str, source_name: str) -> bytes:
    """GDAL's warped-VRT XML for one region, written beside its target so the source path it holds
    (relative to the VRT) stays right, with the source's content hash in its metadata."""
    crs = region.crs
    left, bottom, right, top = transform_bounds("EPSG:4326", src.crs, *region.lonlat_bounds, densify_pts=21)
    window = from_bounds(left, bottom, right, top, transform=src.transform)
    transform, width, height = calculate_default_transform(
        src.crs, crs, max(1, round(window.width)), max(1, round(window.height)),
        left=left, bottom=bottom, right=right, top=top)
    fd, tmp = tempfile.mkstemp(prefix=f".{region.name}.", suffix=".vrt", dir=folder)
    os.close(fd)
    try:
        with WarpedVRT(src, crs=crs.srs, transform=transform, width=width, height=height,
                       resampling=Resampling.bilinear, **_alpha_arguments(src)) as vrt:
            rio_shutil.copy(vrt, tmp, driver="VRT")
        tree = ET.parse(tmp)
    finally:
        Path(tmp).unlink(missing_ok=True)
    root = tree.getroot()
    metadata = ET.Element("Metadata")
    for key, value in ((SOURCE_HASH_KEY, source_hash), ("VIEWFINDER_SOURCE", source_name),
                       ("VIEWFINDER_REGION", region.name),
                       ("VIEWFINDER_REGION_LONLAT", ",".join(f"{v:.6f}" for v in region.lonlat_bounds))):
        item = ET.SubElement(metadata, "MDI", key=key)
        item.text = value
    root.insert(0, metadata)
    return ET.tostring(root, encoding="utf-8")


def region_paths(path: Path, folder: Path, regions: list[MapRegion]) -> list[Path]:
    return [folder / f"{path.stem}-{region.name}.vrt" for region in regions]


def write_regions(path: str | os.PathLike, folder: str | os.PathLike | None = None,
                  span_km: float = REGION_SPAN_KM) -> list[tuple[MapRegion, Path]]:
    """Cut the map at `path` into regions and write one VRT each into `folder` (default: beside the map),
    all or none. The VRTs read the source where it lies: keep them together."""
    from engine.geo.raster import file_content_hash

    path = Path(path)
    folder = Path(folder) if folder is not None else path.parent
    if not folder.is_dir():
        raise RasterError(path, f"output folder {folder} does not exist")
    try:
        src = rasterio.open(path)
    except rasterio.RasterioIOError as exc:
        raise RasterError(path, f"not a readable raster ({cause_line(exc)})") from None
    with src:
        regions = plan_regions(source_lonlat_bounds(path, src), span_km)
        check_targets(region_paths(path, folder, regions))     # before GDAL stages anything in the folder
        source_hash = file_content_hash(path)
        name = os.path.relpath(path, folder)
        contents = {target: _region_vrt_bytes(src, region, folder, source_hash, name)
                    for region, target in zip(regions, region_paths(path, folder, regions), strict=True)}
    written = write_together(contents)
    return list(zip(regions, written, strict=True))


def region_count(lons: np.ndarray, lats: np.ndarray, span_km: float = REGION_SPAN_KM) -> int:
    """How many regions a map whose points are (lons, lats) would be cut into (for the refusal message)."""
    return len(plan_regions((float(np.min(lons)), float(np.min(lats)), float(np.max(lons)), float(np.max(lats))),
                            span_km))
