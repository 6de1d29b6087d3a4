"""Maps: open any GeoTIFF as north-up RGB in a projected CRS (metres) and read windows at any resolution.

Maps whose CRS units are not ground metres (geographic, Web Mercator, feet, GCP- or RPC-georeferenced) are
warped on the fly to the local UTM zone or a map-centred transverse Mercator (engine.geo.ground). 8- and
16-bit, 1 (grey), 3 (RGB) or 4 (RGBA or RGB+NIR) bands, nodata, overviews, tiled or striped layouts are all
read through rasterio.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from pyproj import CRS
from pyproj.exceptions import CRSError
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.warp import calculate_default_transform
from rasterio.windows import Window, from_bounds

from engine.data.geometry import TileFrame, map_to_lonlat
from engine.geo.bands import alpha_band
from engine.geo.errors import MapTooLarge, RasterError, cause_line
from engine.geo.ground import MAX_DISTORTION, body_problem, choose_ground_frame, ground_resolution_m
from engine.geo.regions import REGION_SPAN_KM, region_count

SUPPORTED_BAND_COUNTS = (1, 3, 4)      # grey, RGB, RGB+NIR; an alpha band may follow any of them
GEOTRANSFORM, GCPS, RPCS = "geotransform", "gcps", "rpc"
STRETCH_PERCENTILES = (0.5, 99.5)


@dataclass(frozen=True)
class RasterInfo:
    path: str
    width: int
    height: int
    band_count: int
    dtype: str
    source_crs: str
    warped: bool
    georeferencing: str = GEOTRANSFORM      # geotransform, gcps or rpc
    ground_resolution_m: float = float("nan")   # the map's own metres per pixel on the ground
    crs_note: str = ""                       # why the map is read in its CRS


def file_content_hash(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    """SHA-256 of the file bytes (maps are read once for it; the gallery cache keys on it)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


class MapRaster:
    """A georeferenced map opened for reading. Coordinates are in `crs` (projected, metres)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise RasterError(self.path, "file not found")
        if self.path.stat().st_size == 0:
            raise RasterError(self.path, "file is empty (0 bytes)")
        try:
            self._src = rasterio.open(self.path)
        except rasterio.RasterioIOError as exc:
            raise RasterError(self.path, f"not a readable raster ({cause_line(exc)})") from None
        try:
            self._dataset = self._validate_and_warp(self._src)
        except Exception:
            self._src.close()
            raise
        self._stretch: np.ndarray | None = None

    # ------------------------------------------------------------ opening
    def _validate_and_warp(self, src):
        data_bands = src.count - (alpha_band(src) is not None)
        if data_bands not in SUPPORTED_BAND_COUNTS:
            raise RasterError(self.path, f"unsupported band layout: {src.count} bands "
                                         "(expected 1 grey, 3 RGB or 4 RGB+NIR, each optionally + alpha)")
        if src.dtypes[0] not in ("uint8", "uint16", "int16", "float32"):
            raise RasterError(self.path, f"unsupported sample type {src.dtypes[0]}")
        self.georeferencing, source_crs, extras = _georeferencing(self.path, src)
        problem = body_problem(source_crs)
        if problem:
            raise RasterError(self.path, problem)
        lons, lats = _sample_lonlat(self.path, src, source_crs, extras)
        self.frame = choose_ground_frame(source_crs if self.georeferencing == GEOTRANSFORM else None, lons, lats)
        if self.frame.distortion > MAX_DISTORTION:
            regions = region_count(lons, lats)
            raise MapTooLarge(self.path, f"the map spans {self.frame.span_km:,.0f} km: no single projection keeps "
                                         f"its ground scale within {MAX_DISTORTION:.0%} (best "
                                         f"{_percent(self.frame.distortion)}); cut it with `viewfinder regions "
                                         f"{self.path.name}` into {regions} regions of "
                                         f"~{REGION_SPAN_KM:.0f} km, each in its own ground frame, and use "
                                         "those", regions)
        rotated = abs(src.transform.b) > 1e-12 or abs(src.transform.d) > 1e-12
        if self.frame.keep_source and not rotated:
            return src
        # GDAL warps through the geotransform, GCPs (polynomial) or RPCs, whichever the file has
        return WarpedVRT(src, crs=self.frame.crs.srs, resampling=Resampling.bilinear, **extras)

    def close(self) -> None:
        if self._dataset is not self._src:
            self._dataset.close()
        self._src.close()

    def __enter__(self) -> MapRaster:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------ properties
    @property
    def crs(self):
        return self._dataset.crs

    @property
    def transform(self) -> Affine:
        return self._dataset.transform

    @property
    def width(self) -> int:
        return self._dataset.width

    @property
    def height(self) -> int:
        return self._dataset.height

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in map CRS."""
        b = self._dataset.bounds
        return b.left, b.bottom, b.right, b.top

    @property
    def metres_per_px(self) -> float:
        return float(abs(self.transform.a))

    @property
    def info(self) -> RasterInfo:
        source = self._src.crs or self._extras_crs()
        return RasterInfo(str(self.path), self.width, self.height, self._src.count, self._src.dtypes[0],
                          source.to_string() if source is not None else "", self._dataset is not self._src,
                          self.georeferencing, self.ground_resolution_m, self.frame.reason)

    def _extras_crs(self):
        gcps, crs = self._src.gcps
        return crs if gcps else (CRS.from_epsg(4326) if self._src.rpcs else None)

    @property
    def ground_resolution_m(self) -> float:
        """The map's own ground resolution: mean geodesic pixel size at its centre (metres)."""
        rx, ry = ground_resolution_m(self.transform, self.crs, self.width / 2.0, self.height / 2.0)
        return float(np.sqrt(rx * ry))

    def content_hash(self) -> str:
        return file_content_hash(self.path)

    def centre_lonlat(self) -> tuple[float, float]:
        left, bottom, right, top = self.bounds
        lon, lat = map_to_lonlat(self.crs, (left + right) / 2, (bottom + top) / 2)
        return float(lon), float(lat)

    # ------------------------------------------------------------ reading
    def _alpha_band(self) -> int | None:
        return alpha_band(self._src)        # RGBA, grey + alpha, and the alpha a region's warp adds

    def _stretch_limits(self) -> np.ndarray:
        """Per-band (low, high) for >8-bit data, from a decimated read (uses overviews when present)."""
        if self._stretch is None:
            scale = max(1, int(np.ceil(max(self.width, self.height) / 1024)))
            shape = (max(1, self.height // scale), max(1, self.width // scale))
            data = self._dataset.read(self._colour_bands(), out_shape=(len(self._colour_bands()), *shape),
                                      masked=True, resampling=Resampling.nearest)
            limits = []
            for band in data:
                values = band.compressed()
                limits.append(np.percentile(values, STRETCH_PERCENTILES) if values.size else (0.0, 1.0))
            self._stretch = np.asarray(limits, dtype=np.float64)
        return self._stretch

    def _colour_bands(self) -> list[int]:
        grey = self._src.count == 1 or (self._src.count == 2 and self._alpha_band() == 2)
        return [1] if grey else [1, 2, 3]

    def _to_rgb8(self, data: np.ma.MaskedArray) -> np.ndarray:
        if data.dtype == np.uint8:
            rgb = np.asarray(data.filled(0))
        else:
            limits = self._stretch_limits()
            low, high = limits[:, 0][:, None, None], limits[:, 1][:, None, None]
            scaled = (data.filled(low.min()).astype(np.float64) - low) / np.maximum(high - low, 1e-9)
            rgb = np.clip(scaled * 255.0 + 0.5, 0, 255).astype(np.uint8)
        if rgb.shape[0] == 1:
            rgb = np.repeat(rgb, 3, axis=0)
        return np.moveaxis(rgb, 0, -1)

    def read_bounds(self, bounds: tuple[float, float, float, float], out_size: tuple[int, int],
                    resampling: Resampling = Resampling.bilinear) -> tuple[np.ndarray, np.ndarray]:
        """Read map `bounds` (left, bottom, right, top) into `out_size` (width, height) px.

        Returns (rgb uint8 (H, W, 3), valid bool (H, W)); outside the map and nodata are invalid (black).
        """
        width, height = out_size
        window = from_bounds(*bounds, transform=self.transform)
        inner = _clip_window(window, (width, height), self.width, self.height)
        bands = self._colour_bands()
        data = np.ma.masked_all((len(bands), height, width), dtype=self._src.dtypes[0])
        valid = np.zeros((height, width), dtype=bool)
        if inner is not None:
            source, (x0, y0, x1, y1) = inner
            try:
                part = self._dataset.read(bands, window=source, out_shape=(len(bands), y1 - y0, x1 - x0),
                                          resampling=resampling, masked=True)
                part_valid = ~np.all(np.ma.getmaskarray(part), axis=0)  # GDAL: nodata where every band is
                alpha = self._alpha_band()
                if alpha is not None:
                    a = self._dataset.read(alpha, window=source, out_shape=(y1 - y0, x1 - x0),
                                           resampling=Resampling.nearest)
                    part_valid &= a > 0
            except rasterio.RasterioIOError as exc:
                raise RasterError(self.path, f"corrupt raster data ({cause_line(exc)})") from None
            data[:, y0:y1, x0:x1] = part
            valid[y0:y1, x0:x1] = part_valid
        rgb = self._to_rgb8(data)
        rgb[~valid] = 0
        return rgb, valid

    def read_tile(self, tile: TileFrame) -> tuple[np.ndarray, np.ndarray]:
        """Read a north-up tile at the tile's own metres per pixel."""
        left, bottom, right, top = tile.footprint.bounds
        return self.read_bounds((left, bottom, right, top), (tile.width_px, tile.height_px))

    def read_overview(self, max_side: int = 2048) -> tuple[np.ndarray, Affine]:
        """The whole map decimated so its longer side is at most `max_side`; returns (rgb, its transform)."""
        scale = max(1.0, max(self.width, self.height) / max_side)
        width, height = max(1, int(round(self.width / scale))), max(1, int(round(self.height / scale)))
        rgb, _ = self.read_bounds(self.bounds, (width, height), Resampling.average)
        left, bottom, right, top = self.bounds
        return rgb, Affine((right - left) / width, 0, left, 0, -(top - bottom) / height, top)


def _georeferencing(path, src):
    """(kind, CRS of the control data, WarpedVRT arguments); RasterError when the file has none."""
    if src.crs is not None and src.transform != Affine.identity():
        return GEOTRANSFORM, CRS.from_user_input(src.crs), {}
    gcps, gcp_crs = src.gcps
    if gcps and gcp_crs is not None:
        if len(gcps) < 3:
            raise RasterError(path, f"only {len(gcps)} ground control points (at least 3 are needed)")
        return GCPS, CRS.from_user_input(gcp_crs), {"src_crs": gcp_crs}
    if src.rpcs is not None:
        return RPCS, CRS.from_epsg(4326), {"src_crs": "EPSG:4326"}
    if gcps:
        raise RasterError(path, "has ground control points but no CRS for them")
    if src.crs is None and src.transform != Affine.identity():
        raise RasterError(path, "raster has a geotransform but no CRS (add one, e.g. gdal_edit.py -a_srs)")
    raise RasterError(path, "raster has no georeferencing (no CRS + geotransform, ground control points or RPCs)")


def _sample_lonlat(path, src, source_crs, extras, n: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """A n x n grid of the map's points in lon/lat (through GCPs / RPCs when it has no geotransform)."""
    cols, rows = np.meshgrid(np.linspace(0, src.width, n), np.linspace(0, src.height, n))
    try:
        if not extras:
            xs, ys = _apply(src.transform, cols, rows)
            lons, lats = map_to_lonlat(source_crs, xs, ys)
        else:
            kind = {"gcps": src.gcps[0]} if src.gcps[0] else {"rpcs": src.rpcs}
            transform, _, _ = calculate_default_transform(source_crs, "EPSG:4326", src.width, src.height, **kind)
            lons, lats = _apply(transform, cols, rows)
    except (CRSError, ValueError, RuntimeError, rasterio.errors.RasterioError) as exc:
        raise RasterError(path, f"its georeferencing cannot be converted to lon/lat ({cause_line(exc)})") from None
    lons, lats = np.asarray(lons, float), np.asarray(lats, float)
    if not (np.isfinite(lons).all() and np.isfinite(lats).all()) or np.abs(lats).max() > 90.0 + 1e-6:
        raise RasterError(path, "its georeferencing puts it off the Earth (coordinates outside lon/lat range)")
    return lons, lats


def _apply(t: Affine, cols: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return t.a * cols + t.b * rows + t.c, t.d * cols + t.e * rows + t.f


def _percent(value: float) -> str:
    return "unbounded" if not np.isfinite(value) else f"{value:.1%}"


def _clip_window(window: Window, out_size: tuple[int, int], width: int, height: int):
    """Part of a (possibly out-of-range) source window inside the raster, and the output pixels it fills.

    Returns (source window, (x0, y0, x1, y1) output pixel range) or None. Warped rasters cannot read
    boundless, so every read goes through this.
    """
    out_w, out_h = out_size
    sx, sy = out_w / window.width, out_h / window.height
    x0 = int(np.clip(np.round((0 - window.col_off) * sx), 0, out_w))
    x1 = int(np.clip(np.round((width - window.col_off) * sx), 0, out_w))
    y0 = int(np.clip(np.round((0 - window.row_off) * sy), 0, out_h))
    y1 = int(np.clip(np.round((height - window.row_off) * sy), 0, out_h))
    if x1 <= x0 or y1 <= y0:
        return None
    c0 = max(window.col_off + x0 / sx, 0.0)
    r0 = max(window.row_off + y0 / sy, 0.0)
    c1 = min(window.col_off + x1 / sx, float(width))
    r1 = min(window.row_off + y1 / sy, float(height))
    return Window(c0, r0, c1 - c0, r1 - r0), (x0, y0, x1, y1)
