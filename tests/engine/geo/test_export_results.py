"""Exports of localisation results: RFC 7946 GeoJSON (read back with pyogrio), CSV and the folium HTML map."""
import csv
import json
import re
from dataclasses import replace

import numpy as np
import pyogrio
import pytest
import shapely
from shapely.geometry import shape

from engine.data.geometry import map_to_lonlat
from engine.geo.export import escape_html, results_frame
from engine.pipeline import (LocalizationResult, Localizer, LocalizerConfig, Position, find_photos,
                             write_results_csv, write_results_geojson, write_results_html, write_results_json)
from tests.engine.model.conftest import small_model
from tests.engine.pipeline.scenes import make_scene

EVIL = "<script>alert(1)</script>.jpg"


@pytest.fixture(scope="module")
def localised(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    scene = make_scene(root / "scene")
    localizer = Localizer(small_model(seed=2), config=LocalizerConfig(cache_dir=root / "cache", top_k=3))
    gallery = localizer.index_map(scene.map_path)
    photos = find_photos([scene.folder / "photos"])[:2] + [root / "missing.jpg"]
    results = list(localizer.localize_many(photos, gallery))
    assert [r.status for r in results] == ["done", "done", "failed"]
    return scene, gallery, results


def _rings(geometry: dict) -> list[tuple[bool, list]]:
    """(is_exterior, ring) of a GeoJSON Polygon or MultiPolygon."""
    polygons = [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]
    return [(index == 0, ring) for polygon in polygons for index, ring in enumerate(polygon)]


def test_geojson_is_rfc7946_and_reads_back(localised, tmp_path):
    scene, gallery, results = localised
    path = write_results_geojson(results, tmp_path / "out" / "results.geojson")
    text = path.read_text()
    document = json.loads(text)
    assert document["type"] == "FeatureCollection" and "crs" not in document
    features = document["features"]
    kinds = [f["properties"]["kind"] for f in features]
    done = [r for r in results if r.status == "done"]
    assert kinds.count("position") == sum(len(r.positions) for r in done)
    assert kinds.count("footprint") == sum(len(r.candidates) for r in done)
    assert kinds.count("overlap") == sum(c.overlap_region is not None for r in done for c in r.candidates)
    # coordinates: lon, lat order (this scene lies near -84.29, 34.07), at most 7 decimals
    for number in re.findall(r"-?\d+\.\d+", json.dumps([f["geometry"] for f in features])):
        assert len(number.split(".")[1]) <= 7
    for feature in features:
        geometry, props = feature["geometry"], feature["properties"]
        assert set(props) >= {"photo", "rank", "score", "confidence", "heading_deg", "fov_deg", "photo_sha256",
                              "model_id", "map_id", "method", "time"}
        assert props["photo"].endswith(".jpg") and "/" not in props["photo"] and props["method"] == "cafr"
        assert props["model_id"] == gallery.model_id and props["map_id"] == gallery.map_id
        if geometry["type"] == "Point":
            lon, lat = geometry["coordinates"]
            assert -84.31 < lon < -84.27 and 34.06 < lat < 34.09
            continue
        for exterior, ring in _rings(geometry):
            assert shapely.LinearRing(ring).is_ccw == exterior      # right-hand rule
            assert all(-84.31 < lon < -84.27 and 34.06 < lat < 34.09 for lon, lat in ring)
    # the best position of each photo, converted back, is where the result says
    for result in done:
        point = next(f for f in features if f["properties"]["photo"] == result.photo_name
                     and f["properties"]["kind"] == "position" and f["properties"]["rank"] == 1)
        lon, lat = map_to_lonlat(result.crs, result.best.position.x, result.best.position.y)
        assert point["geometry"]["coordinates"] == pytest.approx([float(lon), float(lat)], abs=1e-7)
        assert point["properties"]["confidence"] == pytest.approx(result.best.confidence, abs=1e-6)
        footprint = next(f for f in features if f["properties"]["photo"] == result.photo_name
                         and f["properties"]["kind"] == "footprint" and f["properties"]["rank"] == 1)
        assert shape(footprint["geometry"]).area > 0
    frame = pyogrio.read_dataframe(path)
    assert frame.crs.to_epsg() == 4326 and len(frame) == len(features)
    assert set(frame["kind"]) == {"position", "overlap", "footprint"}
    assert sorted(set(frame["photo"])) == sorted(r.photo_name for r in done)
    assert not list((tmp_path / "out").glob(".*"))            # no temporary files left behind


def test_manual_correction_is_exported_as_such(localised, tmp_path):
    _, _, results = localised
    x, y = results[0].best.position.x + 30.0, results[0].best.position.y - 20.0
    lon, lat = (float(v) for v in map_to_lonlat(results[0].crs, x, y))
    fixed = results[0].corrected(Position(x, y, lon, lat))
    frame = results_frame([fixed])
    manual = frame[frame["method"] == "manual"]
    assert len(manual) == 1 and (manual.geometry.iloc[0].x, manual.geometry.iloc[0].y) == pytest.approx((lon, lat))
    assert manual["rank"].iloc[0] == 1 and (frame["method"] == "cafr").sum() > 0
    rows = list(csv.DictReader(write_results_csv([fixed], tmp_path / "fixed.csv").open()))
    assert rows[0]["method"] == "manual" and rows[0]["lon"] == f"{lon:.7f}" and rows[0]["status"] == "manual"


def test_csv_lists_every_position_and_every_failure(localised, tmp_path):
    _, _, results = localised
    rows = list(csv.DictReader(write_results_csv(results, tmp_path / "results.csv").open()))
    done = [r for r in results if r.status == "done"]
    assert len(rows) == sum(len(r.positions) for r in done) + 1
    failed = [row for row in rows if row["status"] == "failed"]
    assert len(failed) == 1 and "missing.jpg" in failed[0]["error"] and failed[0]["lon"] == ""
    first = next(row for row in rows if row["photo"] == done[0].photo_name and row["rank"] == "1")
    assert float(first["lon"]) == pytest.approx(done[0].best.position.lon, abs=1e-7)
    assert float(first["x"]) == pytest.approx(done[0].best.position.x, abs=1e-3)


def test_json_export_round_trips(localised, tmp_path):
    _, _, results = localised
    path = write_results_json(results, tmp_path / "results.json")
    again = [LocalizationResult.from_json(item) for item in json.loads(path.read_text())]
    assert [r.to_json() for r in again] == [r.to_json() for r in results]
    np.testing.assert_array_equal(again[0].score_surface.values, results[0].score_surface.values)


def test_html_has_the_map_overlay_and_escapes_user_strings(localised, tmp_path):
    scene, _, results = localised
    evil_done = replace(results[0], photo=EVIL)
    evil_failed = replace(results[2], photo=EVIL, error=f"{EVIL}: file not found")
    backtick = replace(results[1], photo="`${alert(2)}`.jpg")
    path = write_results_html([evil_done, backtick, evil_failed, results[0]], scene.map_path,
                              tmp_path / "map.html")
    page = path.read_text()
    assert page.count("data:image/png;base64,") >= 2          # satellite map + attention overlays
    assert "satellite map" in page and "L.imageOverlay" in page
    assert "data:image/jpeg;base64," in page                  # a photo thumbnail in a popup
    assert EVIL not in page and "<script>alert" not in page
    assert escape_html(EVIL) in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "${alert(2)}" not in page and "`${" not in page
    assert "Not localised" in page
    # the overlay bounds are the map's extent in lat/lon
    bounds = json.loads(re.search(r"L\.imageOverlay\(\s*\"data:image/png;base64,[^\"]+\",\s*(\[\[.*?\]\])", page,
                                  re.S).group(1))
    (south, west), (north, east) = bounds
    assert -84.30 < west < east < -84.28 and 34.07 < south < north < 34.08
