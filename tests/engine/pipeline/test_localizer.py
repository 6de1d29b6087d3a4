"""The Localizer end to end on a small synthetic scene with a small random model: result geometry, CRS
handling, priors, bad input and cancellation."""
import shutil
from dataclasses import replace

import numpy as np
import pytest
import rasterio
import torch
from affine import Affine
from PIL import Image
from shapely.geometry import Point

from engine.data.geometry import TileFrame, lonlat_to_map, map_to_lonlat
from engine.geo.photo import load_photo
from engine.pipeline import Cancelled, CancelToken, LocalizationResult, PriorOverrides, RasterError, find_photos
from engine.pipeline.analysis import choose_cell, merge_candidates, retrieval_probabilities
from engine.pipeline.results import Candidate, Position
from tests.engine.pipeline.scenes import SCENE_PHOTOS, geographic_copy, small_localizer


@pytest.fixture(scope="module")
def indexed(scene, small_checkpoint, tmp_path_factory):
    # retrieval and candidate analysis only; the pose step has tests of its own (test_pose_localizer.py)
    localizer = small_localizer(small_checkpoint, tmp_path_factory.mktemp("cache"), top_k=4, pose=False)
    return localizer, localizer.index_map(scene.map_path)


def _photos(scene):
    return find_photos([scene.folder / "photos"])


def test_results_are_georeferenced_and_consistent(scene, indexed):
    localizer, gallery = indexed
    results = list(localizer.localize_many(_photos(scene), gallery, PriorOverrides.none()))
    assert len(results) == SCENE_PHOTOS and all(r.status == "done" for r in results)
    for result in results:
        assert result.crs == "EPSG:32616" and result.map_id == gallery.map_id and result.model_id == localizer.model_id
        assert len(result.photo_sha256) == 64 and result.fov_deg is None      # priors switched off
        assert set(result.timings_ms) == {"decode", "embed", "search", "tiles", "attention", "fine", "analysis",
                                         "pose"}
        assert [c.rank for c in result.candidates] == [1, 2, 3, 4]
        scores = [c.score for c in result.candidates]
        assert scores == sorted(scores, reverse=True)
        np.testing.assert_allclose(scores, np.sort(gallery.scores(_query(localizer, result)))[::-1][:4], atol=1e-5)
        confidences = [c.confidence for c in result.candidates]
        assert all(0 <= c <= 1 for c in confidences) and sum(confidences) <= 1 + 1e-9
        for candidate in result.candidates:
            tile = gallery.tiles[candidate.tile_index]
            assert candidate.footprint.equals(tile.footprint)
            assert candidate.footprint.buffer(1e-6).contains(Point(candidate.position.x, candidate.position.y))
            lon, lat = map_to_lonlat(gallery.crs, candidate.position.x, candidate.position.y)
            assert (candidate.position.lon, candidate.position.lat) == pytest.approx((float(lon), float(lat)))
            # attention per level covers exactly the tile and sums to one
            assert [g.values.shape for g in candidate.attention] == [(16, 16), (8, 8), (4, 4), (2, 2)]
            for grid in candidate.attention:
                assert grid.bounds() == pytest.approx(tile.footprint.bounds)
                assert grid.values.sum() == pytest.approx(1.0, abs=1e-4) and grid.crs == result.crs
            assert len(candidate.cwr_points) == 4
            assert all(candidate.footprint.buffer(1e-6).contains(Point(p.x, p.y)) for p in candidate.cwr_points)
            region = candidate.overlap_region
            assert region is not None and region.is_valid and tile.footprint.buffer(1e-6).contains(region)
            assert candidate.fine_probabilities.bounds() == pytest.approx(tile.footprint.bounds)
            assert 0 <= candidate.heading_deg < 360
        ranked = result.positions
        assert [p.rank for p in ranked] == list(range(1, len(ranked) + 1))
        assert [p.confidence for p in ranked] == sorted((p.confidence for p in ranked), reverse=True)
        assert sorted(r for p in ranked for r in p.support) == [1, 2, 3, 4]
        assert result.best is ranked[0]
        assert np.isfinite(result.score_surface.values).sum() == len(gallery)
        again = LocalizationResult.loads(result.dumps())
        assert again.to_json() == result.to_json()


def _query(localizer, result):
    """The photo's ground descriptor, recomputed."""
    with torch.inference_mode():
        return localizer.model.embed_ground(localizer.ground_tensor(load_photo(result.photo))).descriptor[0].numpy()


def test_score_surface_puts_each_tile_score_at_its_centre(scene, indexed):
    localizer, gallery = indexed
    descriptor = gallery.descriptors[7]
    surface = gallery.score_surface(descriptor)
    scores = gallery.scores(descriptor)
    inverse = ~surface.transform
    for (x, y), score in zip(gallery.centres, scores):
        col, row = inverse @ (x, y)
        assert (col % 1, row % 1) == pytest.approx((0.5, 0.5))
        assert surface.values[int(row), int(col)] == pytest.approx(score)
    assert surface.transform.a == pytest.approx(gallery.spec.stride_m)


def test_geographic_copy_localises_to_the_same_lonlat(scene, small_checkpoint, tmp_path):
    copy = geographic_copy(scene.map_path, tmp_path / "wgs84.tif")
    with rasterio.open(copy) as ds:
        assert ds.crs.to_epsg() == 4326
    photos = _photos(scene)
    # the photos' own GPS with a 6 m radius, every tile that can hold the camera examined: a random model's
    # near-equal retrieval scores cannot reorder the candidates, so only CRS handling could move the answer
    localizer = small_localizer(small_checkpoint, tmp_path / "cache", top_k=16, pose=False)
    utm, geographic = localizer.index_map(scene.map_path), localizer.index_map(copy)
    prior = PriorOverrides(radius_m=6.0)
    for a, b in zip(localizer.localize_many(photos, utm, prior), localizer.localize_many(photos, geographic, prior)):
        assert b.crs == a.crs and {utm.tiles[c.tile_index] for c in a.candidates} == \
            {geographic.tiles[c.tile_index] for c in b.candidates}
        x, y = lonlat_to_map(utm.crs, b.best.position.lon, b.best.position.lat)
        assert np.hypot(a.best.position.x - x, a.best.position.y - y) < 1.0
        # attention grids, overlap regions and footprints of a shared tile sit in the same metric frame
        mine, other = a.candidates[0], next(c for c in b.candidates
                                            if geographic.tiles[c.tile_index] == utm.tiles[a.candidates[0].tile_index])
        assert [g.transform for g in mine.attention] == [g.transform for g in other.attention]
        assert mine.attention[0].crs == other.attention[0].crs == "EPSG:32616"
        assert other.overlap_region.within(other.footprint.buffer(1e-6))


def test_exif_priors_restrict_the_search_and_fill_the_result(scene, indexed):
    localizer, gallery = indexed
    photo = _photos(scene)[0]
    truth = next(t for t in scene.photos if t.name == photo.name)
    result = localizer.localize(photo, gallery)
    position = result.priors["position"]
    assert position["source"] == "exif" and position["lon"] == pytest.approx(truth.lon, abs=1e-6)
    assert position["radius_m"] == pytest.approx(45.0)       # 3 x the default 15 m GPS error
    assert result.priors["heading"]["heading_deg"] == pytest.approx(truth.heading_deg, abs=0.01)
    assert result.fov_deg == pytest.approx(truth.fov_deg, abs=1.5) and result.priors["fov_source"] == "exif"
    reach = 45.0 + gallery.spec.tile_m / np.sqrt(2)
    for candidate in result.candidates:
        centre = gallery.centres[candidate.tile_index]
        assert np.hypot(centre[0] - truth.x, centre[1] - truth.y) <= reach + 1e-6
    # a user radius and position override EXIF; a position far off the map falls back to the whole map
    user = localizer.localize(photo, gallery, PriorOverrides(radius_m=20.0, fov_deg=33.0))
    assert user.priors["position"]["radius_m"] == 20.0 and user.fov_deg == 33.0
    far = localizer.localize(photo, gallery, PriorOverrides(lonlat=(0.0, 0.0)))
    assert "position_prior_unused" in far.priors and len(far.candidates) == 4
    for candidate in far.candidates:                   # the unused prior pulls no camera off its tile
        assert candidate.footprint.contains(Point(candidate.position.x, candidate.position.y))
        assert candidate.confidence > 0


def test_choose_cell_is_the_model_decoding_without_priors_and_follows_priors():
    rng = np.random.default_rng(0)
    grid = 4
    logits = rng.normal(size=grid * grid)
    probabilities = np.exp(logits) / np.exp(logits).sum()
    offsets = rng.uniform(size=(grid * grid, 2))
    angles = rng.uniform(0, 2 * np.pi, grid * grid)
    vectors = np.stack([np.sin(angles), np.cos(angles)], -1)
    tile = TileFrame(1000.0, 2000.0, 128, 128, 0.5)
    plain = choose_cell(probabilities, offsets, vectors, (32.0, 32.0), tile)
    best = int(np.argmax(logits))
    assert plain.position_px == pytest.approx(((best % grid + offsets[best, 0]) * 32,
                                               (best // grid + offsets[best, 1]) * 32))
    assert plain.prior_weight == 1.0 and plain.cell_probability == pytest.approx(probabilities.max())
    # a tight heading prior picks the cell whose predicted heading agrees
    target = int(np.argmin(probabilities))
    heading = float(np.rad2deg(angles[target])) % 360
    turned = choose_cell(probabilities, offsets, vectors, (32.0, 32.0), tile, prior_heading=(heading, 1.0))
    assert turned.heading_deg == pytest.approx(heading)
    # a tight position prior picks the cell nearest to it
    px, py = (target % grid + offsets[target, 0]) * 32, (target // grid + offsets[target, 1]) * 32
    x, y = tile.tile_to_map(px, py)
    placed = choose_cell(probabilities, offsets, vectors, (32.0, 32.0), tile, prior_xy=(float(x), float(y), 1.0),
                         cell_sigma_px=0.5)
    assert placed.position_px == pytest.approx((px, py)) and placed.prior_weight == pytest.approx(1.0)
    assert placed.certainty <= placed.cell_probability


def test_a_position_prior_fuses_with_the_cell_position_by_inverse_variance():
    grid, cell = 4, (32.0, 32.0)
    tile = TileFrame(1000.0, 2000.0, 128, 128, 0.5)            # 16 m cells
    offsets = np.full((grid * grid, 2), 0.5)
    vectors = np.tile([0.0, 1.0], (grid * grid, 1))
    sure = np.full(grid * grid, 1e-6)
    sure[5] = 1.0                                               # cell (1, 1): centre at px (48, 48)
    cell_x, cell_y = (float(v) for v in tile.tile_to_map(48.0, 48.0))
    prior = (cell_x + 12.0, cell_y - 9.0, 6.0)                   # 15 m away, sigma 6 m
    # the head's spread in its cell: 8 px = 4 m, so the prior gets 16 / (16 + 36) of the pull
    fused = choose_cell(sure, offsets, vectors, cell, tile, prior_xy=prior, cell_sigma_px=8.0)
    x, y = tile.tile_to_map(*fused.position_px)
    share = 16.0 / 52.0
    assert (x, y) == pytest.approx((cell_x + 12.0 * share, cell_y - 9.0 * share))
    assert fused.prior_weight == pytest.approx(np.exp(-0.5 * 225.0 / 52.0))
    # a model with no opinion: the answer lands between the prior and the nearest cell, closer to the sharper
    flat = np.full(grid * grid, 1.0 / grid ** 2)
    vague = choose_cell(flat, offsets, vectors, cell, tile, prior_xy=(cell_x + 3.0, cell_y, 2.0))
    x, y = tile.tile_to_map(*vague.position_px)
    assert (x, y) == pytest.approx((cell_x + 3.0 * 64.0 / 68.0, cell_y))   # default spread half a cell: 8 m
    # a sharp prior (survey GPS) wins; without a prior the model's own position stands
    sharp = choose_cell(sure, offsets, vectors, cell, tile, prior_xy=(cell_x + 5.0, cell_y, 0.01))
    assert tile.tile_to_map(*sharp.position_px)[0] == pytest.approx(cell_x + 5.0, abs=0.01)
    alone = choose_cell(sure, offsets, vectors, cell, tile)
    assert alone.position_px == pytest.approx((48.0, 48.0))


def test_merging_clusters_nearby_candidates():
    def candidate(rank, x, y, confidence, heading, score):
        return Candidate(rank, rank, score, Point(x, y).buffer(50), Position(x, y, 0, 0), heading, confidence)
    crs = "EPSG:32633"
    merged = merge_candidates([candidate(1, 500000, 5000000, 0.3, 350, 0.9),
                               candidate(2, 500008, 5000000, 0.1, 10, 0.8),
                               candidate(3, 500100, 5000000, 0.35, 90, 0.7)], 12.0, crs)
    assert [p.support for p in merged] == [[1, 2], [3]]
    first = merged[0]
    assert first.confidence == pytest.approx(0.4) and first.score == pytest.approx(0.9)
    assert first.position.x == pytest.approx(500002.0) and first.heading_deg == pytest.approx(355.0, abs=0.1)
    lon, lat = map_to_lonlat(crs, first.position.x, first.position.y)
    assert (first.position.lon, first.position.lat) == pytest.approx((float(lon), float(lat)))
    assert retrieval_probabilities(np.array([0.5, 0.5]), 14.0) == pytest.approx([0.5, 0.5])
    assert retrieval_probabilities(np.array([0.6, 0.5]), 100.0)[0] > 0.99


def test_bad_photos_fail_with_their_message_and_the_rest_localise(scene, indexed, tmp_path):
    localizer, gallery = indexed
    good = _photos(scene)[:2]
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(good[0].read_bytes()[:1500])
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    text = tmp_path / "notes.tif"
    text.write_text("not an image\n")
    plain_tiff = tmp_path / "no-crs.tif"           # a photo needs no georeferencing
    Image.open(good[1]).save(plain_tiff)
    grey = tmp_path / "grey.png"
    Image.open(good[1]).convert("L").save(grey)
    two_band = tmp_path / "two-band.tif"          # read as grey + alpha
    with rasterio.open(two_band, "w", driver="GTiff", width=96, height=64, count=2, dtype="uint8") as ds:
        ds.write(np.full((2, 64, 96), 120, np.uint8))
    missing = tmp_path / "missing.jpg"
    paths = [truncated, good[0], empty, text, plain_tiff, missing, grey, two_band, good[1]]
    results = {r.photo_name: r for r in localizer.localize_many(paths, gallery)}
    assert [results[p.name].status for p in paths] == ["failed", "done", "failed", "failed", "done", "failed",
                                                       "done", "done", "done"]
    for path, needle in ((truncated, "truncated"), (empty, "0 bytes"), (text, "not an image"),
                         (missing, "not found")):
        error = results[path.name].error
        assert str(path) in error and needle in error and results[path.name].candidates == []


def test_bad_maps_raise_their_clear_error(tmp_path, small_checkpoint, scene):
    localizer = small_localizer(small_checkpoint, tmp_path / "cache")
    text = tmp_path / "text.tif"
    text.write_text("hello")
    empty = tmp_path / "empty.tif"
    empty.write_bytes(b"")
    no_crs = tmp_path / "no-crs.tif"
    Image.new("RGB", (300, 300), (90, 120, 60)).save(no_crs)
    two_band = tmp_path / "two-band.tif"
    with rasterio.open(two_band, "w", driver="GTiff", width=64, height=64, count=2, dtype="uint8", crs=32633,
                       transform=Affine(1, 0, 500000, 0, -1, 5000000)) as ds:
        ds.write(np.zeros((2, 64, 64), np.uint8))
    for path, needle in ((text, "not a readable raster"), (empty, "empty"), (no_crs, "no georeferencing"),
                         (two_band, "2 bands")):
        with pytest.raises(RasterError) as caught:
            localizer.index_map(path)
        assert str(path) in str(caught.value) and needle in str(caught.value)


def test_cancel_stops_a_batch(scene, indexed):
    localizer, gallery = indexed
    token = CancelToken()
    results = localizer.localize_many(_photos(scene), gallery, cancel=token)
    first = next(results)
    token.cancel()
    with pytest.raises(Cancelled):
        next(results)
    assert first.status == "done"
    stages = []
    with pytest.raises(Cancelled):
        localizer.localize(_photos(scene)[1], gallery, cancel=token,
                           progress=lambda stage, done, total: stages.append(done))
    assert stages == [1]


def test_photo_copied_elsewhere_gets_the_same_answer(scene, indexed, tmp_path):
    localizer, gallery = indexed
    photo = _photos(scene)[2]
    copy = tmp_path / "renamed.jpg"
    shutil.copy(photo, copy)
    a, b = localizer.localize(photo, gallery), localizer.localize(copy, gallery)
    assert a.photo_sha256 == b.photo_sha256
    assert replace(a.best.position) == b.best.position


def test_a_measured_fine_error_sets_how_much_the_model_counts_against_priors(indexed):
    localizer, _ = indexed
    model = localizer.model
    assert "calibration" not in model.metadata
    assert localizer.fine_sigma_px((32.0, 32.0)) == pytest.approx(16.0)        # half a cell without a measure
    model.metadata["calibration"] = {"fine_median_error_m": 20.0 * np.sqrt(2 * np.log(2))}
    try:
        assert localizer.fine_sigma_px((32.0, 32.0)) == pytest.approx(20.0 / model.config.metres_per_pixel)
    finally:
        del model.metadata["calibration"]
