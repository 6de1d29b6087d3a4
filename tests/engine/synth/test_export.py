"""Scene, CVNAF-layout and VIGOR-style exports: files, columns, georeferencing and labels agree with truth."""
import csv
import json

import numpy as np
import pyogrio
import pytest
import rasterio
from PIL import Image

from engine.data.geometry import lonlat_to_map
from engine.geo.exif import read_exif
from engine.synth.export import export_cvnaf, export_scene, export_vigor
from engine.synth.export.common import crop_chip
from engine.synth.generate import generate_world
from engine.synth.photos import PhotoSpec


@pytest.fixture(scope="module")
def small_world():
    return generate_world("urban", 21, size_m=300.0, resolution_m=0.5)


def test_scene_truth_matches_exif_and_map(tmp_path, small_world):
    result = export_scene(small_world, PhotoSpec(3, (50, 80), (96, 64)), 1, tmp_path / "scene")
    with rasterio.open(result.map_path) as ds:
        assert ds.crs == small_world.crs and ds.transform == small_world.transform
    truth = pyogrio.read_dataframe(tmp_path / "scene" / "truth.geojson")
    cameras = truth[truth["kind"] == "camera"]
    overlaps = truth[truth["kind"] == "overlap"]
    assert len(cameras) == 3 and len(overlaps) == 3
    assert set(overlaps.geom_type) <= {"Polygon", "MultiPolygon"}
    for t in result.photos:
        meta = read_exif(tmp_path / "scene" / "photos" / t.name)
        assert meta.lon == pytest.approx(t.lon, abs=1e-7) and meta.lat == pytest.approx(t.lat, abs=1e-7)
        assert meta.heading_deg == pytest.approx(t.heading_deg, abs=1e-2)
        assert abs(meta.fov_deg - t.fov_deg) < 1.5
        row = cameras[cameras["photo"] == t.name].iloc[0]
        assert row.geometry.x == pytest.approx(t.lon, abs=1e-7) and row.geometry.y == pytest.approx(t.lat, abs=1e-7)
        assert 0 < t.overlap.area and small_world.crs.is_projected


def test_crop_chip_is_centred_on_the_point(small_world):
    h, w = small_world.shape
    cols, rows = np.meshgrid(np.arange(w), np.arange(h))
    coded = np.stack([cols % 256, rows % 256, np.zeros_like(cols)], axis=-1).astype(np.uint8)
    x, y = small_world.cell_to_map(300.5, 250.5)   # centre of cell (col 300, row 250)
    chip = crop_chip(coded, small_world, float(x), float(y), 64, small_world.resolution_m)
    # At the chip's native resolution the centre pixels are the cells around the point.
    assert chip.shape == (64, 64, 3)
    assert abs(int(chip[32, 32, 0]) - 300 % 256) <= 1 and abs(int(chip[32, 32, 1]) - 250) <= 1


def test_cvnaf_layout(tmp_path, small_world):
    root = export_cvnaf([small_world], PhotoSpec(5, (40, 110), (96, 64)), 2, tmp_path / "cvnaf", chip_px=128)
    city = "urban_s21"
    train = list(csv.reader(open(root / city / "img_info_train.csv")))
    evals = list(csv.reader(open(root / city / "img_info_eval.csv")))
    assert len(train) == 4 and len(evals) == 1
    for _name, lon, _lat, fov, compass, city_col, ground, sat in train + evals:
        assert city_col == city and 40 <= float(fov) <= 110 and 0 <= float(compass) < 360
        assert (root / ground).is_file() and (root / sat).is_file()
        assert Image.open(root / sat).size == (128, 128)
        meta = read_exif(root / ground)
        assert meta.lon == pytest.approx(float(lon), abs=1e-7)
    info = json.loads((root / "dataset.json").read_text())
    assert info["cities"][0]["chip_px"] == 128 and info["layout"] == "cvnaf"


def test_vigor_layout_offsets_locate_the_camera(tmp_path, small_world):
    root = export_vigor([small_world], PhotoSpec(4, (40, 110), (96, 64)), 3, tmp_path / "vigor", tile_px=128)
    city = "urban_s21"
    res = json.loads((root / "meters_per_pixel.json").read_text())[city]
    tiles = (root / "splits" / city / "satellite_list.txt").read_text().split()
    assert all((root / city / "satellite" / t).is_file() for t in tiles)
    labels = (root / "splits" / city / "pano_label_balanced.txt").read_text().splitlines()
    assert len(labels) == 4
    for line in labels:
        parts = line.split()
        photo, groups = parts[0], parts[1:]
        assert len(groups) == 12 and (root / city / "panorama" / photo).is_file()
        _, lat, lon, _ = photo.split(",")
        cam_x, cam_y = lonlat_to_map(small_world.crs, float(lon), float(lat))
        distances = []
        for k in range(4):
            tile, row_off, col_off = groups[3 * k], float(groups[3 * k + 1]), float(groups[3 * k + 2])
            assert max(abs(row_off), abs(col_off)) <= 64
            _, tlat, tlon = tile[:-4].split("_")
            tx, ty = lonlat_to_map(small_world.crs, float(tlon), float(tlat))
            # Tile centre + offset (rows grow southwards) lands on the camera within a centimetre.
            assert float(tx) + col_off * res == pytest.approx(float(cam_x), abs=0.01)
            assert float(ty) - row_off * res == pytest.approx(float(cam_y), abs=0.01)
            distances.append(np.hypot(row_off, col_off))
        assert distances[0] == min(distances)  # the positive comes first
    train = (root / "splits" / city / "same_area_balanced_train.txt").read_text().splitlines()
    test = (root / "splits" / city / "same_area_balanced_test.txt").read_text().splitlines()
    assert sorted(train + test) == sorted(labels)
