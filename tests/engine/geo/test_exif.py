from datetime import datetime

import numpy as np
import pytest
from PIL import Image

from engine.data.geometry import focal_35mm_to_fov
from engine.geo.exif import build_exif, read_exif, write_jpeg


@pytest.mark.parametrize("lon,lat", [(11.2558136, 43.7695604), (-74.0059731, 40.7127753), (151.2093, -33.8688)])
def test_exif_round_trip(tmp_path, lon, lat):
    image = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    taken = datetime(2024, 6, 1, 14, 30, 5)
    path = tmp_path / "photo.jpg"
    write_jpeg(path, image, build_exif(lon=lon, lat=lat, heading_deg=271.25, fov_deg=73.0, taken=taken,
                                       gps_error_m=4.5))
    meta = read_exif(path)
    # 1e-7 degrees is about 1 cm.
    assert meta.lon == pytest.approx(lon, abs=1e-7) and meta.lat == pytest.approx(lat, abs=1e-7)
    assert meta.heading_deg == pytest.approx(271.25, abs=1e-3)
    assert meta.gps_error_m == pytest.approx(4.5)
    assert meta.focal_35mm == 24  # FocalLengthIn35mmFilm is an integer: 73 degrees -> 23.9 mm -> 24 mm
    assert meta.fov_deg == pytest.approx(focal_35mm_to_fov(24))
    assert abs(meta.fov_deg - 73.0) < 1.0
    assert meta.datetime_original == taken
    with Image.open(path) as reopened:
        assert reopened.size == (64, 48)


def test_photo_without_exif_reads_as_empty(tmp_path):
    path = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(path)
    meta = read_exif(path)
    assert not meta.has_position and meta.heading_deg is None and meta.fov_deg is None


def test_the_gps_position_is_read_from_the_header_alone(tmp_path):
    from engine.geo.exif import photo_gps_lonlat

    pixels = np.zeros((30, 40, 3), np.uint8)
    write_jpeg(tmp_path / "gps.jpg", pixels, build_exif(lon=-3.25, lat=51.5, heading_deg=10.0, fov_deg=60.0,
                                                          taken=datetime(2026, 1, 2, 3, 4)))
    write_jpeg(tmp_path / "plain.jpg", pixels)
    (tmp_path / "notes.jpg").write_text("not a photo")
    lon, lat = photo_gps_lonlat(tmp_path / "gps.jpg")
    assert (lon, lat) == (pytest.approx(-3.25, abs=1e-6), pytest.approx(51.5, abs=1e-6))
    assert photo_gps_lonlat(tmp_path / "plain.jpg") is None
    assert photo_gps_lonlat(tmp_path / "notes.jpg") is None
    assert photo_gps_lonlat(tmp_path / "missing.jpg") is None
