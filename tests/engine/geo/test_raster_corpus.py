"""Rasters as analysts have them: Mercator, global geographic, GCP, RPC, tiny, coarse, Mars; each asserts
its exact behaviour (ground scale, plan, refusal naming the file and the cause)."""
import numpy as np
import pytest
import rasterio
from affine import Affine
from pyproj import Geod
from rasterio.control import GroundControlPoint
from rasterio.crs import CRS
from rasterio.rpc import RPC

from engine.data.geometry import lonlat_to_map
from engine.geo.errors import RasterError
from engine.geo.plan import IndexRefused, plan_map
from engine.geo.raster import MapRaster
from engine.geo.tiling import TilingSpec, tile_map

SPEC = TilingSpec(tile_px=128, metres_per_px=1.0, overlap=0.5, snap_to_crs_grid=True)
LON0, LAT0 = 8.0, 48.0
GEOD = Geod(ellps="WGS84")


def _pattern(h, w, bands=3):
    rows, cols = np.mgrid[0:h, 0:w]
    layers = [(cols // 8 * 37) % 256, (rows // 8 * 53) % 256, ((rows + cols) // 16 * 29) % 256]
    return np.stack(layers[:bands]).astype(np.uint8)


def _write(path, data, **profile):
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0],
                       dtype=data.dtype, **profile) as dst:
        dst.write(data)
    return path


def _ground_width_m(raster):
    left, bottom, right, top = raster.bounds
    return right - left


def test_web_mercator_map_is_measured_in_ground_metres(tmp_path):
    # 400 px of 1 Mercator "metre" at 48 N are only 400 * cos(48) = 268 m on the ground
    x, y = lonlat_to_map("EPSG:3857", LON0, LAT0)
    path = _write(tmp_path / "mercator.tif", _pattern(400, 400), crs="EPSG:3857",
                  transform=Affine(1.0, 0, float(x), 0, -1.0, float(y)))
    with MapRaster(path) as raster:
        assert raster.crs.to_epsg() == 32632 and raster.info.warped
        assert raster.ground_resolution_m == pytest.approx(np.cos(np.radians(LAT0)), rel=0.01)
        # the UTM bounding box of the square, 0.74 degrees off grid north here, is 1.3 % wider than its side
        assert _ground_width_m(raster) == pytest.approx(400 * np.cos(np.radians(LAT0)) * 1.013, rel=0.005)
        assert "stretches the ground by up to 4" in raster.info.crs_note


def test_utm_map_is_kept_as_it_is(tmp_path):
    x, y = lonlat_to_map("EPSG:32632", LON0, LAT0)
    path = _write(tmp_path / "utm.tif", _pattern(64, 64), crs="EPSG:32632",
                  transform=Affine(0.5, 0, float(x), 0, -0.5, float(y)))
    with MapRaster(path) as raster:
        assert not raster.info.warped and raster.metres_per_px == 0.5
        assert raster.ground_resolution_m == pytest.approx(0.5, rel=0.001)


def test_global_geographic_raster_is_refused_with_its_span(tmp_path):
    path = _write(tmp_path / "world.tif", _pattern(360, 720), crs="EPSG:4326",
                  transform=Affine(0.5, 0, -180.0, 0, -0.5, 90.0))
    with pytest.raises(RasterError, match="no single projection keeps its ground scale") as info:
        MapRaster(path)
    assert str(path) in str(info.value) and "km" in str(info.value)


def test_regional_geographic_raster_gets_true_scale(tmp_path):
    # 0.0001 deg = 11.1 m north-south, 7.4 m east-west at 48 N
    path = _write(tmp_path / "regional.tif", _pattern(300, 300), crs="EPSG:4326",
                  transform=Affine(0.0001, 0, LON0, 0, -0.0001, LAT0))
    with MapRaster(path) as raster:
        assert raster.crs.to_epsg() == 32632 and raster.info.warped
        # a map metre is a ground metre: 3 km east-west along 47.985 N, measured both ways
        xs, ys = lonlat_to_map(raster.crs, [LON0, LON0 + 0.03], [LAT0 - 0.015, LAT0 - 0.015])
        truth = GEOD.inv(LON0, LAT0 - 0.015, LON0 + 0.03, LAT0 - 0.015)[2]
        assert np.hypot(xs[1] - xs[0], ys[1] - ys[0]) == pytest.approx(truth, rel=0.001)
        assert raster.ground_resolution_m == pytest.approx(np.sqrt(7.45 * 11.12), rel=0.05)


def test_gcp_georeferenced_raster_is_warped_through_its_control_points(tmp_path):
    step = 0.5 / 111_200.0
    gcps = [GroundControlPoint(row=r, col=c, x=LON0 + c * step / np.cos(np.radians(LAT0)), y=LAT0 - r * step)
            for r, c in [(0, 0), (0, 200), (200, 0), (200, 200)]]
    path = tmp_path / "gcp.tif"
    with pytest.warns(rasterio.errors.NotGeoreferencedWarning):
        with rasterio.open(path, "w", driver="GTiff", width=200, height=200, count=3, dtype="uint8") as dst:
            dst.write(_pattern(200, 200))
            dst.gcps = (gcps, CRS.from_epsg(4326))
    with MapRaster(path) as raster:
        assert raster.info.georeferencing == "gcps" and raster.crs.to_epsg() == 32632
        assert raster.ground_resolution_m == pytest.approx(0.5, rel=0.02)
        rgb, valid = raster.read_bounds(raster.bounds, (50, 50))
        assert valid.mean() > 0.9 and rgb[valid].std() > 10


def test_rpc_georeferenced_raster_is_warped_through_its_rpcs(tmp_path):
    rpc = RPC(height_off=0, height_scale=100, lat_off=LAT0 - 0.00045, lat_scale=0.00045,
              line_den_coeff=[1] + [0] * 19, line_num_coeff=[0, 0, -1] + [0] * 17, line_off=100, line_scale=100,
              long_off=LON0 + 0.00067, long_scale=0.00067, samp_den_coeff=[1] + [0] * 19,
              samp_num_coeff=[0, 1] + [0] * 18, samp_off=100, samp_scale=100)
    path = _write(tmp_path / "rpc.tif", _pattern(200, 200), rpcs=rpc)
    with MapRaster(path) as raster:
        assert raster.info.georeferencing == "rpc" and raster.crs.to_epsg() == 32632
        # 200 px over 0.0009 deg of latitude: 0.5 m/px north-south
        assert raster.ground_resolution_m == pytest.approx(0.5, rel=0.05)


def test_mars_raster_is_refused(tmp_path):
    path = _write(tmp_path / "mars.tif", _pattern(64, 64), crs=CRS.from_proj4("+proj=eqc +R=3396190 +units=m"),
                  transform=Affine(1.0, 0, 1000.0, 0, -1.0, 2000.0))
    with pytest.raises(RasterError, match="not on Earth.*3396 km") as info:
        MapRaster(path)
    assert str(path) in str(info.value)


def test_raster_without_any_georeferencing_names_what_is_missing(tmp_path):
    path = tmp_path / "plain.tif"
    with pytest.warns(rasterio.errors.NotGeoreferencedWarning):
        _write(path, _pattern(32, 32))
    with pytest.raises(RasterError, match="no CRS \\+ geotransform, ground control points or RPCs"):
        MapRaster(path)


def test_map_smaller_than_a_tile_is_one_padded_tile(tmp_path):
    # a 50 x 40 m drone orthophoto: 128 m tiles hold 12 % of map, below the 25 % a gallery tile needs
    x, y = lonlat_to_map("EPSG:32632", LON0, LAT0)
    path = _write(tmp_path / "tiny.tif", _pattern(80, 100), crs="EPSG:32632",
                  transform=Affine(0.5, 0, float(x), 0, -0.5, float(y)))
    with MapRaster(path) as raster:
        tiles = tile_map(raster, SPEC)
        plan = plan_map(raster, SPEC)
        assert len(tiles) == 1
        left, bottom, right, top = raster.bounds
        cx, cy = tiles[0].origin_x + 64, tiles[0].origin_y - 64
        assert cx == pytest.approx((left + right) / 2, abs=3) and cy == pytest.approx((bottom + top) / 2, abs=3)
        rgb, valid = raster.read_tile(tiles[0])
        assert valid.sum() == pytest.approx(50 * 40, rel=0.1)   # the valid mask marks the padding
        assert any("smaller than one 128 m tile" in n for n in plan.notes) and not plan.refusals


def test_coarse_map_plan_refuses_and_force_passes(tmp_path):
    # rasterio's RGB.byte.tif is 300 m/px: 12.5 M tiles of a 1 m/px model, and nothing in them to match
    x, y = lonlat_to_map("EPSG:32632", LON0, LAT0)
    path = _write(tmp_path / "coarse.tif", _pattern(100, 120), crs="EPSG:32632",
                  transform=Affine(300.0, 0, float(x), 0, -300.0, float(y)))
    with MapRaster(path) as raster:
        plan = plan_map(raster, SPEC)
    assert plan.ground_resolution_m == pytest.approx(300, rel=0.001) and plan.upsampling == pytest.approx(300, 0.001)
    assert plan.tile_count == pytest.approx((36000 / 64 + 2) * (30000 / 64 + 2), rel=0.01)
    assert plan.refusals == ("the map's ground resolution (300 m/px) is 300 times coarser than the model's "
                             "1 m/px: its tiles would be blurred beyond use",)
    text = plan.describe()
    assert "300 m/px on the ground" in text and "tiles" in text and "min to embed" in text
    with pytest.raises(IndexRefused, match="--force") as info:
        plan.check()
    assert str(path) in str(info.value)
    plan.check(force=True)


def test_absurd_tile_count_is_refused_from_the_header_alone(tmp_path):
    # 100 km at 1 m/px: 2.4 M tiles; a sparse file, so nothing is written or read
    x, y = lonlat_to_map("EPSG:32632", LON0, LAT0)
    path = tmp_path / "huge.tif"
    with rasterio.open(path, "w", driver="GTiff", width=100_000, height=100_000, count=3, dtype="uint8",
                       crs="EPSG:32632", transform=Affine(1.0, 0, float(x), 0, -1.0, float(y)), tiled=True,
                       sparse_ok=True):
        pass
    with MapRaster(path) as raster:
        plan = plan_map(raster, SPEC)
    assert plan.tile_count == 1565 ** 2
    assert len(plan.refusals) == 1 and "about 2,449,225 tiles (limit 2,000,000" in plan.refusals[0]


def test_fine_map_plan_reports_resolution_and_time(tmp_path):
    x, y = lonlat_to_map("EPSG:32632", LON0, LAT0)
    path = _write(tmp_path / "fine.tif", _pattern(1000, 1000), crs="EPSG:32632",
                  transform=Affine(0.5, 0, float(x), 0, -0.5, float(y)))
    with MapRaster(path) as raster:
        plan = plan_map(raster, SPEC, tiles_per_second=100.0)
    assert plan.tile_count == 10 * 10 and plan.seconds_estimate == pytest.approx(1.0)
    assert plan.upsampling == pytest.approx(0.5, rel=0.001) and not plan.refusals
    assert "downsampled" in plan.describe()


@pytest.mark.parametrize("bands,dtype,extra", [(1, "uint16", {}), (4, "uint8", {"photometric": "RGB"}),
                                                (3, "uint8", {"nodata": 0})])
def test_16_bit_rgba_and_nodata_maps_plan_and_tile(tmp_path, bands, dtype, extra):
    x, y = lonlat_to_map("EPSG:32632", LON0, LAT0)
    data = _pattern(400, 400, min(bands, 3))
    if bands == 4:
        alpha = np.full((1, 400, 400), 255, np.uint8)
        alpha[:, :, 200:] = 0
        data = np.concatenate([data, alpha])
    if "nodata" in extra:
        data[:, :, 200:] = 0
    path = _write(tmp_path / "m.tif", data.astype(dtype) * (200 if dtype == "uint16" else 1), crs="EPSG:32632",
                  transform=Affine(0.5, 0, float(x), 0, -0.5, float(y)), **extra)
    if bands == 4:
        with rasterio.open(path, "r+") as dst:
            dst.colorinterp = [rasterio.enums.ColorInterp.red, rasterio.enums.ColorInterp.green,
                               rasterio.enums.ColorInterp.blue, rasterio.enums.ColorInterp.alpha]
    with MapRaster(path) as raster:
        plan = plan_map(raster, SPEC)
        tiles = tile_map(raster, SPEC)
        assert not plan.refusals and plan.ground_resolution_m == pytest.approx(0.5, rel=0.001)
        assert tiles
        if bands == 4 or "nodata" in extra:   # no tile lies mostly in the masked east half
            left, _, right, _ = raster.bounds
            centre = (left + right) / 2
            assert all(t.origin_x + 64 < centre + 32 for t in tiles)


def test_corrupt_pixel_data_names_gdals_cause(tmp_path):
    x, y = lonlat_to_map("EPSG:32632", LON0, LAT0)
    path = _write(tmp_path / "corrupt.tif", np.random.default_rng(0).integers(0, 255, (3, 64, 64), dtype=np.uint8),
                  crs="EPSG:32632", transform=Affine(1.0, 0, float(x), 0, -1.0, float(y)), compress="deflate")
    data = bytearray(path.read_bytes())
    data[400:-200] = b"\xab" * (len(data) - 600)          # the compressed strips, not the header
    path.write_bytes(bytes(data))
    with MapRaster(path) as raster:
        with pytest.raises(RasterError, match="corrupt raster data .*(IReadBlock|TIFFRead|decode)") as info:
            raster.read_bounds(raster.bounds, (32, 32))
    assert str(path) in str(info.value) and "See previous exception" not in str(info.value)
