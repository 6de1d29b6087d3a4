"""The map canvas reads a huge GeoTIFF at screen resolution in its reader thread; scale bar; cursor."""
from __future__ import annotations

import numpy as np
import pytest
import rasterio
from PySide6.QtCore import QPoint
from PySide6.QtTest import QTest
from rasterio.enums import Resampling
from rasterio.transform import from_origin
from rasterio.windows import Window

from app.layers import Layer
from app.map_canvas import OVERVIEW_SIDE, MapCanvas
from app.scale_bar import format_length, nice_length
from engine.pipeline import map_to_lonlat

SIDE_PX = 40_000
BLOCK = 512
ORIGIN = (500_000.0, 5_000_000.0)
METRES_PER_PX = 0.5
PAINTED_BLOCK = (20_480, 20_480)          # row, col of the one block with imagery in the middle


@pytest.fixture(scope="module")
def huge_geotiff(tmp_path_factory):
    """40,000 x 40,000 px, tiled, with overviews; sparse (only a few blocks hold data) so it is quick to make."""
    path = tmp_path_factory.mktemp("huge") / "huge.tif"
    profile = dict(driver="GTiff", width=SIDE_PX, height=SIDE_PX, count=3, dtype="uint8", crs="EPSG:32633",
                   transform=from_origin(*ORIGIN, METRES_PER_PX, METRES_PER_PX), tiled=True, blockxsize=BLOCK,
                   blockysize=BLOCK, compress="deflate", sparse_ok=True)
    stripes = np.zeros((3, BLOCK, BLOCK), dtype=np.uint8)
    stripes[0] = 200
    stripes[1, :, ::2] = 255                 # one-pixel columns: visible only when read at full resolution
    stripes[2] = 40
    with rasterio.open(path, "w", **profile) as dst:
        for row, col in (PAINTED_BLOCK, (0, 0), (SIDE_PX - BLOCK, SIDE_PX - BLOCK)):
            dst.write(stripes, window=Window(col, row, BLOCK, BLOCK))
        dst.build_overviews([2, 4, 8, 16, 32, 64], Resampling.nearest)
    return path


def block_bounds(row: int, col: int, size_px: int) -> tuple[float, float, float, float]:
    left = ORIGIN[0] + col * METRES_PER_PX
    top = ORIGIN[1] - row * METRES_PER_PX
    return left, top - size_px * METRES_PER_PX, left + size_px * METRES_PER_PX, top


@pytest.fixture
def canvas(qtbot):
    widget = MapCanvas()
    qtbot.addWidget(widget)
    widget.resize(800, 600)
    widget.show()
    qtbot.waitExposed(widget)
    yield widget
    widget.shutdown()


@pytest.mark.slow     # about 6 s: writes a huge GeoTIFF
def test_huge_geotiff_opens_at_once_and_is_read_at_screen_resolution(qtbot, canvas, huge_geotiff):
    satellite = Layer("satellite", "Satellite map", view=canvas.view)
    extent = SIDE_PX * METRES_PER_PX
    with qtbot.waitSignal(canvas.overview_shown, timeout=20_000):
        canvas.set_map(str(huge_geotiff), (ORIGIN[0], ORIGIN[1] - extent, ORIGIN[0] + extent, ORIGIN[1]),
                       METRES_PER_PX, satellite)
        assert canvas.overview_item.image is None        # set_map returned before any pixel was read
    assert max(canvas.overview_item.image.shape[:2]) <= OVERVIEW_SIDE
    assert canvas.detail_item.image is None             # the whole map: the overview is sharp enough

    # zoom into the painted block: the visible window is read again, no larger than the screen shows it
    with qtbot.waitSignal(canvas.detail_shown, timeout=20_000):
        canvas.zoom_to(block_bounds(*PAINTED_BLOCK, 256), padding=0.0)
    detail = canvas.detail_item.image
    width_px, height_px = canvas.view_size_px()
    assert detail.shape[1] <= width_px * 1.4 and detail.shape[0] <= height_px * 1.4
    left, bottom, right, top = canvas.detail_bounds
    view = canvas.view_bounds()
    assert left <= view[0] and right >= view[2] and bottom <= view[1] and top >= view[3]
    # the painted block at the map's own resolution: red 200, one-pixel green columns resolved
    metres_per_read_px = (right - left) / detail.shape[1]
    assert metres_per_read_px == pytest.approx(METRES_PER_PX, rel=0.05)
    b_left, b_bottom, b_right, b_top = block_bounds(*PAINTED_BLOCK, BLOCK)
    col0 = int(np.ceil((b_left - left) / metres_per_read_px)) + 2
    row0 = int(np.ceil((top - b_top) / metres_per_read_px)) + 2
    patch = detail[row0:row0 + 40, col0:col0 + 40]
    assert (patch[..., 0] == 200).all() and (patch[..., 3] == 255).all()
    green = patch[..., 1].astype(int)
    assert np.abs(np.diff(green, axis=1)).mean() > 150      # columns resolved, not averaged to grey

    # zooming out far enough drops the detail image again
    canvas.zoom_to_map()
    qtbot.waitUntil(lambda: canvas.detail_item.image is None, timeout=5_000)


def test_scale_bar_shows_a_round_length_for_the_zoom(qtbot, canvas, huge_geotiff):
    satellite = Layer("satellite", "Satellite map", view=canvas.view)
    extent = SIDE_PX * METRES_PER_PX
    canvas.set_map(str(huge_geotiff), (ORIGIN[0], ORIGIN[1] - extent, ORIGIN[0] + extent, ORIGIN[1]),
                   METRES_PER_PX, satellite)
    for span_m in (20_000.0, 1_000.0, 60.0):
        canvas.zoom_to(block_bounds(*PAINTED_BLOCK, int(span_m / METRES_PER_PX)), padding=0.0)
        bar = canvas.scale_bar
        assert bar.metres_per_px == pytest.approx(canvas.metres_per_screen_px())
        assert bar.target_px / 2.5 <= bar.bar_px <= bar.target_px
        mantissa = bar.length_m / 10 ** np.floor(np.log10(bar.length_m))
        assert mantissa in (1.0, 2.0, 2.5, 5.0)


def test_nice_lengths_and_their_labels():
    assert nice_length(137.0) == 100.0 and nice_length(260.0) == 250.0 and nice_length(0.7) == 0.5
    assert nice_length(0.0) == 0.0 and nice_length(float("nan")) == 0.0
    assert format_length(2500.0) == "2.5 km" and format_length(50.0) == "50 m" and format_length(0.5) == "50 cm"


def test_status_bar_shows_the_cursor_in_map_crs_and_lon_lat(qtbot, make_window, scene, tiny_model_path):
    window = make_window(tiny_model_path)
    window.open_map(str(scene / "map.tif"))
    canvas = window.canvas
    qtbot.waitUntil(lambda: canvas.map_bounds is not None, timeout=10_000)    # header read in the worker
    left, bottom, right, top = canvas.map_bounds
    x, y = (left + right) / 2 + 17.0, (bottom + top) / 2 - 9.0
    QTest.mouseMove(canvas.viewport(), canvas.map_to_widget(x, y).toPoint())
    qtbot.waitUntil(lambda: window.cursor_label.text() != "", timeout=5_000)
    text = window.cursor_label.text()
    lon, lat = map_to_lonlat(window.map_crs, x, y)
    metres_per_px = canvas.metres_per_screen_px()
    shown_x = float(text.split("E ")[1].split()[0].replace(",", ""))
    shown_y = float(text.split("N ")[1].split()[0].replace(",", ""))
    assert shown_x == pytest.approx(x, abs=metres_per_px) and shown_y == pytest.approx(y, abs=metres_per_px)
    assert "EPSG:32616" in text
    assert f"{abs(float(lat)):.4f}"[:-1] in text and f"{abs(float(lon)):.4f}"[:-1] in text
    QTest.mouseMove(canvas.viewport(), QPoint(-50, -50))
