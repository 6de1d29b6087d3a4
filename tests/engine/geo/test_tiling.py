import numpy as np
import pytest
import rasterio
from affine import Affine
from shapely.geometry import box
from shapely.ops import unary_union

from engine.geo.geotiff import write_geotiff
from engine.geo.raster import MapRaster
from engine.geo.tiling import TilingSpec, tile_map

CRS = 32633


def _map(tmp_path, width=1000, height=700, nodata_rows=None):
    image = np.full((height, width, 3), 120, np.uint8)
    path = tmp_path / "m.tif"
    if nodata_rows is None:
        write_geotiff(path, image, Affine(0.5, 0, 400000, 0, -0.5, 5000000), CRS)
    else:
        image[nodata_rows] = 0
        write_geotiff(path, image, Affine(0.5, 0, 400000, 0, -0.5, 5000000), CRS, compress="deflate",
                      nodata=0)
    return path


def test_tiles_cover_the_map_with_the_stated_overlap(tmp_path):
    spec = TilingSpec(tile_px=100, metres_per_px=1.0, overlap=0.5)   # 100 m tiles every 50 m
    with MapRaster(_map(tmp_path)) as raster:
        tiles = tile_map(raster, spec)
        left, bottom, right, top = raster.bounds
    footprints = [t.footprint for t in tiles]
    assert all(f.area == pytest.approx(100 * 100) for f in footprints)
    assert unary_union(footprints).covers(box(left, bottom, right, top))
    # Neighbours along a row overlap by half a tile; x starts step by the stride, last one edge-aligned.
    xs = sorted({round(t.origin_x, 6) for t in tiles})
    assert np.allclose(np.diff(xs)[:-1], 50.0) and xs[-1] + 100 == pytest.approx(right)
    first, second = footprints[0], footprints[1]
    assert first.intersection(second).area == pytest.approx(0.5 * 100 * 100)
    assert len(tiles) == len(xs) * len({t.origin_y for t in tiles})
    assert all(t.footprint.bounds[0] >= left - 1e-6 and t.footprint.bounds[3] <= top + 1e-6 for t in tiles)


def test_nodata_tiles_are_skipped(tmp_path):
    path = _map(tmp_path, 1000, 1000, nodata_rows=slice(500, None))   # southern half is nodata
    with rasterio.open(path) as ds:
        assert ds.nodata == 0
    with MapRaster(path) as raster:
        tiles = tile_map(raster, TilingSpec(tile_px=100, metres_per_px=1.0, overlap=0.0))
        _, bottom, _, top = raster.bounds
    # 500 m map, 100 m tiles: rows 0-2 hold >= 50 % map (row 2 straddles the edge), rows 3-4 none.
    assert len(tiles) == 5 * 3
    assert sorted({round(top - t.origin_y) for t in tiles}) == [0, 100, 200]
    assert TilingSpec(100, 1.0).key() != TilingSpec(100, 1.0, overlap=0.25).key()
    with pytest.raises(ValueError):
        TilingSpec(100, 1.0, overlap=1.0)
