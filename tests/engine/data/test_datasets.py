"""Dataset readers on tiny fixtures written in each public layout, panorama crops, and the pair Dataset."""
import csv
import dataclasses
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

from engine.data import geometry as g
from engine.data.datasets import (
    BENCHMARK_FOVS,
    CvactReader,
    CvCitiesReader,
    CvnafReader,
    CvusaReader,
    SyntheticCvnafReader,
    SyntheticVigorReader,
    VigorReader,
    choose_panorama_crop,
    crop_panorama,
)
from engine.data.errors import DatasetError, EmptyDatasetError
from engine.data.pairs import CrossViewPairs, PairConfig, collate_pairs


# ---------------------------------------------------------------- fixture helpers
def write_image(path: Path, width: int, height: int, seed: int = 0) -> np.ndarray:
    """A smooth, seed-tinted RGB image (compresses well, distinct per seed) saved by extension."""
    path.parent.mkdir(parents=True, exist_ok=True)
    x = np.linspace(0, 255, width)[None, :]
    y = np.linspace(0, 255, height)[:, None]
    rng = np.random.default_rng(seed)
    tint = rng.integers(0, 256, 3)
    image = np.stack([(x + 0 * y + tint[0]) % 256, (y + 0 * x + tint[1]) % 256,
                      np.full((height, width), tint[2])], axis=-1).astype(np.uint8)
    Image.fromarray(image).save(path, quality=95) if path.suffix == ".jpg" else Image.fromarray(image).save(path)
    return image


def write_corrupt(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")


def write_csv(path: Path, rows: list[list]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(rows)


def skipped_reasons(reader) -> dict[str, str]:
    return {entry.path.name: entry.reason for entry in reader.skipped}


# ---------------------------------------------------------------- CVNAF
@pytest.fixture
def cvnaf_root(tmp_path):
    root = tmp_path / "CVNAF"
    rows = {"Tuscany": [], "Miami": []}
    for city, count in (("Tuscany", 3), ("Miami", 2)):
        for i in range(count):
            name = f"{city.lower()}_{i}"
            ground, sat = f"{city}/ground/{name}.jpg", f"{city}/satellite/{name}_sat.jpg"
            write_image(root / ground, 48, 32, seed=i)
            write_image(root / sat, 64, 64, seed=10 + i)
            rows[city].append([name, f"{11.2 + i * 0.01:.6f}", f"{43.7 + i * 0.01:.6f}", f"{50 + 10 * i}",
                               f"{(100 * i + 30) % 360}", city, ground, sat])
    write_csv(root / "Tuscany" / "img_info_train.csv", rows["Tuscany"][:2])
    write_csv(root / "Tuscany" / "img_info_eval.csv", rows["Tuscany"][2:])
    write_csv(root / "Miami" / "img_info_train.csv", rows["Miami"])
    write_csv(root / "Miami" / "img_info_eval.csv", [])
    return root


def test_cvnaf_reader_items_and_fields(cvnaf_root):
    reader = CvnafReader(cvnaf_root, "train")
    assert len(reader) == 4 and reader.skipped == [] and reader.dropped_items == 0
    assert [item.item_id for item in reader] == ["Miami/miami_0", "Miami/miami_1",
                                                 "Tuscany/tuscany_0", "Tuscany/tuscany_1"]
    item = reader.items[3]
    assert item.city == "Tuscany" and item.split == "train" and item.dataset == "cvnaf"
    assert item.fov_deg == 60.0 and item.heading_deg == 130.0 and not item.is_panorama
    assert (item.lon, item.lat) == pytest.approx((11.21, 43.71))
    assert item.ground_path == cvnaf_root / "Tuscany/ground/tuscany_1.jpg" and item.ground_path.is_file()
    assert item.camera_px((64, 64)) == (32.0, 32.0) and item.metres_per_px is None
    assert reader.gallery == [i.satellite_path for i in reader]
    evals = CvnafReader(cvnaf_root, "eval")
    assert [i.item_id for i in evals] == ["Tuscany/tuscany_2"]
    assert [i.item_id for i in CvnafReader(cvnaf_root, "train", cities=["Miami"])] == ["Miami/miami_0",
                                                                                        "Miami/miami_1"]


def test_cvnaf_missing_corrupt_and_malformed_are_reported_and_skipped(cvnaf_root, caplog):
    (cvnaf_root / "Tuscany/ground/tuscany_0.jpg").unlink()
    write_corrupt(cvnaf_root / "Miami/satellite/miami_1_sat.jpg")
    with open(cvnaf_root / "Miami" / "img_info_train.csv", "a") as f:
        f.write("broken,row,with,too,few\n")
        f.write("bad_fov,11,43,not-a-number,10,Miami,Miami/ground/miami_0.jpg,Miami/satellite/miami_0_sat.jpg\n")
    with caplog.at_level(logging.WARNING):
        reader = CvnafReader(cvnaf_root, "train", check_images=True)
    assert [i.item_id for i in reader] == ["Miami/miami_0", "Tuscany/tuscany_1"]
    reasons = skipped_reasons(reader)
    assert reasons["tuscany_0.jpg"] == "missing"
    assert reasons["miami_1_sat.jpg"].startswith("unreadable image")
    malformed = sorted(e.reason for e in reader.skipped if e.path.name == "img_info_train.csv")
    assert malformed == ["malformed line 3: expected 8 columns, got 5",
                         "malformed line 4: could not convert string to float: 'not-a-number'"]
    assert reader.skipped_count == 4 and reader.dropped_items == 4
    assert "tuscany_0.jpg" in caplog.text and "miami_1_sat.jpg" in caplog.text
    # without decoding, the corrupt file is only found when a Dataset loads it
    assert len(CvnafReader(cvnaf_root, "train")) == 3


def test_empty_or_absent_dataset_raises_a_typed_error_naming_the_folder(tmp_path, cvnaf_root):
    with pytest.raises(DatasetError, match="nowhere"):
        CvnafReader(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(EmptyDatasetError, match="empty"):
        CvnafReader(tmp_path / "empty")
    for path in cvnaf_root.rglob("*.jpg"):
        path.unlink()
    with pytest.raises(EmptyDatasetError, match=r"CVNAF.*8 files skipped.*miami_0.jpg: missing"):
        CvnafReader(cvnaf_root, "train")
    with pytest.raises(ValueError, match="split"):
        CvnafReader(cvnaf_root, "test")


# ---------------------------------------------------------------- CVUSA
PANO_W, PANO_H = 1232, 224


@pytest.fixture
def cvusa_root(tmp_path):
    root = tmp_path / "CVUSA"
    lines = {"train": [], "val": []}
    for number in range(1, 6):
        sat, pano = f"bingmap/19/{number:07d}.jpg", f"streetview/panos/{number:07d}.jpg"
        write_image(root / sat, 96, 96, seed=number)
        write_image(root / pano, PANO_W, PANO_H, seed=100 + number)
        lines["train" if number <= 3 else "val"].append([sat, pano, f"streetview/annotations/{number:07d}.png"])
    write_csv(root / "splits" / "train-19zl.csv", lines["train"])
    write_csv(root / "splits" / "val-19zl.csv", lines["val"])
    write_csv(root / "split_locations" / "all.csv",
              [[40.0 + n, -100.0 - n, 40.0 + n + 1e-4, -100.0 - n - 1e-4, 0] for n in range(1, 6)])
    return root


def test_cvusa_reader(cvusa_root):
    train = CvusaReader(cvusa_root, "train")
    assert [i.item_id for i in train] == ["0000001", "0000002", "0000003"]
    item = train.items[1]
    assert item.is_panorama and item.fov_deg == 360.0 and item.north_x_fraction == 0.5
    assert item.heading_deg is None and item.camera_offset_px == (0.0, 0.0)
    # item n takes row n of all.csv, the ground (not satellite) position
    assert (item.lon, item.lat) == pytest.approx((-102.0001, 42.0001))
    assert item.satellite_path == cvusa_root / "bingmap/19/0000002.jpg"
    val = CvusaReader(cvusa_root, "val")
    assert [i.item_id for i in val] == ["0000004", "0000005"]
    (cvusa_root / "streetview/panos/0000005.jpg").unlink()
    val = CvusaReader(cvusa_root, "val")
    assert [i.item_id for i in val] == ["0000004"] and skipped_reasons(val) == {"0000005.jpg": "missing"}


# ---------------------------------------------------------------- panorama crops
def column_coded_panorama(width=PANO_W, height=8) -> np.ndarray:
    columns = np.arange(width)
    image = np.stack([columns % 256, columns // 256, np.zeros_like(columns)], axis=-1).astype(np.uint8)
    return np.repeat(image[None], height, axis=0)


@pytest.mark.parametrize("fov", BENCHMARK_FOVS)
def test_panorama_crops_are_seeded_and_fov_wide(fov):
    pano = column_coded_panorama()
    crops = [choose_panorama_crop(PANO_W, fov, 7, "0000042", 0.5) for _ in range(2)]
    assert crops[0] == crops[1]                                 # repeatable
    assert crops[0].width_px == round(PANO_W * fov / 360.0)      # width = FoV / 360 of the panorama
    assert crops[0].fov_deg == pytest.approx(fov, abs=360.0 / PANO_W)
    starts = {choose_panorama_crop(PANO_W, fov, seed, "0000042", 0.5).start_column for seed in range(8)}
    assert len(starts) >= 6                                      # other seeds, other orientations
    assert choose_panorama_crop(PANO_W, fov, 7, "0000043", 0.5) != crops[0]
    image = crop_panorama(pano, crops[0])
    assert image.shape == (8, crops[0].width_px, 3)
    columns = image[0, :, 0].astype(int) + 256 * image[0, :, 1].astype(int)
    np.testing.assert_array_equal(columns, (crops[0].start_column + np.arange(crops[0].width_px)) % PANO_W)
    # heading = bearing of the crop's centre; north is the panorama's centre column
    centre = crops[0].start_column + crops[0].width_px / 2.0
    assert crops[0].heading_deg == pytest.approx(float(g.panorama_column_bearing(centre, PANO_W, PANO_W / 2)))


def test_panorama_crop_without_random_orientation_looks_north():
    crop = choose_panorama_crop(PANO_W, 90.0, 0, "x", 0.5, random_orientation=False)
    assert crop.start_column == PANO_W // 2 - 154 and crop.heading_deg == pytest.approx(0.0)
    unknown = choose_panorama_crop(PANO_W, 90.0, 0, "x", None)
    assert unknown.heading_deg is None


def test_panorama_pairs_use_the_crop_geometry(cvusa_root):
    reader = CvusaReader(cvusa_root, "train")
    config = PairConfig(ground_hw=(32, 64), satellite_hw=(48, 48), panorama_fov_deg=70.0, crop_seed=3)
    first, again = CrossViewPairs(reader, config)[0], CrossViewPairs(reader, config)[0]
    assert torch.equal(first["ground"], again["ground"]) and first["heading_deg"] == again["heading_deg"]
    crop = choose_panorama_crop(PANO_W, 70.0, 3, reader.items[0].item_id, 0.5)
    assert float(first["heading_deg"]) == pytest.approx(crop.heading_deg, abs=1e-4)
    assert float(first["fov_deg"]) == pytest.approx(crop.fov_deg, abs=1e-4)
    assert first["ground"].shape == (3, 32, 64) and first["satellite"].shape == (3, 48, 48)
    # the mask is the crop's footprint: the sector from the tile centre along the crop's heading
    assert tuple(first["camera_px"].tolist()) == (24.0, 24.0)
    expected = g.overlap_mask((48, 48), (24.0, 24.0), crop.heading_deg, crop.fov_deg)
    np.testing.assert_array_equal(first["overlap_mask"].numpy(), expected)
    target = g.cwr_target((48, 48), (24.0, 24.0), crop.heading_deg)
    np.testing.assert_allclose(first["overlap_centre_px"].numpy(), target, atol=1e-4)
    other = CrossViewPairs(reader, PairConfig(ground_hw=(32, 64), satellite_hw=(48, 48), panorama_fov_deg=70.0,
                                              crop_seed=4))[0]
    assert float(other["heading_deg"]) != float(first["heading_deg"])
    full = CrossViewPairs(reader, PairConfig(ground_hw=(32, 64), satellite_hw=(48, 48)))[0]
    assert float(full["fov_deg"]) == 360.0 and torch.all(full["overlap_mask"] == 1.0)


# ---------------------------------------------------------------- CVACT
CVACT_IDS = [f"{chr(97 + i)}" * 4 + f"{i:018d}" for i in range(6)]   # 22 characters, like real pano ids


@pytest.fixture
def cvact_root(tmp_path):
    root = tmp_path / "CVACT"
    root.mkdir()
    utm = np.array([[692000.0 + 10 * i, 6095000.0 + 10 * i] for i in range(len(CVACT_IDS))])
    # shaped like the real file: panoIds a char matrix (one row per id), utm N x 2, index structs of
    # 1-based column vectors
    scipy.io.savemat(root / "ACT_data.mat", {
        "panoIds": np.array(CVACT_IDS), "utm": utm,
        "trainSet": {"trainInd": np.array([[1], [2], [4]], dtype=float)},
        "valSet": {"valInd": np.array([[3], [5]], dtype=float)},
    })
    for i, pano_id in enumerate(CVACT_IDS[:5]):
        write_image(root / "ANU_data_small/streetview" / f"{pano_id}_grdView.jpg", 128, 64, seed=i)
        write_image(root / "ANU_data_small/satview_polish" / f"{pano_id}_satView_polish.jpg", 80, 80, seed=i)
    for i, pano_id in enumerate(["testid1", "testid2"]):
        write_image(root / "ANU_data_test/streetview" / f"{pano_id}_grdView.jpg", 128, 64, seed=i)
        write_image(root / "ANU_data_test/satview_polish" / f"{pano_id}_satView_polish.jpg", 80, 80, seed=i)
    return root


def test_cvact_reader_uses_one_based_indices(cvact_root):
    loaded = scipy.io.loadmat(cvact_root / "ACT_data.mat")
    assert loaded["panoIds"].shape == (6,) and loaded["trainSet"]["trainInd"][0][0].shape == (3, 1)
    train = CvactReader(cvact_root, "train")
    assert [i.item_id for i in train] == [CVACT_IDS[0], CVACT_IDS[1], CVACT_IDS[3]]
    item = train.items[2]
    assert item.map_xy == (692030.0, 6095030.0) and item.is_panorama and item.north_x_fraction == 0.5
    assert item.ground_path == cvact_root / "ANU_data_small/streetview" / f"{CVACT_IDS[3]}_grdView.jpg"
    assert item.satellite_path.name == f"{CVACT_IDS[3]}_satView_polish.jpg"
    assert [i.item_id for i in CvactReader(cvact_root, "val")] == [CVACT_IDS[2], CVACT_IDS[4]]
    test = CvactReader(cvact_root, "test")
    assert [i.item_id for i in test] == ["testid1", "testid2"]
    assert test.items[0].ground_path.parent == cvact_root / "ANU_data_test/streetview"


def test_cvact_missing_images_bad_indices_and_corrupt_mat(cvact_root):
    (cvact_root / "ANU_data_small/satview_polish" / f"{CVACT_IDS[1]}_satView_polish.jpg").unlink()
    reader = CvactReader(cvact_root, "train")
    assert [i.item_id for i in reader] == [CVACT_IDS[0], CVACT_IDS[3]]
    assert skipped_reasons(reader) == {f"{CVACT_IDS[1]}_satView_polish.jpg": "missing"}
    assert reader.dropped_items == 1
    mat = scipy.io.loadmat(cvact_root / "ACT_data.mat")
    scipy.io.savemat(cvact_root / "ACT_data.mat", {
        "panoIds": mat["panoIds"], "utm": mat["utm"],
        "trainSet": {"trainInd": np.array([[1], [9], [0]], dtype=float)}, "valSet": {"valInd": np.array([[3]])}})
    reader = CvactReader(cvact_root, "train")
    assert [i.item_id for i in reader] == [CVACT_IDS[0]]
    assert sorted(e.reason for e in reader.skipped) == [
        "malformed line 2: trainSet.trainInd entry 9.0 is not an index in 1..6",
        "malformed line 3: trainSet.trainInd entry 0.0 is not an index in 1..6"]
    (cvact_root / "ACT_data.mat").write_bytes(b"MATLAB 5.0 MAT-file, truncated garbage")
    with pytest.raises(EmptyDatasetError, match="ACT_data.mat: unreadable MAT file"):
        CvactReader(cvact_root, "train")
    # the test split does not need the MAT file
    assert len(CvactReader(cvact_root, "test")) == 2


# ---------------------------------------------------------------- VIGOR
VIGOR_TILE = 640


def vigor_tile_name(lat, lon):
    return f"satellite_{lat:.10f}_{lon:.10f}.png"


@pytest.fixture
def vigor_root(tmp_path):
    root = tmp_path / "VIGOR"
    for c, city in enumerate(("NewYork", "Chicago")):
        tiles = [vigor_tile_name(40.0 + c + 0.001 * k, -74.0 - c - 0.001 * k) for k in range(4)]
        for k, tile in enumerate(tiles):
            write_image(root / city / "satellite" / tile, VIGOR_TILE, VIGOR_TILE, seed=10 * c + k)
        lines = []
        for p in range(3):
            pano = f"pano{c}{p},{40.0 + c + 0.0004 * p:.6f},{-74.0 - c - 0.0004 * p:.6f},.jpg"
            write_image(root / city / "panorama" / pano, 256, 128, seed=50 + p)
            groups = [f"{tiles[(p + k) % 4]} {10.5 * (k + 1) + p} {-20.25 * (k + 1)}" for k in range(4)]
            lines.append(f"{pano} {' '.join(groups)}\n")
        splits = root / "splits" / city
        splits.mkdir(parents=True)
        (splits / "satellite_list.txt").write_text("".join(t + "\n" for t in tiles))
        (splits / "pano_label_balanced.txt").write_text("".join(lines))
        (splits / "same_area_balanced_train.txt").write_text("".join(lines[:2]))
        (splits / "same_area_balanced_test.txt").write_text("".join(lines[2:]))
    return root


def test_vigor_same_area_positives_semipositives_and_offsets(vigor_root):
    reader = VigorReader(vigor_root, "same_area", "train")
    assert [i.item_id.split(",")[0] for i in reader] == ["NewYork/pano00", "NewYork/pano01",
                                                         "Chicago/pano10", "Chicago/pano11"]
    item = reader.items[1]
    tiles = (vigor_root / "splits/NewYork/satellite_list.txt").read_text().split()
    assert item.satellite_path == vigor_root / "NewYork/satellite" / tiles[1]
    assert item.camera_offset_px == (-20.25, 11.5) and item.satellite_size_px == (640, 640)
    # the camera sits at (W/2 + column offset, H/2 + row offset), scaled to the image as loaded
    assert item.camera_px((640, 640)) == (320 - 20.25, 320 + 11.5)
    assert item.camera_px((320, 320)) == (160 - 10.125, 160 + 5.75)
    assert item.metres_per_px == 0.113248 and reader.items[2].metres_per_px == 0.111262
    assert [s.path.name for s in item.semi_positives] == [tiles[2], tiles[3], tiles[0]]
    assert [s.camera_offset_px for s in item.semi_positives] == [(-40.5, 22.0), (-60.75, 32.5), (-81.0, 43.0)]
    assert (item.lat, item.lon) == pytest.approx((40.0004, -74.0004))
    assert item.is_panorama and item.north_x_fraction == 0.5
    assert len(reader.gallery) == 8                             # every listed tile of both cities
    test = VigorReader(vigor_root, "same_area", "test")
    assert [i.item_id.split(",")[0] for i in test] == ["NewYork/pano02", "Chicago/pano12"]


def test_vigor_cross_area_and_missing_files(vigor_root):
    # cross-area training is NewYork + Seattle: Seattle's labels are missing here and are reported
    train = VigorReader(vigor_root, "cross_area", "train")
    assert len(train) == 3 and {i.city for i in train} == {"NewYork"}
    assert {e.path.relative_to(vigor_root).as_posix() for e in train.skipped} == {
        "splits/Seattle/satellite_list.txt", "splits/Seattle/pano_label_balanced.txt"}
    test = VigorReader(vigor_root, "cross_area", "test", cities=["Chicago"])
    assert len(test) == 3 and test.items[0].metres_per_px == 0.111262
    tiles = (vigor_root / "splits/Chicago/satellite_list.txt").read_text().split()
    corrupt_pano = test.items[1].ground_path
    (vigor_root / "Chicago/satellite" / tiles[2]).unlink()   # positive of pano12, semi-positive of the others
    write_corrupt(corrupt_pano)                                 # pano11's panorama
    test = VigorReader(vigor_root, "cross_area", "test", cities=["Chicago"], check_images=True)
    assert [i.item_id.split(",")[0] for i in test] == ["Chicago/pano10"]
    assert [s.path.name for s in test.items[0].semi_positives] == [tiles[1], tiles[3]]
    reasons = skipped_reasons(test)
    assert reasons[tiles[2]] == "missing" and reasons[corrupt_pano.name].startswith("unreadable image")
    assert test.skipped_count == 2 and test.dropped_items == 2 and len(test.gallery) == 3


def test_vigor_prefers_splits_new_and_metres_per_pixel_json(vigor_root):
    corrected = vigor_root / "splits_new" / "NewYork"
    corrected.mkdir(parents=True)
    (corrected / "satellite_list.txt").write_text((vigor_root / "splits/NewYork/satellite_list.txt").read_text())
    line = (vigor_root / "splits/NewYork/same_area_balanced_train.txt").read_text().splitlines()[0].split()
    line[2], line[3] = "1.0", "2.0"
    (corrected / "same_area_balanced_train.txt").write_text(" ".join(line) + "\n")
    (vigor_root / "meters_per_pixel.json").write_text(json.dumps({"NewYork": 0.25}))
    reader = VigorReader(vigor_root, "same_area", "train", cities=["NewYork"])
    assert len(reader) == 1 and reader.items[0].camera_offset_px == (2.0, 1.0)
    assert reader.items[0].metres_per_px == 0.25
    assert len(VigorReader(vigor_root, "same_area", "train", cities=["NewYork"], label_dir="splits")) == 2
    (vigor_root / "splits_new/NewYork/same_area_balanced_train.txt").write_text("pano.jpg tile.png 1 2\n")
    with pytest.raises(EmptyDatasetError, match="malformed line 1"):
        VigorReader(vigor_root, "same_area", "train", cities=["NewYork"])


def test_vigor_pairs_put_the_camera_at_the_offset(vigor_root):
    reader = VigorReader(vigor_root, "same_area", "train", cities=["NewYork"])
    pairs = CrossViewPairs(reader, PairConfig(ground_hw=(32, 64), satellite_hw=(64, 64), panorama_fov_deg=90.0))
    sample = pairs[1]
    np.testing.assert_allclose(sample["camera_px"].numpy(), [(320 - 20.25) / 10, (320 + 11.5) / 10], atol=1e-5)
    assert float(sample["metres_per_px"]) == pytest.approx(0.113248 * 10)
    heading = float(sample["heading_deg"])
    expected = g.overlap_mask((64, 64), tuple(sample["camera_px"].tolist()), heading, float(sample["fov_deg"]))
    np.testing.assert_array_equal(sample["overlap_mask"].numpy(), expected)


# ---------------------------------------------------------------- CV-Cities
def test_cvcities_reader(tmp_path):
    root = tmp_path / "CVCities"
    for c, city in enumerate(("London", "Barcelona")):
        rows = []
        for i in range(2):
            sat, pano = f"{city}/satellite/{i}.jpg", f"{city}/panorama/{i}.jpg"
            write_image(root / sat, 64, 64, seed=i)
            write_image(root / pano, 128, 64, seed=i + 5)
            rows.append([f"{city}_{i}", f"{-0.1 + c + i * 1e-3}", f"{51.5 - c}", city, sat, pano])
        write_csv(root / city / "img_info.csv", rows)
    (root / "Barcelona/panorama/1.jpg").unlink()
    test = CvCitiesReader(root, "test")
    assert [i.item_id for i in test] == ["London/London_0", "London/London_1"]
    assert test.items[1].satellite_path == root / "London/satellite/1.jpg"
    assert (test.items[1].lon, test.items[1].lat) == pytest.approx((-0.099, 51.5))
    assert test.items[0].is_panorama and test.items[0].north_x_fraction == 0.5
    train = CvCitiesReader(root, "train")
    assert [i.item_id for i in train] == ["Barcelona/Barcelona_0"]
    assert skipped_reasons(train) == {"1.jpg": "missing"} and train.dropped_items == 1
    assert len(CvCitiesReader(root, "all")) == 3
    unknown = CvCitiesReader(root, "test", north_x_fraction=None)
    sample = CrossViewPairs(unknown, PairConfig(ground_hw=(16, 32), satellite_hw=(32, 32),
                                                panorama_fov_deg=90.0))[0]
    assert not bool(sample["has_heading"]) and torch.isnan(sample["heading_deg"])
    assert torch.isnan(sample["overlap_centre_px"]).all() and torch.all(sample["overlap_mask"] == 1.0)


# ---------------------------------------------------------------- the pair Dataset
def test_pairs_from_cvnaf_and_decode_errors(cvnaf_root, caplog):
    reader = CvnafReader(cvnaf_root, "train")
    config = PairConfig(ground_hw=(24, 40), satellite_hw=(32, 32))
    pairs = CrossViewPairs(reader, config)
    sample = pairs[2]
    item = reader.items[2]
    assert sample["item_id"] == item.item_id and int(sample["index"]) == 2
    assert sample["ground"].shape == (3, 24, 40) and sample["ground"].dtype == torch.float32
    assert 0.0 <= float(sample["ground"].min()) and float(sample["ground"].max()) <= 1.0
    assert tuple(sample["camera_px"].tolist()) == (16.0, 16.0)
    assert float(sample["heading_deg"]) == item.heading_deg and float(sample["fov_deg"]) == item.fov_deg
    np.testing.assert_array_equal(sample["overlap_mask"].numpy(),
                                  g.overlap_mask((32, 32), (16.0, 16.0), item.heading_deg, item.fov_deg))
    np.testing.assert_allclose(sample["overlap_centre_px"].numpy(),
                               g.cwr_target((32, 32), (16.0, 16.0), item.heading_deg), atol=1e-5)
    assert torch.isnan(sample["metres_per_px"]) and bool(sample["has_heading"])
    # the public CVNAF recipe keeps the central 373/384 of the chip
    cropped = CrossViewPairs(reader, PairConfig(satellite_hw=(32, 32), tile_fraction=373 / 384))[0]
    assert cropped["satellite_window_px"].tolist() == [1.0, 1.0, 62.0, 62.0]

    write_corrupt(cvnaf_root / "Miami/satellite/miami_1_sat.jpg")
    with caplog.at_level(logging.WARNING):
        batch = collate_pairs([pairs[i] for i in range(len(pairs))])
    assert pairs[1] is None
    assert [(e.path.name, e.reason.split(" (")[0]) for e in pairs.skipped] == [("miami_1_sat.jpg",
                                                                               "unreadable image")]
    assert "miami_1_sat.jpg" in caplog.text
    assert batch["ground"].shape == (3, 3, 24, 40) and batch["index"].tolist() == [0, 2, 3]
    assert collate_pairs([None, None]) is None


def test_pairs_resample_to_the_model_resolution_when_known(vigor_root):
    reader = VigorReader(vigor_root, "same_area", "train", cities=["NewYork"])
    # 0.113248 m/px native; a 64 px model tile at 0.5 m/px spans 283 native px around the tile centre
    config = PairConfig(ground_hw=(16, 32), satellite_hw=(64, 64), metres_per_px=0.5)
    sample = CrossViewPairs(reader, config)[0]
    window = sample["satellite_window_px"].tolist()
    assert window[2:] == [283.0, 283.0] and window[:2] == [178.0, 178.0]
    assert float(sample["metres_per_px"]) == pytest.approx(0.113248 * 283 / 64)
    item = reader.items[0]
    camera = item.camera_px((640, 640))
    np.testing.assert_allclose(sample["camera_px"].numpy(),
                               [(camera[0] - 178) * 64 / 283, (camera[1] - 178) * 64 / 283], atol=1e-4)


# ---------------------------------------------------------------- our synthetic exports
@pytest.fixture(scope="module")
def synthetic_world():
    generate = pytest.importorskip("engine.synth.generate", reason="synthetic world generator not importable")
    return generate.generate_world("urban", 21, size_m=300.0, resolution_m=0.5)


def test_synthetic_cvnaf_export_reads_back_with_exact_truth(tmp_path, synthetic_world):
    from engine.synth.export import export_cvnaf
    from engine.synth.photos import PhotoSpec

    root = export_cvnaf([synthetic_world], PhotoSpec(5, (40, 110), (96, 64)), 2, tmp_path / "cvnaf", chip_px=128)
    reader = SyntheticCvnafReader(root, "train")
    plain = CvnafReader(root, "train")
    assert len(reader) == len(plain) == 4 and reader.skipped == []
    info = json.loads((root / "dataset.json").read_text())["cities"][0]
    for item, base in zip(reader, plain):
        assert item.item_id == base.item_id and item.heading_deg == base.heading_deg
        assert item.dataset == "synthetic-cvnaf" and item.satellite_size_px == (128, 128)
        assert item.metres_per_px == info["chip_metres_per_px"] and item.map_crs == info["crs"]
        lon, lat = g.map_to_lonlat(item.map_crs, *item.map_xy)
        assert (float(lon), float(lat)) == pytest.approx((item.lon, item.lat), abs=1e-6)
        assert item.overlap_px is not None and not item.overlap_px.is_empty
        assert item.overlap_px.intersects(g.overlap_polygon_in_tile((128, 128), (64, 64), item.heading_deg,
                                                                    item.fov_deg).buffer(1.0))
    # the exact overlap lies inside the FoV sector (up to the rasterised border)
    config = PairConfig(ground_hw=(32, 48), satellite_hw=(64, 64))
    for index in range(len(reader)):
        exact = CrossViewPairs(reader, dataclasses.replace(config, mask_source="exact"))[index]
        sector = CrossViewPairs(reader, config)[index]
        inside_exact = exact["overlap_mask"] > 0.5
        if inside_exact.any():
            agree = (sector["overlap_mask"][inside_exact] > 0.5).float().mean()
            assert float(agree) > 0.95
        assert float(exact["metres_per_px"]) == pytest.approx(info["chip_metres_per_px"] * 2)


def test_synthetic_vigor_export_reads_back(tmp_path, synthetic_world):
    from engine.synth.export import export_vigor
    from engine.synth.photos import PhotoSpec

    root = export_vigor([synthetic_world], PhotoSpec(4, (40, 110), (96, 64)), 3, tmp_path / "vigor", tile_px=128)
    city = "urban_s21"
    res = json.loads((root / "meters_per_pixel.json").read_text())[city]
    train = SyntheticVigorReader(root, "same_area", "train")
    test = SyntheticVigorReader(root, "same_area", "test")
    assert len(train) + len(test) == 4 and train.skipped == []
    for item in list(train) + list(test):
        assert not item.is_panorama and item.heading_deg is not None and 40 <= item.fov_deg <= 110
        assert item.satellite_size_px == (128, 128) and item.metres_per_px == res
        assert len(item.semi_positives) == 3 and item.overlap_px is not None
        # the offsets put the camera exactly where the truth says, on the positive tile
        _, tile_lat, tile_lon = item.satellite_path.stem.split("_")
        tile_x, tile_y = g.lonlat_to_map(item.map_crs, float(tile_lon), float(tile_lat))
        frame = g.TileFrame.centred_on(float(tile_x), float(tile_y), 128, 128, res)
        expected = frame.map_to_tile(*item.map_xy)
        assert item.camera_px((128, 128)) == pytest.approx((float(expected[0]), float(expected[1])), abs=0.05)
        sample = CrossViewPairs([item], PairConfig(ground_hw=(32, 48), satellite_hw=(128, 128)))[0]
        np.testing.assert_allclose(sample["camera_px"].numpy(), item.camera_px((128, 128)), atol=1e-4)
        assert float(sample["heading_deg"]) == pytest.approx(item.heading_deg, abs=1e-4)
