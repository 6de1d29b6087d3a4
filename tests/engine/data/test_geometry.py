import numpy as np
import pytest
from shapely.geometry import Point

from engine.data import geometry as g


def test_compass_and_math_angles():
    assert g.compass_to_math(0) == pytest.approx(90)
    assert g.compass_to_math(90) == pytest.approx(0)
    assert g.compass_to_math(180) == pytest.approx(270)
    assert g.math_to_compass(g.compass_to_math(123.4)) == pytest.approx(123.4)
    assert g.heading_difference(350, 10) == pytest.approx(-20)
    assert g.heading_difference(10, 350) == pytest.approx(20)


@pytest.mark.parametrize("heading,east,north", [(0, 0, 1), (90, 1, 0), (180, 0, -1), (270, -1, 0)])
def test_heading_vectors(heading, east, north):
    e, n = g.heading_to_map_vector(heading)
    assert (float(e), float(n)) == pytest.approx((east, north), abs=1e-12)
    dx, dy = g.heading_to_pixel_vector(heading)
    assert (float(dx), float(dy)) == pytest.approx((east, -north), abs=1e-12)
    assert float(g.pixel_vector_to_heading(dx, dy)) == pytest.approx(heading % 360, abs=1e-9)
    assert float(g.map_vector_to_heading(e, n)) == pytest.approx(heading % 360, abs=1e-9)


def test_heading_zero_looks_north_and_ninety_east_in_wedges():
    north_wedge = g.fov_wedge((0, 0), 0, 60, 100)
    assert north_wedge.contains(Point(0, 50)) and not north_wedge.contains(Point(0, -50))
    east_wedge = g.fov_wedge((0, 0), 90, 60, 100)
    assert east_wedge.contains(Point(50, 0)) and not east_wedge.contains(Point(0, 50))
    # In pixel space (y down) north is up: smaller y.
    px_wedge = g.fov_wedge((50, 50), 0, 60, 40, y_down=True)
    assert px_wedge.contains(Point(50, 20)) and not px_wedge.contains(Point(50, 80))


@pytest.mark.parametrize("fov", [40, 70, 90, 110, 179])
def test_wedge_area_matches_sector(fov):
    wedge = g.fov_wedge((10, -5), 37.0, fov, 80.0)
    assert wedge.area == pytest.approx(g.sector_area(fov, 80.0), rel=0.01)


def test_focal_length_round_trips():
    assert g.fov_to_focal_35mm(90) == pytest.approx(18.0)
    assert g.focal_35mm_to_fov(18.0) == pytest.approx(90.0)
    assert g.fov_to_focal_px(90, 384) == pytest.approx(192.0)
    assert g.focal_px_to_fov(g.fov_to_focal_px(63.0, 640), 640) == pytest.approx(63.0)
    offsets = g.column_bearing_offsets(90, 4)
    assert offsets[0] < 0 < offsets[-1] and offsets[0] == pytest.approx(-offsets[-1])
    assert np.all(np.abs(offsets) < 45)


def test_overlap_polygon_hand_cases():
    # Camera at the centre of a 100 x 100 tile looking north with a 90 degree FoV: a triangle to the top edge.
    poly = g.overlap_polygon_in_tile((100, 100), (50, 50), 0, 90)
    assert poly.area == pytest.approx(0.5 * 100 * 50)
    assert poly.contains(Point(50, 10)) and not poly.contains(Point(50, 90))
    # 90 degree FoV looking north-east covers exactly the north-east quadrant.
    quad = g.overlap_polygon_in_tile((100, 100), (50, 50), 45, 90)
    assert quad.area == pytest.approx(2500.0)
    assert quad.contains(Point(75, 25))


def test_overlap_mask_matches_polygon_area_and_grid():
    heading, fov = 130.0, 70.0
    poly = g.overlap_polygon_in_tile((256, 256), (128, 128), heading, fov)
    mask = g.overlap_mask((256, 256), (128, 128), heading, fov)
    inside = mask > 0.5
    assert inside.sum() == pytest.approx(poly.area, rel=0.02)
    assert mask.min() == pytest.approx(g.MASK_OUTSIDE)
    coarse = g.overlap_mask((256, 256), (128, 128), heading, fov, grid=(8, 8), supersample=8)
    assert coarse.shape == (8, 8)
    assert (coarse * 32 * 32).sum() == pytest.approx(poly.area, rel=0.03)
    # heading 130 is south-east: bottom-right cell is inside, top-left is not.
    assert coarse[7, 7] > 0.5 and coarse[0, 0] == pytest.approx(g.MASK_OUTSIDE)


def test_cwr_target_is_midpoint_to_exit():
    assert g.ray_exit_point((100, 100), (50, 50), 0) == pytest.approx((50, 0))
    assert g.cwr_target((100, 100), (50, 50), 0) == pytest.approx((50, 25))
    assert g.cwr_target((100, 100), (50, 50), 90) == pytest.approx((75, 50))
    assert g.cwr_target((100, 100), (50, 50), 45) == pytest.approx((75, 25))
    assert g.cwr_target((200, 100), (50, 50), 270) == pytest.approx((25, 50))
    with pytest.raises(ValueError, match="outside"):
        g.cwr_target((100, 100), (150, 50), 0)


def test_utm_zone_and_lonlat_round_trip():
    crs = g.utm_crs_for_lonlat(11.25, 43.77)  # Florence
    assert crs.to_epsg() == 32632
    assert g.utm_crs_for_lonlat(151.2, -33.9).to_epsg() == 32756
    x, y = g.lonlat_to_map(crs, 11.25, 43.77)
    lon, lat = g.map_to_lonlat(crs, x, y)
    assert (float(lon), float(lat)) == pytest.approx((11.25, 43.77), abs=1e-9)
    with pytest.raises(ValueError):
        g.utm_crs_for_lonlat(0, 89)


def test_tile_frame_chain_camera_to_pixel_to_lonlat():
    crs = g.utm_crs_for_lonlat(-80.19, 25.77)
    cx, cy = g.lonlat_to_map(crs, -80.19, 25.77)
    tile = g.TileFrame.centred_on(float(cx), float(cy), 256, 256, 0.5)
    px, py = tile.map_to_tile(cx, cy)
    assert (float(px), float(py)) == pytest.approx((128.0, 128.0))
    # 10 m north of the camera is 20 px up in the tile.
    px2, py2 = tile.map_to_tile(cx, cy + 10.0)
    assert (float(px2), float(py2)) == pytest.approx((128.0, 108.0))
    mx, my = tile.tile_to_map(px2, py2)
    lon, lat = g.map_to_lonlat(crs, mx, my)
    assert float(lat) > 25.77 and float(lon) == pytest.approx(-80.19, abs=1e-6)
    assert tile.footprint.area == pytest.approx(128.0 * 128.0)


def test_panorama_columns_and_bearings():
    # North at the centre column of a 1232 px panorama; bearings grow to the right (clockwise).
    width, north_x = 1232, 616.0
    assert float(g.panorama_column_bearing(616.0, width, north_x)) == pytest.approx(0.0)
    assert float(g.panorama_column_bearing(616.0 + 308.0, width, north_x)) == pytest.approx(90.0)
    assert float(g.panorama_column_bearing(0.0, width, north_x)) == pytest.approx(180.0)
    assert float(g.panorama_column_bearing(308.0, width, north_x)) == pytest.approx(270.0)
    bearings = np.array([0.0, 12.5, 90.0, 181.0, 359.0])
    columns = g.panorama_bearing_column(bearings, width, north_x)
    assert np.all((columns >= 0) & (columns < width))
    np.testing.assert_allclose(g.panorama_column_bearing(columns, width, north_x), bearings, atol=1e-9)


def test_polygon_mask_of_the_sector_polygon_matches_overlap_mask():
    tile, camera, heading, fov = (64, 48), (20.3, 30.7), 57.0, 70.0
    sector = g.overlap_mask(tile, camera, heading, fov)
    region = g.overlap_polygon_in_tile(tile, camera, heading, fov)
    rasterised = g.polygon_mask(tile, region)
    assert rasterised.shape == sector.shape == (48, 64)
    # the polygon's arc is a polyline, so only cells on the sector's edge may differ
    assert np.mean(rasterised != sector) < 0.01
    assert rasterised.min() == pytest.approx(g.MASK_OUTSIDE) and rasterised.max() == 1.0
    coarse = g.polygon_mask(tile, region, grid=(6, 8), supersample=8)
    np.testing.assert_allclose(coarse, g.overlap_mask(tile, camera, heading, fov, grid=(6, 8), supersample=8),
                               atol=0.03)
    assert np.all(g.polygon_mask(tile, g.Polygon()) == g.MASK_OUTSIDE)   # an empty region
