import numpy as np
import pytest
import rasterio
from affine import Affine

from engine.data import geometry as g
from engine.geo.geotiff import write_geotiff


def test_geotiff_georeferencing_round_trip(tmp_path):
    crs = g.utm_crs_for_lonlat(11.25, 43.77)
    cx, cy = (float(v) for v in g.lonlat_to_map(crs, 11.25, 43.77))
    transform = Affine(0.5, 0, cx - 256, 0, -0.5, cy + 256)
    image = np.random.default_rng(1).integers(0, 255, (1024, 1024, 3), dtype=np.uint8)
    path = tmp_path / "map.tif"
    write_geotiff(path, image, transform, crs)

    with rasterio.open(path) as ds:
        assert ds.crs.to_epsg() == 32632
        assert ds.count == 3 and ds.width == 1024 and ds.height == 1024
        assert ds.profile["tiled"] and ds.profile["blockxsize"] == 256
        assert ds.compression.name.lower() == "jpeg"
        assert ds.overviews(1) == [2, 4, 8, 16]  # down to >= 64 px
        read_transform, read_crs = ds.transform, ds.crs

    px = np.array([0.5, 100.25, 511.5, 1023.5])
    py = np.array([0.5, 900.75, 3.0, 1023.5])
    lon, lat = g.map_to_lonlat(read_crs, *g.pixel_to_map(read_transform, px, py))
    # Back through the writer's own definition of the grid: the file must agree within 0.1 px.
    back_x, back_y = g.map_to_pixel(transform, *g.lonlat_to_map(crs, lon, lat))
    assert np.max(np.abs(back_x - px)) < 0.1 and np.max(np.abs(back_y - py)) < 0.1
    # The centre pixel lies at the origin lon/lat.
    clon, clat = g.map_to_lonlat(read_crs, *g.pixel_to_map(read_transform, 512, 512))
    assert float(clon) == pytest.approx(11.25, abs=1e-7) and float(clat) == pytest.approx(43.77, abs=1e-7)


def test_geotiff_deflate_for_non_rgb_and_no_leftovers(tmp_path):
    heights = np.linspace(0, 100, 200 * 300, dtype=np.float32).reshape(200, 300)
    path = tmp_path / "dem.tif"
    write_geotiff(path, heights, Affine(1, 0, 500000, 0, -1, 4000000), 32633, nodata=-9999.0)
    with rasterio.open(path) as ds:
        assert ds.compression.name.lower() == "deflate" and ds.nodata == -9999.0
        np.testing.assert_array_equal(ds.read(1), heights)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dem.tif"]


def test_geotiff_rejects_bad_shapes(tmp_path):
    with pytest.raises(ValueError, match="shape"):
        write_geotiff(tmp_path / "x.tif", np.zeros((2, 3, 4, 5), np.uint8), Affine.identity(), 32633)
    assert not list(tmp_path.iterdir())
