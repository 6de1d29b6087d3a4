from datetime import datetime

import numpy as np
import pytest
from PIL import Image

from engine.geo.exif import BASE, build_exif, read_exif
from engine.geo.photo import PhotoError, find_photos, load_photo


def _photo(tmp_path, name="p.jpg", size=(64, 48), **save):
    rng = np.random.default_rng(0)
    array = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    path = tmp_path / name
    Image.fromarray(array).save(path, **save)
    return path, array


def test_exif_orientation_is_applied(tmp_path):
    exif = Image.Exif()
    exif[BASE.Orientation] = 6   # stored landscape, displayed rotated 90 degrees clockwise
    path, array = _photo(tmp_path, size=(64, 48), exif=exif, quality=100)
    photo = load_photo(path)
    assert photo.rgb.shape == (64, 48, 3)


@pytest.mark.parametrize("mode", ["L", "CMYK", "RGBA", "I;16"])
def test_other_modes_become_rgb(tmp_path, mode):
    base = Image.fromarray(np.random.default_rng(1).integers(0, 255, (32, 40, 3), dtype=np.uint8))
    image = base.convert(mode) if mode != "I;16" else Image.fromarray(
        (np.arange(32 * 40).reshape(32, 40) * 40).astype(np.uint16))
    path = tmp_path / ("p.tif" if mode in ("CMYK", "I;16") else "p.png")
    image.save(path)
    photo = load_photo(path)
    assert photo.rgb.shape == (32, 40, 3) and photo.rgb.dtype == np.uint8
    assert len(photo.sha256) == 64


def test_focal_length_and_sensor_give_fov(tmp_path):
    exif = build_exif(lon=1.0, lat=2.0, heading_deg=10, fov_deg=70, taken=datetime(2024, 1, 1))
    ifd = exif.get_ifd(0x8769)
    del ifd[BASE.FocalLengthIn35mmFilm]
    ifd[BASE.FocalLength] = 4.0                       # mm
    ifd[BASE.FocalPlaneXResolution] = 640 / 6.4 * 10  # px per cm: 6.4 mm sensor over 640 px
    ifd[BASE.FocalPlaneResolutionUnit] = 3
    path, _ = _photo(tmp_path, size=(640, 480), exif=exif)
    meta = read_exif(path)
    assert meta.sensor_width_mm == pytest.approx(6.4)
    assert meta.fov_deg == pytest.approx(2 * np.degrees(np.arctan(3.2 / 4.0)))


@pytest.mark.parametrize("maker,needle", [
    (lambda p: p.write_bytes(b""), "empty"),
    (lambda p: p.write_text("hello, not an image"), "not an image"),
])
def test_bad_photos_name_the_file(tmp_path, maker, needle):
    path = tmp_path / "bad.jpg"
    maker(path)
    with pytest.raises(PhotoError, match=needle) as info:
        load_photo(path)
    assert str(path) in str(info.value)


def test_truncated_jpeg_is_an_error(tmp_path):
    path, _ = _photo(tmp_path, size=(256, 256), quality=95)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(PhotoError, match="truncated") as info:
        load_photo(path)
    assert str(path) in str(info.value)


def test_find_photos_expands_folders(tmp_path):
    (tmp_path / "sub").mkdir()
    _photo(tmp_path, "a.jpg")
    _photo(tmp_path / "sub", "b.PNG", format="PNG")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / ".hidden").mkdir()
    _photo(tmp_path / ".hidden", "c.jpg")
    assert [p.name for p in find_photos([tmp_path])] == ["a.jpg", "b.PNG"]
