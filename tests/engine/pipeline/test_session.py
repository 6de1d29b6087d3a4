"""The Qt-free session: what a new map does to old work, corrections with undo/redo, truth belonging to its
map, what confidence and heading mean, exports that count what they wrote, project files."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from shapely.geometry import Point, box

from engine.pipeline import (
    DONE,
    FAILED,
    MANUAL,
    GeoGrid,
    LocalizationResult,
    PoseEstimate,
    Position,
    RankedPosition,
    lonlat_to_map,
    map_to_lonlat,
)
from engine.pipeline.session import (
    CANCELLED,
    KEEP_PHOTOS,
    NEW_SESSION,
    QUEUED,
    RUNNING,
    WAITING,
    EngineJobs,
    MapInfo,
    Session,
    SessionError,
    confidence_text,
    confidence_tooltip,
    heading_of,
    identify,
    inspect_photo,
    read_map_info,
    read_project,
    run_session,
)
from tests.engine.pipeline.scenes import small_localizer


def position(info: MapInfo, x: float, y: float) -> Position:
    lon, lat = map_to_lonlat(info.crs, x, y)
    return Position(x, y, float(lon), float(lat))


def make_result(info: MapInfo, photo: str, x: float, y: float, heading: float = 45.65, pose: bool = True,
                prior_lonlat: tuple[float, float] | None = None) -> LocalizationResult:
    """A plain result as the engine makes it: pose (when asked) and its rank-1 position agree."""
    where = position(info, x, y)
    estimate = None
    if pose:
        region = Point(x, y).buffer(12.0)
        surface = GeoGrid(np.full((4, 4), 1 / 16, np.float32), Affine(5, 0, x - 10, 0, -5, y + 10), info.crs)
        estimate = PoseEstimate(where, heading, 7.5, [[16.0, 0.0], [0.0, 16.0]], 0.83, 10.0, region,
                                surface=surface)
    priors = {}
    if prior_lonlat is not None:
        priors = {"position": {"lon": prior_lonlat[0], "lat": prior_lonlat[1], "radius_m": 30.0, "source": "exif"}}
    return LocalizationResult(photo=photo, status=DONE, crs=info.crs, model_id="tiny", fov_deg=70.0,
                              positions=[RankedPosition(1, where, 0.42, 0.83 if pose else 0.02, heading)],
                              priors=priors, pose=estimate)


@pytest.fixture
def info(scene) -> MapInfo:
    return read_map_info(scene.map_path)


@pytest.fixture
def far_map(info, tmp_path) -> MapInfo:
    """A map 950 km east of the scene (no truth beside it)."""
    left, bottom, right, top = info.bounds
    return MapInfo(str(tmp_path / "georgia" / "map.tif"), (left + 950e3, bottom, right + 950e3, top), info.crs, 0.5)


@pytest.fixture
def session(info, scene) -> Session:
    """A session on the scene map with every photo localised at the map centre + 10 m per photo."""
    s = Session()
    s.set_map(info)
    s.add_photos([str(p) for p in sorted((scene.folder / "photos").glob("*.jpg"))])
    generation = s.generation
    for i, path in enumerate(s.map_indexed(generation)):
        cx, cy = (info.bounds[0] + info.bounds[2]) / 2, (info.bounds[1] + info.bounds[3]) / 2
        assert s.deliver(path, make_result(info, path, cx + 10 * i, cy), generation)
    return s


def test_map_info_names_the_file_when_it_is_not_a_map(tmp_path):
    bad = tmp_path / "notes.tif"
    bad.write_text("not a raster")
    with pytest.raises(Exception, match="notes.tif"):
        read_map_info(bad)


def test_photos_wait_for_the_map_then_queue_once_it_is_indexed(info, scene):
    s = Session()
    photos = [str(p) for p in sorted((scene.folder / "photos").glob("*.jpg"))]
    added, queued = s.add_photos(photos + photos[:1])
    assert len(added) == len(photos) and queued == []                 # duplicates listed once, nothing queued
    assert {r.state for r in s.photos} == {WAITING}
    assert not s.plan_map(info).needs_question                        # a first map: nothing to ask
    s.set_map(info)
    assert s.map_indexed(s.generation - 1) == []                      # an old map's indexing means nothing
    assert s.map_indexed(s.generation) == added
    assert {r.state for r in s.photos} == {QUEUED}
    more = Path(photos[0]).with_name("later.jpg")
    assert s.add_photos([str(more)]) == ([str(more)], [str(more)])    # on an indexed map: queued at once


def test_a_new_map_over_results_is_planned_and_keeping_photos_relocalises_them(session, far_map, info):
    corrected = session.photos[0].path
    x, y = session.photos[0].result.best.position.x + 5, session.photos[0].result.best.position.y
    assert session.correct(corrected, x, y)
    plan = session.plan_map(far_map)
    assert plan.needs_question and plan.photos == 4 and plan.results == 4
    assert (plan.corrections_kept, plan.corrections_lost) == (0, 1)       # the correction lies off Georgia
    assert "drops 1" in plan.describe()
    warnings = []
    session.on("warning", warnings.append)
    old_generation = session.generation
    session.set_map(far_map, KEEP_PHOTOS)
    assert all(r.result is None and r.state == WAITING for r in session.photos)
    assert not session.can_undo and session.truth == {}                   # truth belonged to the old map
    assert any("1 manual corrections" in w for w in warnings)
    # an answer for the old map arriving late is dropped
    late = make_result(info, corrected, x, y)
    assert not session.deliver(corrected, late, old_generation)
    assert session.record(corrected).result is None


def test_a_correction_on_the_new_map_survives_relocalisation(session, info, scene):
    record = session.photos[1]
    x, y = record.result.best.position.x - 20, record.result.best.position.y + 15
    session.correct(record.path, x, y)
    same_place = MapInfo(str(scene.folder / "copy.tif"), info.bounds, info.crs, 0.5)   # the same area again
    plan = session.set_map(same_place, KEEP_PHOTOS)
    assert (plan.corrections_kept, plan.corrections_lost) == (1, 0)
    generation = session.generation
    queued = session.map_indexed(generation)
    assert record.path in queued and session.record(record.path).carried is not None
    fresh = make_result(info, record.path, 0.0 + info.bounds[0] + 50, info.bounds[1] + 50)
    assert session.deliver(record.path, fresh, generation)
    result = session.record(record.path).result
    assert result.status == MANUAL
    assert (result.manual_position.x, result.manual_position.y) == pytest.approx((x, y), abs=1e-6)
    assert result.candidates == fresh.candidates and result.pose is fresh.pose   # the engine's answer is kept


def test_the_same_map_again_keeps_all_work(session, info):
    record = session.photos[0]
    session.correct(record.path, record.result.best.position.x + 1, record.result.best.position.y)
    plan = session.plan_map(info)
    assert plan.same_map and not plan.needs_question
    session.set_map(info)
    assert record.result.status == MANUAL and session.can_undo and not session.indexed
    assert all(r.result is not None for r in session.photos)


def test_new_session_drops_photos(session, far_map):
    session.set_map(far_map, NEW_SESSION)
    assert session.photos == [] and session.map == far_map


def test_truth_belongs_to_the_map_and_is_in_its_crs(session, scene):
    assert len(session.truth) == len(scene.photos)
    truth = scene.photos[0]
    point = session.truth_for(str(scene.folder / "photos" / truth.name))
    assert (point.x, point.y) == pytest.approx((truth.x, truth.y))
    assert point.overlap is not None and point.overlap.distance(Point(truth.x, truth.y)) < 30.0


def test_gps_prior_off_the_map_is_a_warning_naming_the_distance(session, info, far_map):
    record = session.photos[2]
    lon, lat = map_to_lonlat(info.crs, far_map.bounds[0] + 10, far_map.bounds[1] + 10)
    warnings = []
    session.on("warning", warnings.append)
    result = make_result(info, record.path, *info.bounds[:2], prior_lonlat=(float(lon), float(lat)))
    record.result = None
    assert session.deliver(record.path, result, session.generation)
    assert len(warnings) == 1 and record.name in warnings[0]
    distance_km = float(warnings[0].split("lies ")[1].split(" km")[0])
    assert 940 <= distance_km <= 960
    lon, lat = map_to_lonlat(info.crs, info.bounds[0] + 20, info.bounds[1] + 20)
    inside = make_result(info, record.path, *info.bounds[:2], prior_lonlat=(float(lon), float(lat)))
    session.deliver(record.path, inside, session.generation)
    assert session.record(record.path).warnings == []


def test_corrections_undo_and_redo_restore_results_exactly(session, info):
    changes = []
    session.on("photo", changes.append)
    record = session.photos[0]
    original = record.result
    x, y = original.best.position.x + 30, original.best.position.y - 12
    assert session.correct(record.path, x, y)
    assert record.result.status == MANUAL and session.unsaved_corrections
    lon, lat = map_to_lonlat(info.crs, x, y)
    assert (record.result.best.position.lon, record.result.best.position.lat) == pytest.approx((lon, lat))
    assert session.undo_text() == f"Undo move {record.name}"
    assert session.undo() and record.result is original and not session.unsaved_corrections
    assert session.redo() and record.result.manual_position.x == pytest.approx(x)
    assert not session.redo()
    assert changes.count(record.path) == 3
    # off the map and on a failed photo nothing happens
    assert not session.correct(record.path, info.bounds[2] + 100, y)
    failed = LocalizationResult(photo=session.photos[1].path, status=FAILED, error="x.jpg: not an image")
    session.photos[1].result = failed
    assert not session.correct(failed.photo, x, y)


def test_relocalising_drops_the_correction_and_its_undo_steps(session):
    record = session.photos[0]
    session.correct(record.path, record.result.best.position.x + 3, record.result.best.position.y)
    assert session.relocalize(record.path) == [record.path]
    assert record.result is None and record.state == QUEUED and not session.can_undo


def test_confidence_is_the_pose_probability_manual_says_manual_and_heading_is_one(session, info):
    record = session.photos[0]
    assert confidence_text(record.result) == "0.83"
    assert "P(error ≤ 10 m) = 0.83" in confidence_tooltip(record.result)
    retrieval_only = make_result(info, record.path, *info.bounds[:2], pose=False)
    assert confidence_text(retrieval_only) == "n/a" and "not a calibrated" not in confidence_tooltip(retrieval_only)
    assert "no calibrated" in confidence_tooltip(retrieval_only)
    session.correct(record.path, record.result.best.position.x + 1, record.result.best.position.y)
    assert confidence_text(record.result) == "manual"
    assert math.isnan(record.result.best.confidence)                      # never 1.00 for a hand placement
    assert heading_of(record.result) == pytest.approx(45.65) == record.result.best.heading_deg


def test_identify_lists_heading_fov_error_radius_confidence_priors_and_model(session):
    rows = dict(identify(session.photos[0]))
    assert rows["Heading"] == "45.6° ± 7.5°" or rows["Heading"] == "45.7° ± 7.5°"
    assert rows["Field of view"] == "70.0°"
    assert rows["Confidence"] == "0.83 within 10 m"
    assert rows["Error radius (95 %)"] == f"{math.sqrt(Point(0, 0).buffer(12.0).area / math.pi):.1f} m"
    assert rows["Model"] == "tiny" and rows["Priors used"] == "none"
    failed = session.photos[1]
    failed.result = LocalizationResult(photo=failed.path, status=FAILED, error="b.jpg: truncated JPEG")
    assert dict(identify(failed))["Error"] == "b.jpg: truncated JPEG"


def test_an_orthophoto_given_as_a_photo_is_flagged(scene, tmp_path):
    assert inspect_photo(scene.map_path) and "not a ground photo" in inspect_photo(scene.map_path)[0]
    assert inspect_photo(sorted((scene.folder / "photos").glob("*.jpg"))[0]) == []
    assert inspect_photo(tmp_path / "missing.jpg") == []


def test_exports_report_what_they_wrote(session, tmp_path):
    record = session.photos[0]
    session.correct(record.path, record.result.best.position.x + 2, record.result.best.position.y)
    bad = session.photos[3]
    bad.result = LocalizationResult(photo=bad.path, status=FAILED, error="d.jpg: unreadable")
    summary = session.export("csv", str(tmp_path / "r.csv"))
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert summary.rows == len(rows) and summary.photos == 4 and summary.failed == 1
    assert f"Exported {len(rows)} rows (4 photos, 1 failed)" in summary.describe()
    summary = session.export("geojson", str(tmp_path / "r.geojson"))
    assert summary.rows == len(json.loads((tmp_path / "r.geojson").read_text())["features"])
    with pytest.raises(ValueError, match="kind"):
        session.export("shp", str(tmp_path / "r.shp"))
    with pytest.raises(SessionError, match="nothing to export"):
        Session().export("csv", str(tmp_path / "empty.csv"))


def test_geojson_export_cuts_regions_to_the_map(info, scene, tmp_path):
    import geopandas
    session = Session()
    session.set_map(info)
    session.add_photos([str(sorted((scene.folder / "photos").glob("*.jpg"))[0])])
    generation = session.generation
    left, bottom, right, top = info.bounds
    for path in session.map_indexed(generation):      # a camera 2 m inside the west edge: its 12 m region is not
        assert session.deliver(path, make_result(info, path, left + 2.0, (bottom + top) / 2), generation)
    session.export("geojson", str(tmp_path / "r.geojson"))
    frame = geopandas.read_file(tmp_path / "r.geojson").to_crs(info.crs)
    polygons = frame[frame.geometry.geom_type.isin(["Polygon", "MultiPolygon"])]
    assert len(polygons) >= 1
    assert polygons.total_bounds[0] >= left - 0.01          # cut at the map edge, not 10 m past it
    assert (polygons.geometry.within(box(*info.bounds).buffer(0.01))).all()


def test_project_round_trip_keeps_results_corrections_flags_and_view(session, info, tmp_path):
    record = session.photos[0]
    session.correct(record.path, record.result.best.position.x + 4, record.result.best.position.y)
    session.flag(session.photos[1].path, ["b: a georeferenced raster"])
    saved = session.save(tmp_path / "work", {"layers": {"order": ["cameras"]}, "view": (1, 2, 3, 4),
                                             "selected_photo": record.path})
    assert saved.name == "work.vfproj" and not session.unsaved_corrections
    project = read_project(saved)
    again = Session()
    again.restore(project, read_map_info(project.map_path))
    assert [r.path for r in again.photos] == [r.path for r in session.photos]
    assert again.record(record.path).result.manual_position == record.result.manual_position
    assert again.photos[1].flags == ["b: a georeferenced raster"]
    assert project.view == {"layers": {"order": ["cameras"]}, "view": (1.0, 2.0, 3.0, 4.0),
                            "selected_photo": record.path}
    assert again.truth and not again.unsaved_corrections


def test_damaged_project_files_name_the_file(tmp_path):
    broken = tmp_path / "broken.vfproj"
    broken.write_text("{not json")
    with pytest.raises(SessionError, match="broken.vfproj: not a Viewfinder project"):
        read_project(broken)
    (tmp_path / "other.vfproj").write_text(json.dumps({"format": "something"}))
    with pytest.raises(SessionError, match="other.vfproj"):
        read_project(tmp_path / "other.vfproj")


def test_another_model_relocalises_uncorrected_photos_and_keeps_corrections(session):
    record = session.photos[0]
    session.correct(record.path, record.result.best.position.x + 4, record.result.best.position.y)
    waiting = session.use_model("other.safetensors")
    assert record.path not in waiting and len(waiting) == 3
    assert record.result.status == MANUAL and not session.indexed


def test_the_real_engine_localises_a_session_headless(scene, small_checkpoint, tmp_path):
    s = Session(str(small_checkpoint))
    s.set_map(read_map_info(scene.map_path))
    s.add_photos([str(p) for p in sorted((scene.folder / "photos").glob("*.jpg"))[:2]])
    jobs = EngineJobs(str(small_checkpoint), "cpu")
    jobs._localizer = small_localizer(small_checkpoint, tmp_path / "cache")
    states = []
    s.on("photo", lambda path: states.append(s.record(path).state))
    run_session(s, jobs)
    assert [r.result.status for r in s.photos] == [DONE, DONE]
    assert RUNNING in states and CANCELLED not in states
    for record in s.photos:
        best = record.result.best
        assert s.map.contains(best.position.x, best.position.y)
        assert heading_of(record.result) == pytest.approx(best.heading_deg if record.result.pose is None
                                                          else record.result.pose.heading_deg)
    x, y = lonlat_to_map(s.map.crs, s.photos[0].result.best.position.lon, s.photos[0].result.best.position.lat)
    assert (float(x), float(y)) == pytest.approx((s.photos[0].result.best.position.x,
                                                  s.photos[0].result.best.position.y), abs=0.01)
    assert box(*s.map.bounds).area > 0
