"""Photos as cameras and analysts make them: resized with the camera's EXIF, portrait, magnetic compass,
108 MP, 1 x 1, CMYK, an orthophoto given as a photo; each asserts its exact behaviour."""
import io
import sys
import zlib
from datetime import datetime

import numpy as np
import pytest
import rasterio
from affine import Affine
from PIL import ExifTags, Image

from engine.geo.declination import declination
from engine.geo.exif import build_exif, read_exif
from engine.geo.photo import MAX_PIXELS, PhotoError, load_photo
from engine.geo.priors import PriorOverrides, resolve_priors

BASE, GPS = ExifTags.Base, ExifTags.GPS


def _camera_exif(original_width=6000, original_height=4000, sensor_mm=23.5, focal_mm=70.0, orientation=1):
    """EXIF of an APS-C camera photo (FocalLength + focal-plane resolution, no 35 mm equivalent)."""
    exif = build_exif(lon=-100.0, lat=50.0, heading_deg=10.0, fov_deg=60.0, taken=datetime(2024, 6, 1))
    ifd = exif.get_ifd(ExifTags.IFD.Exif)
    del ifd[BASE.FocalLengthIn35mmFilm]
    ifd[BASE.FocalLength] = focal_mm
    ifd[BASE.FocalPlaneXResolution] = original_width / sensor_mm    # px per mm
    ifd[BASE.FocalPlaneYResolution] = original_width / sensor_mm
    ifd[BASE.FocalPlaneResolutionUnit] = 4                          # mm
    ifd[BASE.ExifImageWidth] = original_width
    ifd[BASE.ExifImageHeight] = original_height
    exif[BASE.Orientation] = orientation
    return exif


def _save(path, size, exif=None, mode="RGB", fmt="JPEG"):
    rng = np.random.default_rng(1)
    image = Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).convert(mode)
    image.save(path, format=fmt, exif=exif if exif is not None else Image.Exif())
    return path


def test_resized_photo_keeps_the_cameras_fov(tmp_path):
    # 6000 px original resized to 1280 px: the sensor is measured over ExifImageWidth, not the 1280 px
    path = _save(tmp_path / "resized.jpg", (1280, 853), _camera_exif())
    meta = read_exif(path)
    truth = np.degrees(2 * np.arctan(23.5 / 2 / 70.0))
    assert truth == pytest.approx(19.06, abs=0.01)   # read over the 1280 px it would be 4.1 degrees
    assert meta.sensor_width_mm == pytest.approx(23.5) and meta.fov_deg == pytest.approx(truth)
    assert "ExifImageWidth" in meta.fov_basis
    assert resolve_priors(meta).fov_basis.startswith("FocalLength and a 23.50 mm sensor width")


def test_resized_photo_without_original_width_and_implausible_sensor_has_no_fov(tmp_path):
    exif = _camera_exif()
    exif.get_ifd(ExifTags.IFD.Exif)[BASE.ExifImageWidth] = 60000   # stale tags: a 235 mm sensor does not exist
    path = _save(tmp_path / "odd.jpg", (1280, 853), exif)
    assert read_exif(path).fov_deg is None


@pytest.mark.parametrize("orientation,stored", [(6, (1200, 800)), (8, (1200, 800)), (1, (800, 1200))])
def test_portrait_photo_gets_the_short_side_fov(tmp_path, orientation, stored):
    exif = build_exif(lon=1.0, lat=2.0, heading_deg=0.0, fov_deg=65.0, taken=datetime(2024, 1, 1))
    exif[BASE.Orientation] = orientation
    path = _save(tmp_path / "portrait.jpg", stored, exif)
    meta = read_exif(path)
    long_side = meta.focal_35mm and np.degrees(2 * np.arctan(18.0 / meta.focal_35mm))
    expected = np.degrees(2 * np.arctan(np.tan(np.radians(long_side) / 2) * 800 / 1200))
    assert meta.upright_size == (800, 1200)
    assert meta.fov_deg == pytest.approx(expected) and meta.fov_deg == pytest.approx(45.9, abs=0.5)
    assert "(portrait)" in meta.fov_basis
    photo = load_photo(path)
    assert photo.rgb.shape == (1200, 800, 3)


def test_portrait_camera_photo_uses_the_sensor_height(tmp_path):
    path = _save(tmp_path / "p.jpg", (1200, 800), _camera_exif(orientation=6))
    expected = np.degrees(2 * np.arctan(23.5 * (4000 / 6000) / 2 / 70.0))
    # the stored pixels are 1200 x 800 (3:2 like the sensor), so the turned FoV is over the short side
    assert read_exif(path).fov_deg == pytest.approx(np.degrees(2 * np.arctan(23.5 * (800 / 1200) / 2 / 70.0)))
    assert expected == pytest.approx(read_exif(path).fov_deg)


def test_magnetic_heading_is_corrected_with_the_world_magnetic_model(tmp_path):
    exif = build_exif(lon=-100.0, lat=50.0, heading_deg=10.0, fov_deg=60.0, taken=datetime(2024, 6, 1),
                      heading_ref="M")
    meta = read_exif(_save(tmp_path / "m.jpg", (640, 480), exif))
    assert meta.heading_ref == "M"
    priors = resolve_priors(meta)
    expected = declination(-100.0, 50.0, datetime(2024, 6, 1))
    assert expected.model == "WMM2020" and 3.0 < expected.degrees < 8.0    # Manitoba, 2024: about 5 deg E
    assert priors.heading.heading_deg == pytest.approx(10.0 + expected.degrees)
    assert priors.heading.reference == "magnetic" and priors.heading.declination_deg == expected.degrees
    assert priors.heading.tolerance_deg == 30.0 and priors.warnings == ()
    assert priors.to_json()["heading"]["declination_model"] == "WMM2020"


def test_magnetic_heading_without_a_model_is_widened_with_a_warning(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pygeomag", None)     # as on a machine without the package
    exif = build_exif(lon=-100.0, lat=50.0, heading_deg=10.0, fov_deg=60.0, taken=datetime(2024, 6, 1),
                      heading_ref="M")
    priors = resolve_priors(read_exif(_save(tmp_path / "m.jpg", (640, 480), exif)))
    assert priors.heading.heading_deg == 10.0 and priors.heading.tolerance_deg == 50.0
    assert priors.heading.declination_deg is None
    assert priors.warnings == ("the compass heading is magnetic and could not be corrected (no magnetic model "
                               "installed); used with a tolerance widened by 20 degrees",)


def test_true_heading_and_gps_error_report_their_sources(tmp_path):
    exif = build_exif(lon=8.0, lat=47.0, heading_deg=10.0, fov_deg=60.0, taken=datetime(2024, 6, 1),
                      gps_error_m=4.0)
    priors = resolve_priors(read_exif(_save(tmp_path / "t.jpg", (640, 480), exif)))
    assert priors.heading.reference == "true" and priors.heading.heading_deg == 10.0
    assert priors.position.sigma_source == "GPSHPositioningError" and priors.position.sigma_m == 4.0
    assert priors.fov_source == "exif" and priors.fov_basis == "FocalLengthIn35mmFilm"
    no_error = resolve_priors(read_exif(_save(tmp_path / "u.jpg", (640, 480),
                                              build_exif(lon=8.0, lat=47.0, heading_deg=1.0, fov_deg=60.0,
                                                         taken=datetime(2024, 6, 1)))))
    assert no_error.position.sigma_source == "default" and no_error.position.sigma_m == 15.0
    user = resolve_priors(read_exif(_save(tmp_path / "v.jpg", (64, 64))), PriorOverrides(lonlat=(1.0, 2.0),
                                                                                         radius_m=30.0))
    assert user.position.source == "user" and user.position.sigma_source == "user"


def test_108_megapixel_photo_decodes_reduced(tmp_path):
    image = Image.new("RGB", (12000, 9000), (90, 120, 150))
    path = tmp_path / "phone108.jpg"
    image.save(path, quality=50, exif=build_exif(lon=1.0, lat=2.0, heading_deg=0.0, fov_deg=70.0,
                                                 taken=datetime(2024, 1, 1)))
    photo = load_photo(path)
    assert photo.original_size == (12000, 9000) and photo.rgb.shape == (4500, 6000, 3)
    assert photo.warnings == () and tuple(photo.rgb[0, 0]) == pytest.approx((90, 120, 150), abs=3)
    assert photo.exif.fov_deg == pytest.approx(70.0, abs=1.0)


def test_photo_over_the_limit_is_refused_before_decoding(tmp_path):
    # a PNG header claiming 20000 x 20000 px: refused from the header, nothing is decoded
    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    data[16:24] = (20000).to_bytes(4, "big") + (20000).to_bytes(4, "big")    # IHDR width, height
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")           # and its checksum
    path = tmp_path / "bomb.png"
    path.write_bytes(bytes(data))
    with pytest.raises(PhotoError, match=f"image too large \\(20000 x 20000 px = 400 MP; the limit is "
                                         f"{MAX_PIXELS // 1_000_000} MP\\)") as info:
        load_photo(path)
    assert str(path) in str(info.value)


def test_tiny_photo_is_loaded_with_a_warning(tmp_path):
    photo = load_photo(_save(tmp_path / "dot.png", (1, 1), fmt="PNG"))
    assert photo.rgb.shape == (1, 1, 3)
    assert photo.warnings == ("too small to localise reliably: 1 x 1 px (at least 64 px on the short side are "
                              "needed)",)
    assert photo.is_ground_photo


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (200, 100), (0, 255, 255, 0)).save(path)      # pure red in CMYK
    photo = load_photo(path)
    assert photo.rgb.shape == (100, 200, 3) and photo.warnings == ()
    assert photo.rgb[50, 100, 0] > 200 and photo.rgb[50, 100, 1] < 60


def test_orthophoto_given_as_a_photo_is_flagged(tmp_path):
    path = tmp_path / "ortho.tif"
    data = np.random.default_rng(0).integers(0, 255, (3, 256, 256), dtype=np.uint8)
    with rasterio.open(path, "w", driver="GTiff", width=256, height=256, count=3, dtype="uint8",
                       crs="EPSG:32632", transform=Affine(0.5, 0, 500000, 0, -0.5, 5300000)) as dst:
        dst.write(data)
    photo = load_photo(path)
    assert not photo.is_ground_photo
    assert photo.warnings[0].startswith("not a ground photo: ortho.tif is georeferenced")


def test_map_tile_with_a_world_file_is_flagged(tmp_path):
    path = _save(tmp_path / "tile.jpg", (256, 256))
    (tmp_path / "tile.jgw").write_text("0.5\n0\n0\n-0.5\n500000\n5300000\n")
    assert not load_photo(path).is_ground_photo
