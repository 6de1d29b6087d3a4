"""Manual correction by dragging a marker, undo/redo, exports and project files."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

from engine.pipeline import DONE, MANUAL, map_to_lonlat, read_project
from tests.app.conftest import RESULT_TIMEOUT_MS, SCENE_PHOTOS


def drag(widget, start: QPoint, end: QPoint, steps: int = 8) -> None:
    """Press, move in steps, release: a real mouse drag through the viewport's event handlers."""
    QTest.mousePress(widget, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    for i in range(1, steps + 1):
        QTest.mouseMove(widget, start + (end - start) * (i / steps))
    QTest.mouseRelease(widget, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, end)


def drag_selected_marker(qtbot, window, dx_px: int = 60, dy_px: int = -40):
    """Drag the selected photo's marker by (dx, dy) screen pixels; returns (entry, original xy, dropped xy)."""
    entry = window.results.entries[0]
    window.results_panel.select_photo(entry.path)
    qtbot.wait(50)
    best = entry.result.best.position
    canvas = window.canvas
    start = canvas.map_to_widget(best.x, best.y).toPoint()
    end = start + QPoint(dx_px, dy_px)
    target = canvas.view.mapSceneToView(canvas.mapToScene(end))
    drag(canvas.viewport(), start, end)
    return entry, (best.x, best.y), (target.x(), target.y())


def test_dragging_a_marker_corrects_the_position_and_undo_restores_it(qtbot, localized_window):
    window = localized_window
    entry, (x0, y0), (x1, y1) = drag_selected_marker(qtbot, window)
    metres_per_px = window.canvas.metres_per_screen_px()
    result = window.results.entry(entry.path).result
    assert result.status == MANUAL and result.method == "manual"
    assert result.best.position.x == pytest.approx(x1, abs=2 * metres_per_px)
    assert result.best.position.y == pytest.approx(y1, abs=2 * metres_per_px)
    lon, lat = map_to_lonlat(window.map_crs, result.best.position.x, result.best.position.y)
    assert (result.best.position.lon, result.best.position.lat) == pytest.approx((float(lon), float(lat)))
    marker = window.map_layers.markers[entry.path]
    assert marker.map_position() == pytest.approx((result.best.position.x, result.best.position.y))
    assert window.results.index(0, window.results.STATUS).data() == "manual"
    assert window.windowTitle().endswith("*")

    window.undo_action.trigger()
    restored = window.results.entry(entry.path).result
    assert restored.status == DONE and restored.manual_position is None
    assert (restored.best.position.x, restored.best.position.y) == (x0, y0)
    assert window.map_layers.markers[entry.path].map_position() == pytest.approx((x0, y0))

    window.redo_action.trigger()
    redone = window.results.entry(entry.path).result
    assert redone.status == MANUAL and redone.best.position.x == pytest.approx(x1, abs=2 * metres_per_px)


def test_dragging_the_map_elsewhere_pans_without_moving_markers(qtbot, localized_window):
    window = localized_window
    entry = window.results.entries[0]
    window.results_panel.select_photo(entry.path)
    canvas = window.canvas
    marker_xy = canvas.map_to_widget(entry.result.best.position.x, entry.result.best.position.y).toPoint()
    start = QPoint(30, 30) if (marker_xy - QPoint(30, 30)).manhattanLength() > 80 else QPoint(60, 200)
    before = canvas.view_bounds()
    drag(canvas.viewport(), start, start + QPoint(80, 50))
    after = canvas.view_bounds()
    assert after[0] < before[0] and after[1] > before[1]            # content followed the mouse: view moved W, N
    assert window.results.entry(entry.path).result.status == DONE
    assert not window.session.can_undo


def export(qtbot, window, kind: str, path) -> None:
    with qtbot.waitSignal(window.export_finished, timeout=60_000) as written:
        assert window.export(kind, str(path))
    assert written.args == [str(path)]


def test_exported_geojson_reads_back_with_the_corrected_position(qtbot, localized_window, tmp_path):
    window = localized_window
    entry, _, _ = drag_selected_marker(qtbot, window)
    corrected = window.results.entry(entry.path).result.best.position
    path = tmp_path / "results.geojson"
    export(qtbot, window, "geojson", path)
    features = json.loads(path.read_text())["features"]
    points = [f for f in features if f["geometry"]["type"] == "Point" and f["properties"]["photo"].endswith(
        entry.name) and f["properties"].get("method") == "manual"]
    assert len(points) == 1
    lon, lat = points[0]["geometry"]["coordinates"]
    assert (lon, lat) == pytest.approx((corrected.lon, corrected.lat), abs=2e-7)   # 7 decimals (RFC 7946)
    others = {f["properties"]["photo"] for f in features if f["properties"].get("method") == "cafr"}
    assert len(others) >= SCENE_PHOTOS - 1

    csv_path = tmp_path / "results.csv"
    export(qtbot, window, "csv", csv_path)
    rows = list(csv.DictReader(csv_path.open()))
    manual = [r for r in rows if r["photo"].endswith(entry.name) and r["method"] == "manual"]
    assert len(manual) == 1 and float(manual[0]["lon"]) == pytest.approx(corrected.lon, abs=1e-6)

    html = tmp_path / "results.html"
    export(qtbot, window, "html", html)
    assert entry.name in html.read_text()


def test_project_round_trip_keeps_photos_results_corrections_layers_and_view(qtbot, localized_window, make_window,
                                                                               tiny_model_path, tmp_path):
    window = localized_window
    entry, _, _ = drag_selected_marker(qtbot, window)
    corrected = window.results.entry(entry.path).result.best.position
    window.map_layers["heatmap"].set_opacity(0.4)
    window.map_layers["cwr"].set_visible(False)
    window.map_layers.stack.move("truth", -2)
    path = tmp_path / "session"
    assert window.save_project_to(str(path))
    saved = tmp_path / "session.vfproj"
    assert saved.is_file() and not window.windowTitle().endswith("*")
    assert read_project(saved).results[entry.path].manual_position == corrected

    reopened = make_window(tiny_model_path)
    with qtbot.waitSignal(reopened.map_indexed, timeout=RESULT_TIMEOUT_MS):
        assert reopened.open_project(str(saved))
    assert [e.path for e in reopened.results.entries] == [e.path for e in window.results.entries]
    again = reopened.results.entry(entry.path).result
    assert again.status == MANUAL and again.manual_position == corrected
    for old, new in zip(window.results.entries, reopened.results.entries):
        assert new.result.best.position == old.result.best.position       # not localised again
    assert reopened.map_layers["heatmap"].opacity == pytest.approx(0.4)
    assert not reopened.map_layers["cwr"].visible
    order = [layer.key for layer in window.map_layers.stack.layers]
    assert [layer.key for layer in reopened.map_layers.stack.layers] == order
    assert reopened.selected_photo == entry.path
    assert np.allclose(reopened.canvas.view_bounds(), window.canvas.view_bounds(), rtol=0, atol=2.0)
    qtbot.waitUntil(lambda: reopened.results.entries[-1].path in reopened.results.thumbnails, timeout=10_000)
