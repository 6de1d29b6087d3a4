"""The HTML results map: one self-contained page that works offline.

Leaflet (vendored in engine/pipeline/export/vendor/leaflet, BSD-2) is inlined, the satellite map, attention
heatmaps and photo thumbnails are data URLs, and no web base map is loaded: the page fetches nothing and, opened,
reveals nothing about the place to anyone. Results travel as one JSON block inside a
`<script type="application/json">` element ("<" escaped, so no name can close it) and the page's script
puts every user string in with textContent: photo names and errors are never parsed as HTML.
"""
from __future__ import annotations

import base64
import io
import json
import os
import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from affine import Affine
from PIL import Image
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.warp import calculate_default_transform, reproject
from shapely.geometry import box

from engine.data.geometry import fov_wedge, map_to_lonlat
from engine.geo.errors import GeoInputError
from engine.geo.photo import load_photo
from engine.geo.raster import MapRaster
from engine.pipeline.export.result_features import pose_is_rank1, result_warnings

if TYPE_CHECKING:
    from engine.pipeline.results import GeoGrid, LocalizationResult

WEB_MERCATOR = "EPSG:3857"
VENDOR = Path(__file__).with_name("vendor") / "leaflet"
WEDGE_RADIUS_M = 40.0


@lru_cache(maxsize=1)
def leaflet_assets() -> tuple[str, str]:
    """(JavaScript, CSS) of the vendored Leaflet, without its source-map comment and image URLs."""
    script = (VENDOR / "leaflet.js").read_text(encoding="utf-8")
    script = re.sub(r"//# sourceMappingURL=\S+\s*$", "", script)
    style = re.sub(r"url\(images/[^)]*\)", "none", (VENDOR / "leaflet.css").read_text(encoding="utf-8"))
    return script, style


# ---------------------------------------------------------------- pictures
def _png_data_url(rgba: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(rgba).save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _to_web_mercator(bands: np.ndarray, transform: Affine, crs, nearest_bands: Sequence[int] = ()
                     ) -> tuple[np.ndarray, list[list[float]]]:
    """Reproject (bands, H, W) uint8 to EPSG:3857 (Leaflet's CRS); returns it and [[south, west], [north, east]]."""
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
    """The map decimated to `max_side`, in Web Mercator, as a PNG data URL (nodata transparent) and bounds."""
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
    from matplotlib import colormaps

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
        image = Image.fromarray(load_photo(path, max_side=max_side * 4).rgb)
    except GeoInputError:
        return None
    image.thumbnail((max_side, max_side))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


# ---------------------------------------------------------------- geometry for Leaflet
def _latlon_rings(geometry, crs, clip=None) -> list[list[list[float]]]:
    """Exterior rings of a (multi)polygon in map CRS, clipped to the map, as Leaflet [lat, lon] lists."""
    if geometry is None:
        return []
    if clip is not None:
        geometry = geometry.intersection(clip)
    rings = []
    for polygon in getattr(geometry, "geoms", [geometry]):
        if polygon.is_empty or polygon.geom_type != "Polygon":
            continue
        xs, ys = polygon.exterior.coords.xy
        lons, lats = map_to_lonlat(crs, np.asarray(xs), np.asarray(ys))
        rings.append([[round(float(lat), 7), round(float(lon), 7)] for lon, lat in zip(lons, lats)])
    return rings


def _finite(value, digits: int = 4):
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return round(number, digits) if np.isfinite(number) else None


def _photo_entry(result: LocalizationResult, crs, clip, attention: bool, thumbnails: bool) -> dict:
    best = result.best
    pose = result.pose if pose_is_rank1(result) and result.manual_position is None else None
    entry = {
        "name": result.photo_name, "file": result.photo, "status": result.status,
        "method": "manual" if result.manual_position is not None else (pose.method if pose else "cafr"),
        "lat": best.position.lat, "lon": best.position.lon, "confidence": _finite(best.confidence),
        "score": _finite(best.score), "heading": _finite(best.heading_deg, 1), "fov": _finite(result.fov_deg, 1),
        "heading_sigma": _finite(pose.heading_sigma_deg, 1) if pose else None,
        "error_radius": _finite(pose.error_radius_m, 1) if pose else None,
        "warnings": result_warnings(result),
        "positions": [{"rank": p.rank, "lat": p.position.lat, "lon": p.position.lon,
                       "confidence": _finite(p.confidence)} for p in result.positions[1:]],
        "footprints": [r for c in result.candidates for r in _latlon_rings(c.footprint, crs, clip)],
        "overlaps": [r for c in result.candidates for r in _latlon_rings(c.overlap_region, crs, clip)],
        "credible": _latlon_rings(result.pose.credible_region, crs, clip) if result.pose is not None else [],
        "wedge": [], "thumbnail": photo_thumbnail(result.photo) if thumbnails else None, "attention": None,
    }
    if result.fov_deg and np.isfinite(best.heading_deg):
        wedge = fov_wedge((best.position.x, best.position.y), best.heading_deg, result.fov_deg, WEDGE_RADIUS_M)
        entry["wedge"] = _latlon_rings(wedge, crs, clip)
    if attention and result.candidates and result.candidates[0].attention:
        url, bounds = attention_overlay(result.candidates[0].attention[0])
        entry["attention"] = {"url": url, "bounds": bounds}
    return entry


def page_data(results: Sequence[LocalizationResult], raster: MapRaster, *, attention: bool = True,
              thumbnails: bool = True, max_map_side: int = 2048) -> dict:
    """Everything the page draws, as plain JSON."""
    url, bounds = map_overlay(raster, max_map_side)
    clip = box(*raster.bounds)
    photos, failed = [], []
    for result in results:
        if result.status == "failed" or result.best is None:
            failed.append(result.error or f"{result.photo_name}: not localised")
        else:
            photos.append(_photo_entry(result, raster.crs, clip, attention, thumbnails))
    return {"map": {"name": raster.path.name, "url": url, "bounds": bounds}, "photos": photos, "failed": failed}


def script_json(data: dict) -> str:
    """JSON safe inside a <script> element: no '<', '>' or '&' (so no '</script>'), no raw line separators."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                         ("\u2029", "\\u2029")):
        text = text.replace(char, escape)
    return text


PAGE_STYLE = """
html, body, #map { height: 100%; margin: 0; }
body { font: 13px/1.35 system-ui, sans-serif; }
.vf-popup th { text-align: left; padding-right: 8px; font-weight: 600; }
.vf-popup img { max-width: 240px; display: block; margin-bottom: 4px; }
.vf-failed { background: #fff; padding: 6px 10px; max-width: 40vw; max-height: 30vh; overflow: auto;
             box-shadow: 0 1px 5px rgba(0,0,0,0.4); border-radius: 4px; }
.vf-warn { color: #a15c00; }
"""

# The page's own script: builds layers from the JSON block; user strings only ever go in by textContent.
PAGE_SCRIPT = """
(function () {
  var data = JSON.parse(document.getElementById('vf-data').textContent);
  var map = L.map('map', {maxZoom: 22, zoomSnap: 0.25});
  map.attributionControl.setPrefix('Leaflet');   // plain text: the page links nowhere
  var overlays = {};
  overlays['satellite map (' + data.map.name + ')'] =
      L.imageOverlay(data.map.url, data.map.bounds, {opacity: 1}).addTo(map);
  function text(tag, value, cls) {
    var el = document.createElement(tag);
    el.textContent = value;
    if (cls) { el.className = cls; }
    return el;
  }
  function popup(photo) {
    var box = document.createElement('div');
    box.className = 'vf-popup';
    if (photo.thumbnail) { var img = document.createElement('img'); img.src = photo.thumbnail; box.appendChild(img); }
    var table = document.createElement('table');
    var rows = [['photo', photo.name], ['file', photo.file], ['method', photo.method],
                ['lon, lat', photo.lon.toFixed(7) + ', ' + photo.lat.toFixed(7)],
                ['confidence', photo.confidence === null ? 'manual' : photo.confidence.toFixed(3)],
                ['heading', photo.heading === null ? 'unknown' : photo.heading.toFixed(0) + '\\u00b0' +
                  (photo.heading_sigma === null ? '' : ' \\u00b1 ' + photo.heading_sigma.toFixed(0) + '\\u00b0')],
                ['error radius (95 %)', photo.error_radius === null ? 'n/a' : photo.error_radius.toFixed(1) + ' m'],
                ['FoV', photo.fov === null ? 'unknown' : photo.fov.toFixed(0) + '\\u00b0'],
                ['score', photo.score === null ? 'n/a' : photo.score.toFixed(3)]];
    rows.forEach(function (row) {
      var tr = document.createElement('tr');
      tr.appendChild(text('th', row[0]));
      tr.appendChild(text('td', row[1]));
      table.appendChild(tr);
    });
    box.appendChild(table);
    photo.warnings.forEach(function (w) { box.appendChild(text('div', w, 'vf-warn')); });
    return box;
  }
  data.photos.forEach(function (photo, index) {
    var group = L.featureGroup();
    photo.footprints.forEach(function (ring) {
      L.polygon(ring, {color: '#3388ff', weight: 1, fill: false}).addTo(group);
    });
    photo.overlaps.forEach(function (ring) {
      L.polygon(ring, {color: '#ff7800', weight: 1, fillOpacity: 0.25}).addTo(group);
    });
    photo.credible.forEach(function (ring) {
      L.polygon(ring, {color: '#6a3d9a', weight: 2, dashArray: '4 3', fillOpacity: 0.12}).addTo(group);
    });
    photo.wedge.forEach(function (ring) {
      L.polygon(ring, {color: '#e31a1c', weight: 1, fillOpacity: 0.2}).addTo(group);
    });
    photo.positions.forEach(function (p) {
      L.circleMarker([p.lat, p.lon], {radius: 4, color: '#e31a1c', weight: 1})
        .bindTooltip(text('span', photo.name + ': position ' + p.rank)).addTo(group);
    });
    L.circleMarker([photo.lat, photo.lon], {radius: 7, color: '#ffffff', weight: 2, fillColor: '#e31a1c',
                                            fillOpacity: 1})
      .bindTooltip(text('span', photo.name)).bindPopup(popup(photo), {maxWidth: 280}).addTo(group);
    group.addTo(map);
    overlays['photo: ' + photo.name] = group;
    if (photo.attention) {
      var heat = L.imageOverlay(photo.attention.url, photo.attention.bounds, {opacity: 0.8});
      if (index === 0) { heat.addTo(map); }
      overlays['attention: ' + photo.name] = heat;
    }
  });
  L.control.layers(null, overlays, {collapsed: false}).addTo(map);
  L.control.scale().addTo(map);
  if (data.failed.length) {
    var Failed = L.Control.extend({onAdd: function () {
      var box = document.createElement('div');
      box.className = 'vf-failed';
      box.appendChild(text('b', 'Not localised'));
      var list = document.createElement('ul');
      data.failed.forEach(function (e) { list.appendChild(text('li', e)); });
      box.appendChild(list);
      return box;
    }});
    new Failed({position: 'bottomleft'}).addTo(map);
  }
  map.fitBounds(data.map.bounds);
})();
"""


def html_page(data: dict, title: str = "Viewfinder results") -> str:
    script, style = leaflet_assets()
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{title}</title>\n<!-- Leaflet 1.9.4, BSD-2-Clause, (c) Volodymyr Agafonkin, CloudMade -->\n"
            f"<style>{style}</style>\n<style>{PAGE_STYLE}</style>\n<script>{script}</script>\n</head>\n"
            "<body><div id=\"map\"></div>\n"
            f"<script id=\"vf-data\" type=\"application/json\">{script_json(data)}</script>\n"
            f"<script>{PAGE_SCRIPT}</script>\n</body></html>\n")


def html_bytes(results: Iterable[LocalizationResult], map_path: str | os.PathLike, *, attention: bool = True,
               thumbnails: bool = True, max_map_side: int = 2048) -> bytes:
    with MapRaster(map_path) as raster:
        data = page_data(list(results), raster, attention=attention, thumbnails=thumbnails,
                         max_map_side=max_map_side)
    return html_page(data).encode("utf-8")
