"""Exports of localisation results: GeoJSON (RFC 7946), CSV and a self-contained folium HTML map.

Inputs are LocalizationResult objects (engine.pipeline.results); only their attributes are used here.
Every file is written atomically. In the HTML every user-provided string (photo names, errors) is escaped;
the map and the thumbnails are embedded as data URLs. The page loads Leaflet from a CDN when opened (folium
cannot inline it), and shows no web base map unless asked: opening it then reveals nothing about the place.
"""
from __future__ import annotations

import base64
import csv
import html
import io
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
from affine import Affine
from matplotlib import colormaps
from PIL import Image
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.warp import calculate_default_transform, reproject
from shapely.geometry import Point

from engine.data.geometry import fov_wedge, map_to_lonlat
from engine.geo.atomic import write_text_atomic
from engine.geo.errors import GeoInputError
from engine.geo.geojson import write_geojson
from engine.geo.photo import load_photo
from engine.geo.raster import MapRaster

if TYPE_CHECKING:
    from engine.pipeline.results import GeoGrid, LocalizationResult

WEB_MERCATOR = "EPSG:3857"
POSITION, OVERLAP, FOOTPRINT = "position", "overlap", "footprint"
CSV_COLUMNS = ("photo", "status", "rank", "method", "lon", "lat", "x", "y", "crs", "heading_deg", "fov_deg",
               "score", "confidence", "support", "error", "photo_sha256", "model_id", "map_id", "time", "path")


def escape_html(text: object) -> str:
    """HTML-escape a user string for folium, which places popups and tooltips in JavaScript template
    literals: backticks, `$` and backslashes are escaped too so nothing can be interpolated."""
    return (html.escape(str(text), quote=True).replace("`", "&#96;").replace("$", "&#36;")
            .replace("\\", "&#92;"))


def _localised(results: Iterable[LocalizationResult]) -> list[LocalizationResult]:
    return [r for r in results if r.status != "failed" and (r.positions or r.manual_position is not None)]


# ---------------------------------------------------------------- GeoJSON
def results_frame(results: Iterable[LocalizationResult]) -> gpd.GeoDataFrame:
    """Positions (Points), overlap regions and candidate footprints (Polygons) of every result, in EPSG:4326.

    Properties: kind (position / overlap / footprint), photo (file name), rank, score, confidence,
    heading_deg, fov_deg, photo_sha256, model_id, map_id, method (cafr / manual), time, status.
    """
    frames = []
    for result in _localised(results):
        common = {"photo": result.photo_name, "fov_deg": result.fov_deg, "photo_sha256": result.photo_sha256,
                  "model_id": result.model_id, "map_id": result.map_id, "time": result.created,
                  "status": result.status}
        rows, geometries = [], []
        if result.manual_position is not None:
            best = result.best
            rows.append({"kind": POSITION, "rank": 1, "score": best.score, "confidence": 1.0,
                         "heading_deg": best.heading_deg, "method": "manual", **common})
            geometries.append(Point(result.manual_position.x, result.manual_position.y))
        for position in result.positions:
            rows.append({"kind": POSITION, "rank": position.rank, "score": position.score,
                         "confidence": position.confidence, "heading_deg": position.heading_deg,
                         "method": "cafr", **common})
            geometries.append(Point(position.position.x, position.position.y))
        for candidate in result.candidates:
            values = {"rank": candidate.rank, "score": candidate.score, "confidence": candidate.confidence,
                      "heading_deg": candidate.heading_deg, "method": "cafr", **common}
            if candidate.overlap_region is not None:
                rows.append({"kind": OVERLAP, **values})
                geometries.append(candidate.overlap_region)
            rows.append({"kind": FOOTPRINT, **values})
            geometries.append(candidate.footprint)
        for row in rows:   # readable numbers; coordinates keep their own 7 decimals
            row.update(score=round(row["score"], 6), confidence=round(row["confidence"], 6),
                       heading_deg=round(row["heading_deg"], 2),
                       fov_deg=None if row["fov_deg"] is None else round(row["fov_deg"], 2))
        frames.append(gpd.GeoDataFrame(rows, geometry=geometries, crs=CRS.from_user_input(result.crs)).to_crs(4326))
    columns = ["kind", "photo", "rank", "score", "confidence", "heading_deg", "fov_deg", "photo_sha256",
               "model_id", "map_id", "method", "time", "status", "geometry"]
    if not frames:
        return gpd.GeoDataFrame({c: [] for c in columns[:-1]}, geometry=[], crs=4326)
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True)[columns], geometry="geometry", crs=4326)


def write_results_geojson(results: Iterable[LocalizationResult], path: str | os.PathLike) -> Path:
    """RFC 7946 FeatureCollection: lon/lat (WGS84), 7 decimals, counter-clockwise exterior rings."""
    write_geojson(results_frame(results), path)
    return Path(path)


def write_results_json(results: Iterable[LocalizationResult], path: str | os.PathLike) -> Path:
    """The full results (candidates, attention grids, score surfaces) as a JSON list; read back with
    LocalizationResult.from_json on each item."""
    write_text_atomic(path, json.dumps([result.to_json() for result in results]))
    return Path(path)


# ---------------------------------------------------------------- CSV
def _csv_rows(result: LocalizationResult) -> list[dict]:
    common = {"photo": result.photo_name, "status": result.status, "crs": result.crs, "fov_deg": result.fov_deg,
              "photo_sha256": result.photo_sha256, "model_id": result.model_id, "map_id": result.map_id,
              "time": result.created, "path": result.photo}
    if result.status == "failed" or not (result.positions or result.manual_position):
        return [{**common, "error": result.error or "no position found"}]
    rows = []
    if result.manual_position is not None:
        p = result.manual_position
        rows.append({**common, "rank": 1, "method": "manual", "lon": f"{p.lon:.7f}", "lat": f"{p.lat:.7f}",
                     "x": f"{p.x:.3f}", "y": f"{p.y:.3f}", "confidence": 1.0})
    for ranked in result.positions:
        p = ranked.position
        rows.append({**common, "rank": ranked.rank, "method": "cafr", "lon": f"{p.lon:.7f}",
                     "lat": f"{p.lat:.7f}", "x": f"{p.x:.3f}", "y": f"{p.y:.3f}",
                     "heading_deg": f"{ranked.heading_deg:.1f}", "score": f"{ranked.score:.5f}",
                     "confidence": f"{ranked.confidence:.5f}", "support": " ".join(map(str, ranked.support))})
    return rows


def write_results_csv(results: Iterable[LocalizationResult], path: str | os.PathLike) -> Path:
    """One row per ranked position (failed photos: one row with the error)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for result in results:
        writer.writerows({key: ("" if value is None else value) for key, value in row.items()}
                         for row in _csv_rows(result))
    write_text_atomic(path, buffer.getvalue())
    return Path(path)


# ---------------------------------------------------------------- HTML
def _png_data_url(rgba: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(rgba).save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _to_web_mercator(bands: np.ndarray, transform: Affine, crs, nearest_bands: Sequence[int] = ()
                     ) -> tuple[np.ndarray, list[list[float]]]:
    """Reproject (bands, H, W) uint8 to EPSG:3857; returns the array and its [[south, west], [north, east]]."""
    count, height, width = bands.shape
    left, top = transform @ (0, 0)
    right, bottom = transform @ (width, height)
    dst_transform, dst_width, dst_height = calculate_default_transform(
        crs, WEB_MERCATOR, width, height, left=min(left, right), bottom=min(top, bottom),
        right=max(left, right), top=max(top, bottom))
    out = np.zeros((count, dst_height, dst_width), dtype=np.uint8)
    for band in range(count):
        reproject(bands[band], out[band], src_transform=transform, src_crs=crs, dst_transform=dst_transform,
                  dst_crs=WEB_MERCATOR, src_nodata=None, dst_nodata=0,
                  resampling=Resampling.nearest if band in nearest_bands else Resampling.bilinear)
    west, north = dst_transform @ (0, 0)
    east, south = dst_transform @ (dst_width, dst_height)
    lons, lats = map_to_lonlat(WEB_MERCATOR, [west, east], [south, north])
    return out, [[float(lats[0]), float(lons[0])], [float(lats[1]), float(lons[1])]]


def map_overlay(raster: MapRaster, max_side: int = 2048) -> tuple[str, list[list[float]]]:
    """The map decimated to `max_side`, reprojected to Web Mercator, as a PNG data URL and its lat/lon bounds."""
    scale = max(1.0, max(raster.width, raster.height) / max_side)
    width, height = max(1, round(raster.width / scale)), max(1, round(raster.height / scale))
    rgb, valid = raster.read_bounds(raster.bounds, (width, height), Resampling.average)
    left, bottom, right, top = raster.bounds
    transform = Affine((right - left) / width, 0, left, 0, -(top - bottom) / height, top)
    bands = np.concatenate([np.moveaxis(rgb, -1, 0), (valid * 255).astype(np.uint8)[None]])
    warped, bounds = _to_web_mercator(bands, transform, raster.crs, nearest_bands=(3,))
    return _png_data_url(np.moveaxis(warped, 0, -1)), bounds


def attention_overlay(grid: GeoGrid, upsample: int = 8) -> tuple[str, list[list[float]]]:
    """An attention map as a translucent heat image (alpha grows with attention) in Web Mercator."""
    values = np.asarray(grid.values, dtype=np.float64)
    peak = np.nanmax(values) if np.isfinite(values).any() else 0.0
    norm = np.nan_to_num(values / peak if peak > 0 else np.zeros_like(values))
    colours = colormaps["inferno"](norm)
    colours[..., 3] = 0.15 + 0.7 * norm
    rgba = np.moveaxis((colours * 255).round().astype(np.uint8), -1, 0)
    rgba = rgba.repeat(upsample, axis=1).repeat(upsample, axis=2)   # crisp cells after reprojection
    transform = grid.transform @ Affine.scale(1.0 / upsample)
    warped, bounds = _to_web_mercator(rgba, transform, CRS.from_user_input(grid.crs), nearest_bands=(0, 1, 2, 3))
    return _png_data_url(np.moveaxis(warped, 0, -1)), bounds


def photo_thumbnail(path: str | os.PathLike, max_side: int = 240) -> str | None:
    """A small JPEG data URL of the photo (EXIF orientation applied), or None if it cannot be read."""
    try:
        image = Image.fromarray(load_photo(path).rgb)
    except GeoInputError:
        return None
    image.thumbnail((max_side, max_side))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _latlon_ring(geometry, crs) -> list[list[list[float]]]:
    """Exterior rings of a (multi)polygon in map CRS as folium [lat, lon] lists."""
    polygons = getattr(geometry, "geoms", [geometry])
    rings = []
    for polygon in polygons:
        xs, ys = polygon.exterior.coords.xy
        lons, lats = map_to_lonlat(crs, np.asarray(xs), np.asarray(ys))
        rings.append([[float(lat), float(lon)] for lon, lat in zip(lons, lats)])
    return rings


def _popup(result: LocalizationResult, thumbnail: str | None) -> str:
    best = result.best
    rows = [("photo", result.photo_name), ("file", result.photo), ("method", result.method), ("lon, lat",
            f"{best.position.lon:.7f}, {best.position.lat:.7f}"), ("confidence", f"{best.confidence:.3f}"),
            ("score", f"{best.score:.3f}"), ("heading", f"{best.heading_deg:.0f}°"),
            ("FoV", f"{result.fov_deg:.0f}°" if result.fov_deg else "unknown")]
    table = "".join(f"<tr><th style='text-align:left'>{escape_html(k)}</th><td>{escape_html(v)}</td></tr>"
                    for k, v in rows)
    image = f"<img src='{thumbnail}' style='max-width:240px'><br>" if thumbnail else ""
    return f"<div>{image}<table>{table}</table></div>"


def write_results_html(results: Iterable[LocalizationResult], map_path: str | os.PathLike,
                       path: str | os.PathLike, *, attention: bool = True, thumbnails: bool = True,
                       basemap: str | None = None, max_map_side: int = 2048) -> Path:
    """An HTML map: the satellite map, each photo's positions (thumbnail popups), candidate footprints,
    overlap regions, FoV wedge and (optionally) the best candidate's attention heatmap."""
    results = list(results)
    with MapRaster(map_path) as raster:
        overlay, bounds = map_overlay(raster, max_map_side)
        crs = raster.crs
    centre = [(bounds[0][0] + bounds[1][0]) / 2, (bounds[0][1] + bounds[1][1]) / 2]
    page = folium.Map(location=centre, tiles=basemap, control_scale=True, max_zoom=22)
    folium.raster_layers.ImageOverlay(overlay, bounds, name="satellite map", pixelated=False).add_to(page)
    for index, result in enumerate(_localised(results)):
        name = escape_html(result.photo_name)
        group = folium.FeatureGroup(name=f"photo: {name}")
        for candidate in result.candidates:
            tip = escape_html(f"{result.photo_name}: candidate {candidate.rank}, score {candidate.score:.3f}, "
                              f"confidence {candidate.confidence:.3f}")
            for ring in _latlon_ring(candidate.footprint, crs):
                folium.Polygon(ring, color="#3388ff", weight=1, fill=False, tooltip=tip).add_to(group)
            if candidate.overlap_region is not None:
                for ring in _latlon_ring(candidate.overlap_region, crs):
                    folium.Polygon(ring, color="#ff7800", weight=1, fill=True, fill_opacity=0.25,
                                   tooltip=escape_html(f"{result.photo_name}: overlap region of candidate "
                                                       f"{candidate.rank}")).add_to(group)
        best = result.best
        if result.fov_deg:
            wedge = fov_wedge((best.position.x, best.position.y), best.heading_deg, result.fov_deg, 40.0)
            for ring in _latlon_ring(wedge, crs):
                folium.Polygon(ring, color="#e31a1c", weight=1, fill=True, fill_opacity=0.2).add_to(group)
        for ranked in result.positions[1:]:
            folium.CircleMarker([ranked.position.lat, ranked.position.lon], radius=4, color="#e31a1c",
                                tooltip=escape_html(f"{result.photo_name}: position {ranked.rank}, "
                                                    f"confidence {ranked.confidence:.3f}")).add_to(group)
        thumbnail = photo_thumbnail(result.photo) if thumbnails else None
        folium.Marker([best.position.lat, best.position.lon], tooltip=name,
                      popup=folium.Popup(_popup(result, thumbnail), max_width=280)).add_to(group)
        group.add_to(page)
        if attention and result.candidates and result.candidates[0].attention:
            image, grid_bounds = attention_overlay(result.candidates[0].attention[0])
            folium.raster_layers.ImageOverlay(image, grid_bounds, name=f"attention: {name}", show=index == 0,
                                              pixelated=True).add_to(page)
    failed = [r for r in results if r.status == "failed"]
    if failed:
        items = "".join(f"<li>{escape_html(r.error or r.photo_name)}</li>" for r in failed)
        page.get_root().html.add_child(folium.Element(
            f"<div style='position:fixed;bottom:10px;left:10px;z-index:9999;background:white;padding:6px;"
            f"max-width:40%;font:12px sans-serif'><b>Not localised</b><ul>{items}</ul></div>"))
    folium.LayerControl(collapsed=False).add_to(page)
    page.fit_bounds(bounds)
    write_text_atomic(path, page.get_root().render())
    return Path(path)
