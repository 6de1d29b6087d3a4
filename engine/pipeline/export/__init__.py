"""Exports of localisation results: GeoJSON (RFC 7946), CSV, the full JSON and an offline HTML map.

Each write_* writes one file atomically; write_result_set writes several as a set (all or none, see
engine.geo.output_set). The formats are built in result_features (GeoJSON schema), result_csv and html_map;
docs/inputs.md documents them.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from engine.atomic import write_bytes_atomic
from engine.geo.output_set import write_together
from engine.pipeline.export.html_map import html_bytes
from engine.pipeline.export.result_csv import CSV_COLUMNS, csv_bytes, neutralise  # noqa: F401 (re-exported)
from engine.pipeline.export.result_features import (  # noqa: F401 (re-exported)
    PROPERTIES,
    Bounds,
    feature_collection,
    geojson_bytes,
)

if TYPE_CHECKING:
    import geopandas as gpd

    from engine.pipeline.results import LocalizationResult


def map_bounds_of(map_path: str | os.PathLike | None) -> Bounds | None:
    """The map's bounds in its (metric) CRS, the clip of exported polygons; None without a map."""
    if map_path is None:
        return None
    from engine.geo.raster import MapRaster
    with MapRaster(map_path) as raster:
        return raster.bounds


def results_frame(results: Iterable[LocalizationResult], map_bounds: Bounds | None = None) -> gpd.GeoDataFrame:
    """The GeoJSON features as a GeoDataFrame in EPSG:4326 (failed photos with empty geometry)."""
    import geopandas as gpd
    from shapely.geometry import shape

    features = feature_collection(results, map_bounds)["features"]
    rows = [f["properties"] for f in features]
    geometries = [shape(f["geometry"]) if f["geometry"] else None for f in features]
    return gpd.GeoDataFrame(rows, columns=list(PROPERTIES), geometry=geometries, crs=4326)


def json_bytes(results: Iterable[LocalizationResult]) -> bytes:
    return json.dumps([result.to_json() for result in results]).encode("utf-8")


def write_results_geojson(results: Iterable[LocalizationResult], path: str | os.PathLike, *,
                          map_path: str | os.PathLike | None = None, map_bounds: Bounds | None = None) -> Path:
    """RFC 7946 FeatureCollection; polygons clipped to the map when map_path or map_bounds is given."""
    write_bytes_atomic(path, geojson_bytes(list(results), map_bounds or map_bounds_of(map_path)))
    return Path(path)


def write_results_csv(results: Iterable[LocalizationResult], path: str | os.PathLike) -> Path:
    """One row per ranked position, one rank-1 row per photo, failed photos as one row with the error."""
    write_bytes_atomic(path, csv_bytes(results))
    return Path(path)


def write_results_json(results: Iterable[LocalizationResult], path: str | os.PathLike) -> Path:
    """The full results (candidates, attention grids, score surfaces, pose) as a JSON list; read back with
    LocalizationResult.from_json on each item."""
    write_bytes_atomic(path, json_bytes(results))
    return Path(path)


def write_results_html(results: Iterable[LocalizationResult], map_path: str | os.PathLike,
                       path: str | os.PathLike, *, attention: bool = True, thumbnails: bool = True,
                       max_map_side: int = 2048) -> Path:
    """The offline HTML map: the satellite map under every photo's position, FoV wedge, credible region,
    candidate footprints and overlap regions (clipped to the map), thumbnails in popups."""
    write_bytes_atomic(path, html_bytes(results, map_path, attention=attention, thumbnails=thumbnails,
                                        max_map_side=max_map_side))
    return Path(path)


def write_result_set(results: Iterable[LocalizationResult], map_path: str | os.PathLike, *,
                     geojson: str | os.PathLike | None = None, csv: str | os.PathLike | None = None,
                     html: str | os.PathLike | None = None, json_path: str | os.PathLike | None = None,
                     make_dirs: bool = False) -> list[Path]:
    """Render every requested output first, then write them together: all of them or none (OutputError)."""
    results = list(results)
    contents: dict[Path, bytes] = {}
    if geojson is not None:
        contents[Path(geojson)] = geojson_bytes(results, map_bounds_of(map_path))
    if csv is not None:
        contents[Path(csv)] = csv_bytes(results)
    if html is not None:
        contents[Path(html)] = html_bytes(results, map_path)
    if json_path is not None:
        contents[Path(json_path)] = json_bytes(results)
    return write_together(contents, make_dirs)
