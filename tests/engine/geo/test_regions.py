"""Continent-size maps cut into regions: each region opens as an ordinary map with true ground scale, puts
every lon/lat where the source has it, masks what lies outside the source, and the set is written whole."""
import os
import pickle

import numpy as np
import pytest
import rasterio
from affine import Affine
from pyproj import Geod

from engine.data.geometry import lonlat_to_map
from engine.geo.errors import MapTooLarge, RasterError
from engine.geo.ground import scale_distortion
from engine.geo.output_set import OutputError
from engine.geo.raster import MapRaster
from engine.geo.regions import REGION_OVERLAP_KM, SOURCE_HASH_KEY, plan_regions, write_regions

GEOD = Geod(ellps="WGS84")
STEP_DEG = 0.02                        # 2.2 km north-south: a coarse continent-size mosaic
WEST, NORTH, WIDTH, HEIGHT = 0.0, 50.0, 2000, 1000        # 40 x 20 degrees: 0-40 E, 30-50 N
CORNER = (5.72, 46.0)                  # where four regions meet (bands of 4 degrees, columns of 5.714)
MARKS = [(3.3, 47.7), (18.0, 41.0), (36.6, 31.2), CORNER]     # bright 5 x 5 px squares, lon/lat


def _continent(path, bands=3):
    data = np.full((bands, HEIGHT, WIDTH), 40, np.uint8)
    for lon, lat in MARKS:
        col, row = round((lon - WEST) / STEP_DEG), round((NORTH - lat) / STEP_DEG)
        data[:, row - 2:row + 3, col - 2:col + 3] = 250
    with rasterio.open(path, "w", driver="GTiff", width=WIDTH, height=HEIGHT, count=bands, dtype="uint8",
                       crs="EPSG:4326", transform=Affine(STEP_DEG, 0, WEST, 0, -STEP_DEG, NORTH)) as dst:
        dst.write(data)
    return path


def test_the_whole_map_is_refused_naming_the_regions_command(tmp_path):
    path = _continent(tmp_path / "europe.tif")
    with pytest.raises(MapTooLarge, match=r"viewfinder regions europe.tif` into 38 regions") as info:
        MapRaster(path)
    assert str(path) in str(info.value) and info.value.region_count == 38
    again = pickle.loads(pickle.dumps(info.value))          # as the app's engine process sends it
    assert (again.region_count, str(again)) == (38, str(info.value))


def test_regions_cover_the_map_with_overlap_and_stay_within_their_span():
    bounds = (WEST, 30.0, 40.0, NORTH)
    regions = plan_regions(bounds)
    assert len(regions) == 38 and len({r.name for r in regions}) == 38
    # every point of the map lies in some region, and points near an inner edge in two
    rng = np.random.default_rng(0)
    for lon, lat in rng.uniform((WEST, 30.0), (40.0, NORTH), (500, 2)):
        inside = [r for r in regions if r.lonlat_bounds[0] <= lon <= r.lonlat_bounds[2]
                  and r.lonlat_bounds[1] <= lat <= r.lonlat_bounds[3]]
        assert inside
    for region in regions:
        west, south, east, north = region.lonlat_bounds
        width_km = GEOD.inv(west, south, east, south)[2] / 1000
        assert width_km <= 500 + 2 * REGION_OVERLAP_KM + 1
        assert GEOD.inv(west, south, west, north)[2] / 1000 <= 500 + 2 * REGION_OVERLAP_KM + 1
        lons, lats = np.meshgrid(np.linspace(west, east, 5), np.linspace(south, north, 5))
        assert scale_distortion(region.crs, lons, lats) < 0.001


def test_every_region_opens_as_a_true_scale_map_with_the_marks_where_they_are(tmp_path):
    source = _continent(tmp_path / "europe.tif")
    written = write_regions(source)
    assert len(written) == 38 and all(path.parent == tmp_path for _, path in written)
    found = {mark: [] for mark in MARKS}
    for region, path in written:
        with MapRaster(path) as raster:
            assert not raster.info.warped            # the VRT is the warp: it opens in its own CRS
            assert raster.frame.distortion < 0.001
            # the source's 0.01 degree pixels, measured on the ground at the region's centre
            lon, lat = region.centre
            expected = np.sqrt(STEP_DEG * GEOD.inv(lon, lat, lon + 1, lat)[2] * STEP_DEG * 111_200)
            assert raster.ground_resolution_m == pytest.approx(expected, rel=0.05)
            west, south, east, north = region.lonlat_bounds
            for mark in MARKS:
                if west < mark[0] < east and south < mark[1] < north:
                    x, y = lonlat_to_map(raster.crs, *mark)
                    rgb, valid = raster.read_bounds((x - 3000, y - 3000, x + 3000, y + 3000), (6, 6))
                    assert valid.all()
                    found[mark].append(int(rgb[2:4, 2:4].mean()))
            if west == WEST:      # the transverse Mercator rectangle reaches west of 0 E: outside the source
                left, bottom, right, top = raster.bounds
                _, valid = raster.read_bounds((left, top - 20_000, left + 20_000, top), (4, 4))
                assert not valid[:, 0].any()
    assert all(values and min(values) > 150 for values in found.values())
    assert len(found[CORNER]) == 4               # on the corner of four regions: each holds it whole


def test_grey_and_rgba_sources_keep_one_alpha(tmp_path):
    for bands in (1, 4):
        source = _continent(tmp_path / f"b{bands}.tif", bands)
        if bands == 4:
            with rasterio.open(source, "r+") as dst:
                dst.colorinterp = [rasterio.enums.ColorInterp.red, rasterio.enums.ColorInterp.green,
                                   rasterio.enums.ColorInterp.blue, rasterio.enums.ColorInterp.alpha]
        (region, path), *_ = write_regions(source, span_km=800)
        with MapRaster(path) as raster, rasterio.open(path) as vrt:
            assert vrt.count == (2 if bands == 1 else 4)
            assert raster.read_overview(64)[0].shape[-1] == 3


def test_the_source_content_is_part_of_each_region_file(tmp_path):
    source = _continent(tmp_path / "europe.tif")
    (_, path), *_ = write_regions(source)
    before = path.read_bytes()
    assert SOURCE_HASH_KEY.encode() in before
    with rasterio.open(source, "r+") as dst:
        dst.write(np.zeros((3, 4, 4), np.uint8), window=((0, 4), (0, 4)))
    write_regions(source)
    assert path.read_bytes() != before           # a gallery cached for the old pixels is not reused


def test_regions_are_written_together_or_not_at_all(tmp_path):
    source = _continent(tmp_path / "europe.tif")
    out = tmp_path / "regions"
    out.mkdir()
    (out / "europe-r1c2.vrt").mkdir()            # one target is a folder: nothing may be written
    with pytest.raises(OutputError, match="europe-r1c2.vrt: is a folder"):
        write_regions(source, out)
    assert sorted(p.name for p in out.iterdir()) == ["europe-r1c2.vrt"]
    with pytest.raises(RasterError, match="does not exist"):
        write_regions(source, tmp_path / "missing")


def test_maps_regions_cannot_be_cut_from_are_refused_by_name(tmp_path):
    path = tmp_path / "rotated.tif"
    with rasterio.open(path, "w", driver="GTiff", width=8, height=8, count=3, dtype="uint8", crs="EPSG:4326",
                       transform=Affine(0.01, 0.001, 0.0, 0.001, -0.01, 50.0)) as dst:
        dst.write(np.zeros((3, 8, 8), np.uint8))
    with pytest.raises(RasterError, match="rotated.tif.*rotated geotransforms"):
        write_regions(path)


def test_the_regions_command_writes_and_lists_them(tmp_path, capsys):
    from engine.commands.dispatch import run_here

    source = _continent(tmp_path / "europe.tif")
    assert run_here(["regions", str(source), "--span-km", "900"]) == 0
    out = capsys.readouterr().out
    vrts = sorted(p.name for p in tmp_path.glob("*.vrt"))
    assert f"{len(vrts)} regions" in out and len(vrts) >= 4
    assert all(name in out for name in vrts) and "m/px" in out
    assert run_here(["regions", str(source), "--span-km", "5"]) == 2
    assert os.path.exists(source)
