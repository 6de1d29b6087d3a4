"""Gallery indexing: tiling on the CRS grid, pipelined embedding, the on-disk cache and faiss vs brute force."""
import json

import numpy as np
import pytest
import torch
from shapely.geometry import box
from shapely.ops import unary_union

from engine.geo.raster import MapRaster
from engine.geo.tiling import tile_map
from engine.index.cache import map_fingerprint
from engine.index.embed import TileReader, embed_tiles, images_to_tensor, tiling_for_model
from engine.model import CrossViewNet
from engine.pipeline import Localizer, LocalizerConfig
from engine.progress import Cancelled, CancelToken
from tests.engine.model.conftest import small_model
from tests.engine.pipeline.scenes import geographic_copy, small_localizer


class ForwardCounter:
    """Counts calls of a module's forward (the satellite encoder): a cache hit must not make any."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.calls = 0
        self.handle = module.register_forward_pre_hook(self._count)

    def _count(self, module, inputs) -> None:
        self.calls += 1


def test_snapped_tiles_cover_the_map_with_the_stated_overlap_in_map_crs(scene, small_checkpoint, tmp_path):
    localizer = small_localizer(small_checkpoint, tmp_path)
    gallery = localizer.index_map(scene.map_path)
    spec = gallery.spec
    assert spec.tile_m == pytest.approx(128 * 0.6) and spec.stride_m == pytest.approx(spec.tile_m / 2)
    with MapRaster(scene.map_path) as raster:
        assert gallery.crs == raster.crs and gallery.crs.to_epsg() == 32616    # UTM metres, as the map
        left, bottom, right, top = raster.bounds
    footprints = gallery.footprints()
    assert all(f.area == pytest.approx(spec.tile_m ** 2) for f in footprints)
    # origins on the CRS-wide lattice of stride multiples, neighbours sharing half a tile
    origins = np.array([(t.origin_x, t.origin_y) for t in gallery.tiles])
    np.testing.assert_allclose(origins / spec.stride_m, np.round(origins / spec.stride_m), atol=1e-9)
    row = sorted((t for t in gallery.tiles if t.origin_y == gallery.tiles[0].origin_y), key=lambda t: t.origin_x)
    np.testing.assert_allclose(np.diff([t.origin_x for t in row]), spec.stride_m)
    assert row[0].footprint.intersection(row[1].footprint).area == pytest.approx(0.5 * spec.tile_m ** 2)
    assert unary_union(footprints).covers(box(left, bottom, right, top))
    # every tile holds about a quarter of map or more (judged on a quarter-stride grid, so one grid cell
    # per side of slack); centres are the footprint centroids
    cell = spec.stride_m / 4
    for tile, centre in zip(gallery.tiles, gallery.centres):
        inside = tile.footprint.intersection(box(left, bottom, right, top)).area
        assert inside >= (spec.tile_m / 2 - cell) ** 2
        assert tile.footprint.centroid.coords[0] == pytest.approx(tuple(centre))


def test_geographic_copy_gets_the_same_tiles(scene, small_checkpoint, tmp_path):
    copy = geographic_copy(scene.map_path, tmp_path / "wgs84.tif")
    localizer = small_localizer(small_checkpoint, tmp_path / "cache")
    utm, geographic = localizer.index_map(scene.map_path), localizer.index_map(copy)
    assert geographic.crs == utm.crs            # warped to the same UTM zone
    assert geographic.map_id != utm.map_id
    # the same lattice: identical tiles wherever both maps hold the place; the warped copy's ragged nodata
    # border may only drop some of the tiles that are mostly off the map
    with MapRaster(scene.map_path) as raster:
        interior = box(*raster.bounds)
    assert set(geographic.tiles) <= set(utm.tiles)
    assert {t for t in utm.tiles if interior.contains(t.footprint)} <= set(geographic.tiles)
    assert len(geographic.tiles) >= 0.75 * len(utm.tiles)


def test_cache_is_hit_on_reopen_without_any_model_call(scene, small_checkpoint, tmp_path):
    first = small_localizer(small_checkpoint, tmp_path)
    built = first.index_map(scene.map_path)
    assert not built.from_cache and built.cache_file.is_file()
    assert json.loads(built.cache_file.read_text())["key"]["model_id"] == first.model_id

    again = small_localizer(small_checkpoint, tmp_path)         # a fresh process would do the same
    counter = ForwardCounter(again.model.satellite_encoder)
    reopened = again.index_map(scene.map_path)
    assert reopened.from_cache and counter.calls == 0
    np.testing.assert_array_equal(reopened.descriptors, built.descriptors)
    assert reopened.tiles == built.tiles

    other_tiling = small_localizer(small_checkpoint, tmp_path, tile_overlap=0.25)
    counter = ForwardCounter(other_tiling.model.satellite_encoder)
    assert not other_tiling.index_map(scene.map_path).from_cache and counter.calls > 0


def test_cache_key_follows_the_weights_not_their_source(scene, small_checkpoint, tmp_path):
    original = small_localizer(small_checkpoint, tmp_path)
    original.index_map(scene.map_path)
    model = CrossViewNet.load(small_checkpoint)
    in_memory = Localizer(model, config=LocalizerConfig(cache_dir=tmp_path))
    assert in_memory.model_id == original.model_id and in_memory.index_map(scene.map_path).from_cache
    with torch.no_grad():
        model.satellite_encoder.head.project.bias[0] += 1e-3
    edited = Localizer(model, config=LocalizerConfig(cache_dir=tmp_path))
    assert edited.model_id != original.model_id
    assert not edited.index_map(scene.map_path).from_cache
    saved = model.save(tmp_path / "edited.safetensors")
    assert small_localizer(saved, tmp_path).index_map(scene.map_path).from_cache


def test_corrupt_cache_entry_is_rebuilt(scene, small_checkpoint, tmp_path):
    localizer = small_localizer(small_checkpoint, tmp_path)
    built = localizer.index_map(scene.map_path)
    built.cache_file.with_suffix(".safetensors").write_bytes(b"not safetensors")
    rebuilt = localizer.index_map(scene.map_path)
    assert not rebuilt.from_cache
    np.testing.assert_allclose(rebuilt.descriptors, built.descriptors, atol=1e-6)
    assert localizer.index_map(scene.map_path).from_cache


def test_map_hash_is_remembered_until_the_file_changes(tmp_path):
    path = tmp_path / "map.bin"
    path.write_bytes(b"a" * 1000)
    first = map_fingerprint(path, tmp_path / "cache")
    assert len(list((tmp_path / "cache" / "map-hashes").iterdir())) == 1
    assert map_fingerprint(path, tmp_path / "cache") == first
    path.write_bytes(b"b" * 1001)
    assert map_fingerprint(path, tmp_path / "cache") != first


def test_tiles_assembled_from_blocks_match_direct_reads(scene):
    spec = tiling_for_model(small_model())
    with MapRaster(scene.map_path) as raster:
        tiles = tile_map(raster, spec)
        direct = np.stack([raster.read_tile(t)[0] for t in tiles]).astype(int)
    with TileReader(scene.map_path, spec) as reader:
        assembled = reader.read(tiles)
        blocks = len(reader._blocks)
    assert assembled.shape == direct.shape and reader.block_px == 64
    difference = np.abs(assembled - direct)
    assert difference.mean() < 0.1 and np.percentile(difference, 99) <= 1
    # each map block read once: about a quarter of the pixels four overlapping tiles would read
    assert blocks < 0.35 * len(tiles) * 4
    with TileReader(scene.map_path, None) as plain:             # no lattice: direct reads
        np.testing.assert_array_equal(plain.read(tiles[:3]), direct[:3])


def test_pipelined_embedding_equals_direct_model_calls(scene):
    model = small_model(seed=1).eval()
    spec = tiling_for_model(model)
    with MapRaster(scene.map_path) as raster:
        tiles = tile_map(raster, spec)[:11]
    with TileReader(scene.map_path, spec) as reader:
        images = reader.read(tiles)
    with torch.inference_mode():
        direct = model.embed_satellite(images_to_tensor(images, model.device), with_pyramid=False).descriptor
    seen = []
    run = embed_tiles(model, scene.map_path, tiles, spec=spec, batch_size=3, reader_threads=3, prefetch_batches=2,
                      progress=lambda stage, done, total: seen.append((done, total)))
    np.testing.assert_allclose(run.descriptors, direct.numpy(), atol=1e-5)
    assert seen[0] == (0, 11) and seen[-1] == (11, 11) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert run.model_seconds <= run.seconds and run.read_wait_seconds >= 0


def test_embedding_can_be_cancelled(scene):
    model = small_model(seed=1).eval()
    with MapRaster(scene.map_path) as raster:
        tiles = tile_map(raster, tiling_for_model(model))
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        embed_tiles(model, scene.map_path, tiles, batch_size=4, cancel=token)


def test_gallery_top_k_equals_brute_force(scene, small_checkpoint, tmp_path):
    gallery = small_localizer(small_checkpoint, tmp_path).index_map(scene.map_path)
    rng = np.random.default_rng(0)
    queries = rng.normal(size=(6, gallery.descriptors.shape[1])).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    hits = gallery.search.search(queries, 7)
    scores = queries @ gallery.descriptors.T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :7]
    np.testing.assert_array_equal(hits.indices, order)
    np.testing.assert_allclose(hits.scores, np.take_along_axis(scores, order, 1), atol=1e-5)
    np.testing.assert_allclose(gallery.scores(queries[0]), scores[0], atol=1e-5)
    # with a spatial prior: the same, among the tiles centred within the radius
    x, y = gallery.centres.mean(axis=0)
    near = gallery.search.search(queries, 4, near=(x, y, 60.0))
    allowed = np.flatnonzero(np.hypot(*(gallery.centres - (x, y)).T) <= 60.0)
    sub = np.argsort(-scores[:, allowed], axis=1, kind="stable")[:, :4]
    np.testing.assert_array_equal(near.indices, allowed[sub])


def test_unwritable_cache_only_costs_the_cache(scene, small_checkpoint, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    localizer = small_localizer(small_checkpoint, blocker)
    gallery = localizer.index_map(scene.map_path)
    assert len(gallery) > 0 and gallery.cache_file is None and blocker.read_text() == "x"
