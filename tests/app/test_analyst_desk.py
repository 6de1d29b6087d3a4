"""What a QGIS user expects of the window: a question before a new map replaces work, one heading everywhere,
identify, a sortable attribute table, pose layers with legends cut to the map, keyboard navigation, a layout
that keeps the map first on small screens, a stable toolbar, last folders, and exports the status bar counts."""
from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import rasterio
from affine import Affine
from PySide6.QtCore import QSettings, Qt
from PySide6.QtTest import QTest
from shapely.geometry import Point

from app import file_dialogs
from app.dialogs import INDEX_ANYWAY_TEXT, KEEP_TEXT, NEW_TEXT
from engine.pipeline import FAILED, GeoGrid, GeoImage, LocalizationResult, PoseEstimate
from engine.pipeline import session as vf
from tests.app.conftest import RESULT_TIMEOUT_MS, SCENE_PHOTOS, drop_paths, wait_for_all_results
from tests.engine.pipeline.scenes import write_coarse_map


def shifted_copy(source, target, east_m: float):
    """The same picture georeferenced `east_m` further east (another map far away)."""
    with rasterio.open(source) as src:
        data, crs, transform = src.read(), src.crs, src.transform
    target.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(target, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0],
                       dtype=data.dtype, crs=crs, transform=Affine(transform.a, transform.b, transform.c + east_m,
                                                                 transform.d, transform.e, transform.f)) as dst:
        dst.write(data)
    return target


def click_button(box, text: str) -> None:
    button = next(b for b in box.buttons() if b.text() == text or (text == "Cancel" and "Cancel" in b.text()))
    button.click()


@pytest.mark.slow     # about 5 s: indexes a map
def test_a_map_the_index_plan_refuses_asks_and_indexes_only_when_told(qtbot, make_window, tiny_model_path,
                                                                        tmp_path, monkeypatch):
    monkeypatch.setenv("VIEWFINDER_CACHE", str(tmp_path / "cache"))
    coarse = write_coarse_map(tmp_path / "coarse.tif", side_px=8)
    window = make_window(tiny_model_path)
    with qtbot.waitSignal(window.engine.index_refused, timeout=RESULT_TIMEOUT_MS) as refused:
        assert drop_paths(window, [coarse])
    assert "30 m/px" in refused.args[1] and "--force" not in refused.args[1]
    qtbot.waitUntil(lambda: window.question_box is not None and window.question_box.isVisible(), timeout=10_000)
    assert str(coarse.resolve()) in window.question_box.text() and "30 m/px" in window.question_box.text()
    assert not window.indexed and not window.progress_widget.isVisible()
    click_button(window.question_box, "Cancel")
    qtbot.wait(300)
    assert not window.indexed                 # nothing indexed behind the analyst's back
    window.question_box = None
    with qtbot.waitSignal(window.engine.index_refused, timeout=RESULT_TIMEOUT_MS):
        window.open_map(str(coarse))
    qtbot.waitUntil(lambda: window.question_box is not None and window.question_box.isVisible(), timeout=10_000)
    with qtbot.waitSignal(window.map_indexed, timeout=RESULT_TIMEOUT_MS) as indexed:
        click_button(window.question_box, INDEX_ANYWAY_TEXT)
    assert indexed.args[0].tiles >= 1 and window.indexed


@pytest.mark.slow     # about 10 s: indexes two maps
def test_a_new_map_over_results_asks_and_each_answer_does_what_it_says(qtbot, localized_window, scene, tmp_path):
    window = localized_window
    session = window.session
    first = session.photos[0]
    x, y = first.result.best.position.x, first.result.best.position.y
    assert session.correct(first.path, x + 5, y)
    far = shifted_copy(scene / "map.tif", tmp_path / "georgia" / "map.tif", 950e3)
    old_map = session.map

    # cancel: nothing changes
    assert drop_paths(window, [far])
    qtbot.waitUntil(lambda: window.question_box is not None and window.question_box.isVisible(), timeout=10_000)
    assert "drops 1" in window.question_box.text()
    click_button(window.question_box, "Cancel")
    assert session.map == old_map and session.record(first.path).result.status == "manual" and session.can_undo
    assert "not opened" in window.message_label.text()

    # keep photos: all wait for the new map, are localised on it; their GPS lies ~950 km off and says so
    window.question_box = None
    assert drop_paths(window, [far])
    qtbot.waitUntil(lambda: window.question_box is not None and window.question_box.isVisible(), timeout=10_000)
    with qtbot.waitSignal(window.map_indexed, timeout=RESULT_TIMEOUT_MS):
        click_button(window.question_box, KEEP_TEXT)
    assert session.map.path == str(far.resolve()) and session.truth == {} and not session.can_undo
    wait_for_all_results(qtbot, window, SCENE_PHOTOS)
    assert all(r.result.status != "manual" for r in session.photos)          # the correction lay off this map
    assert all(r.warnings and "km off" in r.warnings[0] for r in session.photos)
    assert "⚠" in window.results.index(0, window.results.STATUS).data()
    assert window.map_layers["truth"].items == []

    # new session: the photos go
    window.question_box = None
    assert drop_paths(window, [scene / "map.tif"])
    qtbot.waitUntil(lambda: window.question_box is not None and window.question_box.isVisible(), timeout=10_000)
    with qtbot.waitSignal(window.map_indexed, timeout=RESULT_TIMEOUT_MS):
        click_button(window.question_box, NEW_TEXT)
    assert session.photos == [] and window.results.rowCount() == 0 and len(session.truth) == SCENE_PHOTOS


def test_one_heading_everywhere_identify_and_a_sortable_attribute_table(qtbot, localized_window, tmp_path):
    window = localized_window
    model, panel = window.results, window.results_panel
    record = window.session.photos[1]
    window.results_panel.select_photo(record.path)
    qtbot.wait(50)
    heading = vf.heading_of(record.result)
    marker = window.map_layers.markers[record.path]
    assert marker.heading_deg == pytest.approx(heading)
    row = model.row_of(record.path)
    assert model.index(row, model.HEADING).data() == f"{heading:.1f}°"
    assert model.index(row, model.FOV).data() == f"{record.result.fov_deg:.0f}°"
    path = tmp_path / "r.csv"
    with qtbot.waitSignal(window.export_finished, timeout=60_000):
        window.export("csv", str(path))
    rank1 = [r for r in csv.DictReader(path.open()) if r["photo"] == record.name and r["rank"] == "1"]
    assert float(rank1[0]["heading_deg"]) == pytest.approx(heading, abs=0.05)
    rows = sum(1 for _ in csv.DictReader(path.open()))
    assert window.message_label.text().startswith(f"Exported {rows} rows ({SCENE_PHOTOS} photos)")

    # identify: clicking the camera lists what is known about it
    window.results_panel.table.clearSelection()
    canvas = window.canvas
    canvas.zoom_to_map()
    qtbot.wait(50)
    point = canvas.map_to_widget(record.result.best.position.x, record.result.best.position.y).toPoint()
    QTest.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, point)
    qtbot.waitUntil(lambda: window.identify_panel.photo == record.path, timeout=5_000)
    values = window.identify_panel.values()
    assert values["Heading"].startswith(f"{heading:.1f}°") and values["Field of view"].endswith("°")
    assert values["Model"] == record.result.model_id and "position exif" in values["Priors used"]
    assert window.identify_dock.isVisible()
    assert "Heading" in marker.toolTip() or "Heading" in window.map_layers.markers[record.path].toolTip()

    # sorting by heading orders the rows by heading, selection still follows the photo
    panel.table.sortByColumn(model.HEADING, Qt.SortOrder.AscendingOrder)
    shown = [panel.proxy.index(r, model.HEADING).data(Qt.ItemDataRole.UserRole + 1)
             for r in range(panel.proxy.rowCount())]
    assert shown == sorted(shown)
    panel.select_photo(record.path)
    assert window.selected_photo == record.path


def test_manual_says_manual_failed_rows_say_why_and_do_not_move_the_view(qtbot, localized_window, tmp_path):
    window = localized_window
    model, session = window.results, window.session
    record = session.photos[0]
    session.correct(record.path, record.result.best.position.x + 3, record.result.best.position.y)
    row = model.row_of(record.path)
    assert model.index(row, model.CONFIDENCE).data() == "manual"
    assert "by hand" in model.index(row, model.CONFIDENCE).data(Qt.ItemDataRole.ToolTipRole)
    assert window.undo_action.text() == "Undo" and window.undo_action.toolTip() == f"Undo move {record.name}"
    width = window.toolbar.sizeHint().width()
    session.undo()
    assert window.toolbar.sizeHint().width() == width                        # the toolbar does not jump

    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not a JPEG")
    assert drop_paths(window, [broken])
    wait_for_all_results(qtbot, window, SCENE_PHOTOS + 1)
    failed = session.record(str(broken.resolve()))
    assert failed.result.status == FAILED
    text = model.index(model.row_of(failed.path), model.STATUS).data()
    assert text.startswith("failed: ") and "broken.jpg" in text
    before = window.canvas.view_bounds()
    window.results_panel.select_photo(failed.path)
    assert window.canvas.view_bounds() == pytest.approx(before)
    assert window.identify_panel.values()["Error"] == failed.result.error


def pose_result(record, info) -> LocalizationResult:
    """The selected photo's result with a pose whose surface and BEV reach 40 m past the map's east edge."""
    left, bottom, right, top = info.bounds
    result = record.result
    x, y = result.best.position.x, result.best.position.y
    cell = 4.0
    cols = int((right + 40 - (x - 60)) / cell)
    surface = np.random.default_rng(0).random((30, cols)).astype(np.float32)
    surface /= surface.sum()
    transform = Affine(cell, 0, x - 60, 0, -cell, y + 60)
    bev = np.zeros((30, cols, 4), np.uint8)
    bev[..., 1], bev[..., 3] = 200, 255
    pose = PoseEstimate(result.best.position, 123.0, 9.0, [[25.0, 0.0], [0.0, 25.0]], 0.71, 10.0,
                        Point(x, y).buffer(15.0), surface=GeoGrid(surface, transform, info.crs),
                        bev=GeoImage(bev, transform, info.crs), method="bev-pose")
    return LocalizationResult(**{**result.__dict__, "pose": pose})


def test_pose_layers_legends_and_overlays_cut_to_the_map(qtbot, localized_window):
    window = localized_window
    session = window.session
    record = session.photos[0]
    assert session.deliver(record.path, pose_result(record, session.map), session.generation)
    window.results_panel.select_photo(record.path)
    layers = window.map_layers
    for key in ("pose", "credible", "bev"):
        assert len(layers[key].items) == 1, key
    right = session.map.bounds[2]
    surface_item = layers["pose"].items[0]
    drawn_right = surface_item.mapRectToParent(surface_item.boundingRect()).right()
    assert drawn_right <= right + 1e-6                                       # cut at the map edge
    bev_item = layers["bev"].items[0]
    assert bev_item.mapRectToParent(bev_item.boundingRect()).right() <= right + 1e-6
    marker = layers.markers[record.path]
    assert marker.heading_deg == pytest.approx(123.0) and marker.heading_sigma_deg == pytest.approx(9.0)
    assert not marker.spread_path().isEmpty()
    row = window.results.row_of(record.path)
    assert window.results.index(row, window.results.CONFIDENCE).data() == "0.71"
    radius = math.sqrt(Point(0, 0).buffer(15).area / math.pi)
    assert window.results.index(row, window.results.ERROR).data() == f"{radius:.0f} m"
    keys = [entry.key for entry in window.legend.entries]
    assert "pose" in keys and "heatmap" in keys and "score" not in keys      # the score surface is off
    pose_entry = next(e for e in window.legend.entries if e.key == "pose")
    assert pose_entry.colormap == "plasma" and float(pose_entry.high) == pytest.approx(
        float(np.max(record.result.pose.surface.values[:, :int((right - surface_item.grid.transform.c) / 4.0)])),
        rel=0.05)
    cwr = next(e for e in window.legend.entries if e.key == "cwr")
    assert [text for _, _, text in cwr.symbols][0] == "level 0 (finest)"
    layers["score"].set_visible(True)
    assert "score" in [entry.key for entry in window.legend.entries]
    assert window.legend.findChild(object, "legend-pose") is not None


def test_keyboard_zoom_and_pan(qtbot, localized_window):
    canvas = localized_window.canvas
    canvas.zoom_to_map()
    canvas.setFocus()
    left, bottom, right, top = canvas.view_bounds()
    QTest.keyClick(canvas, Qt.Key.Key_Plus)
    l2, b2, r2, t2 = canvas.view_bounds()
    assert (r2 - l2) == pytest.approx((right - left) / 1.25, rel=0.02)
    QTest.keyClick(canvas, Qt.Key.Key_Right)
    l3, _, r3, _ = canvas.view_bounds()
    assert l3 - l2 == pytest.approx(0.2 * (r2 - l2), rel=0.05)
    QTest.keyClick(canvas, Qt.Key.Key_Minus)
    assert canvas.view_bounds()[2] - canvas.view_bounds()[0] == pytest.approx(1.25 * (r3 - l3), rel=0.02)
    QTest.keyClick(canvas, Qt.Key.Key_Up)
    assert canvas.view_bounds()[1] > b2


def test_small_windows_keep_the_map_first(qtbot, localized_window):
    window = localized_window
    window.results_panel.select_photo(window.session.photos[0].path)
    window.resize(1024, 640)
    qtbot.waitUntil(lambda: window.width() <= 1030, timeout=5_000)
    qtbot.wait(100)
    assert window.compact
    assert window.tabifiedDockWidgets(window.results_dock)                  # docks share one column
    assert window.canvas.width() >= 0.55 * window.width()
    assert window.canvas.height() >= 0.6 * window.height()
    window.resize(1600, 1000)
    qtbot.waitUntil(lambda: not window.compact, timeout=5_000)
    assert window.dockWidgetArea(window.layers_dock) == Qt.DockWidgetArea.LeftDockWidgetArea


def test_file_dialogs_start_in_the_last_folder(qtbot, tmp_path):
    QSettings().remove(file_dialogs.LAST_FOLDER_KEY)
    assert file_dialogs.last_folder(str(tmp_path)) == str(tmp_path)          # nothing yet: the map's folder
    photos = tmp_path / "photos"
    photos.mkdir()
    file_dialogs.remember(str(photos / "a.jpg"))
    assert file_dialogs.last_folder(str(tmp_path)) == str(photos)
