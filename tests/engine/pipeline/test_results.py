import numpy as np
import pytest
from affine import Affine
from shapely.geometry import Point, box

from engine.pipeline.results import Candidate, GeoGrid, LocalizationResult, Position, RankedPosition


def _result():
    grid = GeoGrid(np.arange(12, dtype=np.float32).reshape(3, 4), Affine(8, 0, 1000, 0, -8, 2000), "EPSG:32633")
    candidate = Candidate(rank=1, tile_index=17, score=0.83, footprint=box(1000, 1976, 1032, 2000),
                          position=Position(1010.5, 1990.25, 15.1, 45.2), heading_deg=271.5, confidence=0.6,
                          overlap_region=Point(1012, 1992).buffer(5),
                          cwr_points=[Position(1011, 1991, 15.1, 45.2)], attention=[grid],
                          fine_probabilities=grid)
    return LocalizationResult(photo="/data/photos/a b.jpg", status="done", crs="EPSG:32633",
                              photo_sha256="ab" * 32, model_id="m1", map_id="map1", fov_deg=70.0,
                              candidates=[candidate],
                              positions=[RankedPosition(1, candidate.position, 0.83, 0.6, 271.5, [1])],
                              priors={"radius_m": 150.0}, timings_ms={"embed": 12.5}, created="2026-11-22T02:00:00")


def test_json_round_trip_keeps_everything():
    original = _result()
    again = LocalizationResult.loads(original.dumps())
    assert again.to_json() == original.to_json()
    grid = again.candidates[0].attention[0]
    np.testing.assert_array_equal(grid.values, original.candidates[0].attention[0].values)
    assert grid.bounds() == (1000, 1976, 1032, 2000)
    assert again.candidates[0].overlap_region.area == pytest.approx(original.candidates[0].overlap_region.area)
    assert again.photo_name == "a b.jpg"


def test_manual_correction_becomes_the_best_position():
    result = _result()
    assert result.best.position.x == 1010.5 and result.method == "cafr"
    fixed = result.corrected(Position(1020.0, 1980.0, 15.2, 45.1))
    assert fixed.status == "manual" and fixed.method == "manual"
    assert fixed.best.position.x == 1020.0 and fixed.best.heading_deg == 271.5
    assert result.best.position.x == 1010.5   # the original is untouched
    assert LocalizationResult.loads(fixed.dumps()).best.position.y == 1980.0


def test_status_is_checked():
    with pytest.raises(ValueError, match="status"):
        LocalizationResult(photo="x.jpg", status="maybe")
    failed = LocalizationResult(photo="x.jpg", status="failed", error="x.jpg: corrupt")
    assert failed.best is None and LocalizationResult.loads(failed.dumps()).error == "x.jpg: corrupt"
