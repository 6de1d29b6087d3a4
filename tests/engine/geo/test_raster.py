import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.warp import Resampling, calculate_default_transform, reproject

from engine.data.geometry import TileFrame, lonlat_to_map, utm_crs_for_lonlat
from engine.geo.errors import RasterError
from engine.geo.geotiff import write_geotiff
from engine.geo.raster import MapRaster

CRS_UTM = utm_crs_for_lonlat(11.25, 43.77)
X0, Y0 = (float(v) for v in lonlat_to_map(CRS_UTM, 11.25, 43.77))
TRANSFORM = Affine(0.5, 0, X0 - 128, 0, -0.5, Y0 + 128)


def _pattern(h=512, w=512):
    rows, cols = np.mgrid[0:h, 0:w]
    return np.stack([(cols // 8 * 37) % 256, (rows // 8 * 53) % 256, ((rows + cols) // 16 * 29) % 256],
                    -1).astype(np.uint8)


def _write(path, data, transform=TRANSFORM, crs=CRS_UTM, **profile):
    count = data.shape[0]
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=count,
                       dtype=data.dtype, crs=crs, transform=transform, **profile) as dst:
        dst.write(data)


def test_projected_rgb_tile_read_matches_pixels(tmp_path):
    image = _pattern()
    write_geotiff(tmp_path / "m.tif", image, TRANSFORM, CRS_UTM, compress="deflate")
    with MapRaster(tmp_path / "m.tif") as raster:
        assert raster.crs.to_epsg() == 32632 and raster.metres_per_px == pytest.approx(0.5)
        tile = TileFrame(X0 - 128 + 50 * 0.5, Y0 + 128 - 70 * 0.5, 64, 48, 0.5)
        rgb, valid = raster.read_tile(tile)
        assert rgb.shape == (48, 64, 3) and valid.all()
        np.testing.assert_array_equal(rgb, image[70:118, 50:114])
        # Half resolution: 2x2 blocks averaged.
        coarse, _ = raster.read_tile(TileFrame(tile.origin_x, tile.origin_y, 32, 24, 1.0))
        assert coarse.shape == (24, 32, 3)
        assert np.abs(coarse.astype(float).mean() - image[70:118, 50:114].astype(float).mean()) < 3


def test_reading_outside_the_map_is_invalid(tmp_path):
    write_geotiff(tmp_path / "m.tif", _pattern(), TRANSFORM, CRS_UTM)
    with MapRaster(tmp_path / "m.tif") as raster:
        left, bottom, right, top = raster.bounds
        rgb, valid = raster.read_bounds((right - 10, bottom, right + 10, bottom + 20), (40, 40))
        assert valid[:, :19].all() and not valid[:, 21:].any() and (rgb[:, 21:] == 0).all()


def test_geographic_raster_is_warped_to_utm(tmp_path):
    image = _pattern()
    src_path, geo_path = tmp_path / "utm.tif", tmp_path / "geo.tif"
    write_geotiff(src_path, image, TRANSFORM, CRS_UTM, compress="deflate")
    with rasterio.open(src_path) as src:
        transform, width, height = calculate_default_transform(src.crs, "EPSG:4326", src.width, src.height,
                                                               *src.bounds)
        out = np.zeros((3, height, width), np.uint8)
        reproject(src.read(), out, src_transform=src.transform, src_crs=src.crs, dst_transform=transform,
                  dst_crs="EPSG:4326", resampling=Resampling.nearest)
    _write(geo_path, out, transform=transform, crs="EPSG:4326")
    with MapRaster(geo_path) as raster:
        assert raster.info.warped and raster.crs.to_epsg() == 32632
        assert raster.metres_per_px == pytest.approx(0.5, rel=0.35)
        # The same ground patch reads the same colours as the projected original.
        tile = TileFrame(X0 - 40, Y0 + 40, 80, 80, 1.0)
        warped, valid = raster.read_tile(tile)
    with MapRaster(src_path) as original:
        reference, _ = original.read_tile(tile)
    assert valid.mean() > 0.99
    assert np.mean(np.abs(warped.astype(int) - reference.astype(int))) < 25


def test_16bit_grey_and_rgba_and_nodata(tmp_path):
    grey = (np.arange(256 * 256, dtype=np.uint16).reshape(1, 256, 256) % 4000) + 1000
    _write(tmp_path / "g16.tif", grey, tiled=False)
    with MapRaster(tmp_path / "g16.tif") as raster:
        rgb, valid = raster.read_bounds(raster.bounds, (256, 256))
        assert rgb.shape == (256, 256, 3) and valid.all()
        assert (rgb[..., 0] == rgb[..., 2]).all() and rgb.min() < 10 and rgb.max() > 245

    rgba = np.concatenate([_pattern(128, 128).transpose(2, 0, 1), np.full((1, 128, 128), 255, np.uint8)])
    rgba[3, :, :64] = 0
    _write(tmp_path / "rgba.tif", rgba, photometric="RGB", alpha="YES")
    with MapRaster(tmp_path / "rgba.tif") as raster:
        _, valid = raster.read_bounds(raster.bounds, (128, 128))
        assert not valid[:, :63].any() and valid[:, 65:].all()

    with_nodata = _pattern(128, 128).transpose(2, 0, 1).copy()
    with_nodata[:, 100:, :] = 0
    _write(tmp_path / "nd.tif", with_nodata, nodata=0)
    with MapRaster(tmp_path / "nd.tif") as raster:
        _, valid = raster.read_bounds(raster.bounds, (128, 128))
        assert not valid[101:].any() and valid[:99].mean() > 0.95


@pytest.mark.parametrize("maker,needle", [
    (lambda p: p.write_text("this is not a tiff"), "not a readable raster"),
    (lambda p: p.write_bytes(b""), "empty"),
    (lambda p: _write(p, np.zeros((2, 16, 16), np.uint8)), "unsupported band layout: 2 bands"),
    (lambda p: _write(p, np.zeros((3, 16, 16), np.uint8), transform=Affine.identity(), crs=None),
     "no georeferencing"),
])
def test_bad_rasters_name_the_file(tmp_path, maker, needle):
    path = tmp_path / "bad.tif"
    maker(path)
    with pytest.raises(RasterError, match=needle) as info:
        MapRaster(path)
    assert str(path) in str(info.value)


def test_truncated_raster_fails_clearly(tmp_path):
    path = tmp_path / "cut.tif"
    write_geotiff(path, _pattern(1024, 1024), TRANSFORM, CRS_UTM, compress="deflate", overviews=False)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(RasterError) as info:
        with MapRaster(path) as raster:
            raster.read_bounds(raster.bounds, (1024, 1024))
    assert str(path) in str(info.value)
