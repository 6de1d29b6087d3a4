"""Export rules on hand-built results: one rank-1 row per photo, formula-safe CSV, stable GeoJSON types, failed
photos as null-geometry features, polygons clipped to the map, pose fields, outputs written as a set."""
import csv
import io
import json
import os

import numpy as np
import pytest
from shapely.geometry import Point, box, shape

from engine.data.geometry import map_to_lonlat
from engine.geo.output_set import OutputError, check_targets, write_together
from engine.pipeline.export import write_result_set
from engine.pipeline.export.result_csv import csv_bytes, neutralise
from engine.pipeline.export.result_features import PROPERTIES, feature_collection
from engine.pipeline.results import Candidate, LocalizationResult, PoseEstimate, Position, RankedPosition

CRS = "EPSG:32632"
X0, Y0 = 500_000.0, 5_300_000.0
MAP_BOUNDS = (X0, Y0, X0 + 200.0, Y0 + 200.0)


def _position(x, y):
    lon, lat = map_to_lonlat(CRS, x, y)
    return Position(x, y, float(lon), float(lat))


def _result(name="a.jpg", fov=None, pose=True, edge=False):
    """A photo localised near the map's east edge (edge=True: its tile sticks out of the map)."""
    cx = X0 + (190.0 if edge else 100.0)
    candidate = Candidate(rank=1, tile_index=0, score=0.8, footprint=box(cx - 64, Y0 + 36, cx + 64, Y0 + 164),
                          position=_position(cx, Y0 + 100), heading_deg=45.0, confidence=0.4,
                          overlap_region=box(cx, Y0 + 90, cx + 40, Y0 + 110))
    ranked = [RankedPosition(1, _position(cx, Y0 + 100), 0.8, 0.6, 45.0, [1]),
              RankedPosition(2, _position(cx - 50, Y0 + 60), 0.7, 0.2, 90.0, [2])]
    estimate = None
    if pose:
        estimate = PoseEstimate(position=ranked[0].position, heading_deg=45.0, heading_sigma_deg=7.5,
                                covariance_m2=[[25.0, 0.0], [0.0, 25.0]], confidence=0.6, confidence_radius_m=10.0,
                                credible_region=Point(cx, Y0 + 100).buffer(20.0), method="bev-pose")
    return LocalizationResult(photo=f"/photos/{name}", status="done", crs=CRS, photo_sha256="ab" * 32,
                              model_id="m", map_id="map", fov_deg=fov, candidates=[candidate], positions=ranked,
                              priors={"fov_source": None, "warnings": ["the photo is tiny"]}, created="2026-01-01",
                              pose=estimate)


def _failed(name="broken.jpg"):
    return LocalizationResult(photo=f"/photos/{name}", status="failed", crs=CRS, error=f"/photos/{name}: corrupt")


def test_csv_has_one_rank1_row_per_photo_and_the_engine_answer_as_rank2_when_corrected():
    done = _result()
    fixed = _result("b.jpg").corrected(_position(X0 + 20, Y0 + 20))
    rows = list(csv.DictReader(io.StringIO(csv_bytes([done, fixed, _failed()]).decode())))
    assert [(r["photo"], r["rank"], r["method"]) for r in rows] == [
        ("a.jpg", "1", "bev-pose"), ("a.jpg", "2", "cafr"),
        ("b.jpg", "1", "manual"), ("b.jpg", "2", "bev-pose"), ("b.jpg", "3", "cafr"),
        ("broken.jpg", "", "")]
    first = rows[0]
    assert (first["heading_sigma_deg"], first["confidence"]) == ("7.5", "0.60000")
    assert float(first["error_radius_m"]) == pytest.approx(20.0, abs=0.05)
    assert first["warnings"] == "the photo is tiny" and rows[1]["error_radius_m"] == ""
    assert rows[2]["confidence"] == "" and rows[2]["lon"] == f"{fixed.manual_position.lon:.7f}"
    assert rows[5]["status"] == "failed" and rows[5]["error"] == "/photos/broken.jpg: corrupt"


@pytest.mark.parametrize("name", ["=HYPERLINK(\"x\").jpg", "+1.jpg", "-2+3.jpg", "@SUM(A1).jpg",
                                  "\tx.jpg", "\rx.jpg"])
def test_csv_neutralises_formula_cells_but_not_negative_numbers(name):
    result = _result(name)
    result.photo = name     # no folder: the name starts the path cell too
    row = next(csv.DictReader(io.StringIO(csv_bytes([result]).decode())))
    assert row["photo"] == "'" + name and row["path"] == "'" + name
    assert neutralise("a=b") == "a=b"
    west = _result()
    for ranked in west.positions:
        ranked.position = Position(ranked.position.x, ranked.position.y, -84.5, -33.9)
    row = next(csv.DictReader(io.StringIO(csv_bytes([west]).decode())))
    assert row["lon"] == "-84.5000000" and row["lat"] == "-33.9000000"


def test_geojson_types_are_stable_and_failed_photos_are_null_geometry_features():
    with_fov, without_fov = _result("a.jpg", fov=63.456), _result("b.jpg", fov=None, pose=False)
    document = feature_collection([with_fov, without_fov, _failed()])
    features = document["features"]
    for feature in features:
        props = feature["properties"]
        assert list(props) == list(PROPERTIES)
        for key, value in props.items():
            kind = {"string": str, "integer": int, "number": (int, float)}[PROPERTIES[key]]
            assert value is None or isinstance(value, kind), (key, value)
    fovs = {f["properties"]["photo"]: f["properties"]["fov_deg"] for f in features}
    assert fovs == {"a.jpg": 63.46, "b.jpg": None, "broken.jpg": None}
    failed = [f for f in features if f["properties"]["kind"] == "failed"]
    assert len(failed) == 1 and failed[0]["geometry"] is None
    assert failed[0]["properties"]["error"] == "/photos/broken.jpg: corrupt"
    # the pose's fields ride on the rank-1 position; its credible region is its own feature
    best = next(f for f in features if f["properties"]["photo"] == "a.jpg" and f["properties"]["rank"] == 1
                and f["properties"]["kind"] == "position")
    assert best["properties"]["method"] == "bev-pose" and best["properties"]["heading_sigma_deg"] == 7.5
    assert best["properties"]["error_radius_m"] == pytest.approx(20.0, abs=0.05)
    region = next(f for f in features if f["properties"]["kind"] == "credible_region")
    assert region["properties"]["confidence"] == 0.95 and region["geometry"]["type"] == "Polygon"
    assert json.dumps(document, allow_nan=False)          # no NaN anywhere


def test_footprints_overlaps_and_regions_are_clipped_to_the_map():
    result = _result(edge=True)            # tile 64 m past the map's east edge, overlap 30 m past it
    features = feature_collection([result], MAP_BOUNDS)["features"]
    east, _ = map_to_lonlat(CRS, X0 + 200.0, Y0 + 100.0)
    polygons = [f for f in features if f["geometry"] and f["geometry"]["type"] != "Point"]
    assert {f["properties"]["kind"] for f in polygons} == {"footprint", "overlap", "credible_region"}
    areas = {}
    for feature in polygons:
        lons = [lon for lon, _ in feature["geometry"]["coordinates"][0]]
        assert max(lons) <= float(east) + 1e-6 + 3e-5     # 3e-5 deg: grid convergence along the edge
        areas[feature["properties"]["kind"]] = shape(feature["geometry"]).area
    unclipped = {f["properties"]["kind"]: shape(f["geometry"]).area
                 for f in feature_collection([result])["features"] if f["geometry"]["type"] != "Point"}
    assert areas["footprint"] == pytest.approx(unclipped["footprint"] * 74 / 128, rel=0.01)
    assert areas["overlap"] == pytest.approx(unclipped["overlap"] * 10 / 40, rel=0.01)


def test_output_set_is_written_together_or_not_at_all(tmp_path):
    good, blocked = tmp_path / "a.geojson", tmp_path / "locked" / "b.csv"
    (tmp_path / "locked").mkdir()
    good.write_text("old")
    os.chmod(tmp_path / "locked", 0o500)
    try:
        if os.access(tmp_path / "locked", os.W_OK):
            pytest.skip("running as a user who can write anywhere")
        with pytest.raises(OutputError, match="locked is not writable"):
            write_together({good: b"new", blocked: b"x"})
    finally:
        os.chmod(tmp_path / "locked", 0o700)
    assert good.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["a.geojson", "locked"]


def test_output_set_fails_midway_without_leaving_anything(tmp_path):
    # the second file cannot be created (its name is too long for the file system): the first, already
    # written to its staging file, is not renamed into place and its staging file is gone
    first, second = tmp_path / "one.geojson", tmp_path / ("x" * 250 + ".csv")
    (tmp_path / "one.geojson").write_text("old")
    with pytest.raises(OutputError, match="no output was written"):
        write_together({first: b"1", second: b"2"})
    assert [p.name for p in tmp_path.iterdir()] == ["one.geojson"] and first.read_text() == "old"


def test_missing_folders_are_refused_unless_asked(tmp_path):
    target = tmp_path / "new" / "deeper" / "r.geojson"
    with pytest.raises(OutputError, match="does not exist \\(create it, or pass --make-dirs\\)"):
        check_targets([target])
    assert not (tmp_path / "new").exists()
    write_together({target: b"{}"}, make_dirs=True)
    assert target.read_bytes() == b"{}"
    with pytest.raises(OutputError, match="named for two outputs"):
        check_targets([tmp_path / "x.csv", tmp_path / "." / "x.csv"])
    with pytest.raises(OutputError, match="is a folder"):
        check_targets([tmp_path])


def test_result_set_renders_everything_before_writing(tmp_path):
    # an HTML export needs a readable map: with a broken one, the GeoJSON and CSV are not written either
    bad_map = tmp_path / "map.tif"
    bad_map.write_text("not a raster")
    from engine.geo.errors import RasterError
    with pytest.raises(RasterError):
        write_result_set([_result()], bad_map, csv=tmp_path / "r.csv", html=tmp_path / "m.html")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["map.tif"]
    assert np.isfinite(_result().pose.error_radius_m)
