"""Exports of localisation results: RFC 7946 GeoJSON (read back with pyogrio), CSV and the offline HTML map."""
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
from engine.pipeline import (
    LocalizationResult,
    Localizer,
    LocalizerConfig,
    Position,
    find_photos,
    write_results_csv,
    write_results_geojson,
    write_results_html,
    write_results_json,
)
from engine.pipeline.export import results_frame
from engine.pipeline.export.html_map import PAGE_SCRIPT, leaflet_assets
from engine.pipeline.export.result_features import PROPERTIES
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
    assert kinds.count("credible_region") == sum(r.pose is not None and r.pose.credible_region is not None
                                                 for r in done)
    failed = [f for f in features if f["properties"]["kind"] == "failed"]
    assert len(failed) == 1 and failed[0]["geometry"] is None and "missing.jpg" in failed[0]["properties"]["error"]
    total = len(features)
    features = [f for f in features if f["geometry"] is not None]
    # coordinates: lon, lat order (this scene lies near -84.29, 34.07), at most 7 decimals
    for number in re.findall(r"-?\d+\.\d+", json.dumps([f["geometry"] for f in features])):
        assert len(number.split(".")[1]) <= 7
    for feature in features:
        geometry, props = feature["geometry"], feature["properties"]
        assert list(props) == list(PROPERTIES)
        assert props["photo"].endswith(".jpg") and "/" not in props["photo"]
        assert props["method"] in ("cafr", done[0].pose.method)
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
    assert frame.crs.to_epsg() == 4326 and len(frame) == total
    # stable column types whatever the rows hold: numbers as floats / ints, never strings
    assert frame["fov_deg"].dtype.kind == "f" and frame["heading_deg"].dtype.kind == "f"
    assert frame["rank"].dtype.kind in "if" and frame["confidence"].dtype.kind == "f"
    assert set(frame["kind"]) == {"position", "overlap", "footprint", "credible_region", "failed"}
    assert sorted(set(frame["photo"])) == sorted(r.photo_name for r in [*done, results[2]])
    assert not list((tmp_path / "out").glob(".*"))            # no temporary files left behind


def test_manual_correction_is_exported_as_such(localised, tmp_path):
    _, _, results = localised
    x, y = results[0].best.position.x + 30.0, results[0].best.position.y - 20.0
    lon, lat = (float(v) for v in map_to_lonlat(results[0].crs, x, y))
    fixed = results[0].corrected(Position(x, y, lon, lat))
    frame = results_frame([fixed])
    manual = frame[frame["method"] == "manual"]
    assert len(manual) == 1 and (manual.geometry.iloc[0].x, manual.geometry.iloc[0].y) == pytest.approx((lon, lat))
    positions = frame[frame["kind"] == "position"]
    # one rank-1 position: the manual one; the engine's answer is kept as rank 2
    assert list(positions["rank"]) == list(range(1, len(results[0].positions) + 2))
    assert positions["method"].iloc[0] == "manual" and positions["method"].iloc[1] != "manual"
    rows = list(csv.DictReader(write_results_csv([fixed], tmp_path / "fixed.csv").open()))
    assert rows[0]["method"] == "manual" and rows[0]["lon"] == f"{lon:.7f}" and rows[0]["status"] == "manual"
    assert [row["rank"] for row in rows] == [str(i) for i in range(1, len(results[0].positions) + 2)]
    assert float(rows[1]["lon"]) == pytest.approx(results[0].positions[0].position.lon, abs=1e-7)


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
    assert sum(row["rank"] == "1" for row in rows) == len(done)          # one answer per photo
    if done[0].pose is not None:
        assert first["method"] == done[0].pose.method
        assert float(first["error_radius_m"]) == pytest.approx(done[0].pose.error_radius_m, abs=0.01)
        assert float(first["heading_sigma_deg"]) == pytest.approx(done[0].pose.heading_sigma_deg, abs=0.05)


def test_json_export_round_trips(localised, tmp_path):
    _, _, results = localised
    path = write_results_json(results, tmp_path / "results.json")
    again = [LocalizationResult.from_json(item) for item in json.loads(path.read_text())]
    assert [r.to_json() for r in again] == [r.to_json() for r in results]
    np.testing.assert_array_equal(again[0].score_surface.values, results[0].score_surface.values)


def _page_data(page: str) -> dict:
    block = re.search(r'<script id="vf-data" type="application/json">(.*?)</script>', page, re.S).group(1)
    return json.loads(block)


def test_html_works_offline_has_the_map_overlay_and_escapes_user_strings(localised, tmp_path):
    scene, _, results = localised
    evil_done = replace(results[0], photo=EVIL)
    evil_failed = replace(results[2], photo=EVIL, error=f"{EVIL}: file not found")
    backtick = replace(results[1], photo="`${alert(2)}`.jpg")
    path = write_results_html([evil_done, backtick, evil_failed, results[0]], scene.map_path,
                              tmp_path / "map.html")
    page = path.read_text()
    # offline: Leaflet inlined, nothing fetched from anywhere
    assert "Leaflet 1.9.4" in page and "L.imageOverlay" in page
    assert not re.search(r"""<(script|link|img|iframe)[^>]*(src|href)=""", page)
    leaflet_js, leaflet_css = leaflet_assets()
    assert page.count("http") == leaflet_js.count("http") + leaflet_css.count("http")   # its licence/links only
    assert "sourceMappingURL" not in page and "url(images/" not in page
    assert page.count("data:image/png;base64,") >= 2          # satellite map + attention overlays
    assert "data:image/jpeg;base64," in page                  # a photo thumbnail in a popup
    # user strings only inside the JSON block, with '<' escaped, and put on the page by textContent
    assert EVIL not in page and "<script>alert" not in page and "innerHTML" not in PAGE_SCRIPT
    data = _page_data(page)
    assert [p["name"] for p in data["photos"]] == [evil_done.photo_name, "`${alert(2)}`.jpg", results[0].photo_name]
    assert data["photos"][0]["file"] == EVIL
    assert data["failed"] == [f"{EVIL}: file not found"]
    # the overlay bounds are the map's extent in lat/lon
    (south, west), (north, east) = data["map"]["bounds"]
    assert -84.30 < west < east < -84.28 and 34.07 < south < north < 34.08
    # every drawn polygon lies on the map (footprints, overlaps, wedges and credible regions are clipped)
    for photo in data["photos"]:
        for ring in photo["footprints"] + photo["overlaps"] + photo["wedge"] + photo["credible"]:
            assert all(south - 1e-6 <= lat <= north + 1e-6 and west - 1e-6 <= lon <= east + 1e-6
                       for lat, lon in ring)
