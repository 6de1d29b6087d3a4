"""A map is opened once per indexing (planning and tiling share it), not at all when the caller holds it open
already (the command line's index plan, the app's header read), and afresh when its file changed since."""
import os
import shutil

import pytest

from engine.index import indexer
from engine.pipeline import MapRaster
from engine.pipeline.session import EngineJobs
from tests.engine.pipeline.scenes import small_localizer


@pytest.fixture
def opened(monkeypatch) -> list:
    """The paths indexing opens (the embedding's reader threads open their own through engine.index.embed)."""
    paths = []

    class CountedMapRaster(MapRaster):
        def __init__(self, path) -> None:
            paths.append(path)
            super().__init__(path)

    monkeypatch.setattr(indexer, "MapRaster", CountedMapRaster)
    return paths


def test_indexing_opens_the_map_once(scene, small_checkpoint, tmp_path, opened):
    localizer = small_localizer(small_checkpoint, tmp_path)
    embedded = localizer.index_map(scene.map_path)
    assert len(opened) == 1 and not embedded.from_cache
    cached = localizer.index_map(scene.map_path)
    assert len(opened) == 2 and cached.from_cache and len(cached) == len(embedded)


def test_a_map_held_open_is_not_opened_again(scene, small_checkpoint, tmp_path, opened):
    localizer = small_localizer(small_checkpoint, tmp_path)
    with MapRaster(scene.map_path) as raster:
        gallery = localizer.index_map(scene.map_path, raster=raster)
        assert raster.bounds == gallery.bounds                 # still open: the caller closes it
    assert opened == [] and len(gallery) > 0


def test_the_engine_jobs_index_the_map_they_read(scene, small_checkpoint, tmp_path, opened):
    jobs = EngineJobs(str(small_checkpoint), "cpu")
    jobs._localizer = small_localizer(small_checkpoint, tmp_path / "cache")
    info = jobs.read_map(str(scene.map_path))
    gallery = jobs.index(str(scene.map_path))
    assert opened == [] and info.bounds == pytest.approx(gallery.bounds)
    jobs.index(str(scene.map_path))                              # the header's map went to the first index
    assert len(opened) == 1


def test_a_map_rewritten_since_its_header_was_read_is_opened_afresh(scene, small_checkpoint, tmp_path, opened):
    map_path = shutil.copy(scene.map_path, tmp_path / "map.tif")
    jobs = EngineJobs(str(small_checkpoint), "cpu")
    jobs._localizer = small_localizer(small_checkpoint, tmp_path / "cache")
    jobs.read_map(str(map_path))
    stat = os.stat(map_path)
    os.utime(map_path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    jobs.index(str(map_path))
    assert len(opened) == 1
