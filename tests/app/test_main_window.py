"""The main window end to end on a small scene: drops, indexing, results, layers."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt

from app.main_window import classify_paths
from engine.pipeline import DONE, FAILED, MapRaster, Position
from tests.app.conftest import RESULT_TIMEOUT_MS, SCENE_PHOTOS, drop_paths, scene_photos, wait_for_all_results


def test_dropping_a_geotiff_shows_and_indexes_it(qtbot, make_window, scene, tiny_model_path, tmp_path,
                                                 monkeypatch):
    monkeypatch.setenv("VIEWFINDER_CACHE", str(tmp_path / "cache"))     # nothing indexed before
    window = make_window(tiny_model_path)
    with qtbot.waitSignal(window.map_indexed, timeout=RESULT_TIMEOUT_MS) as indexed:
        assert drop_paths(window, [scene / "map.tif"])
        # the map is on screen before indexing finishes: its header read by the engine worker (never the
        # GUI thread), its overview by the reader thread
        qtbot.waitUntil(lambda: window.canvas.map_bounds is not None, timeout=10_000)
        assert not window.indexed
        with MapRaster(scene / "map.tif") as raster:
            assert window.canvas.map_bounds == pytest.approx(raster.bounds)
    summary = indexed.args[0]
    assert summary.map_path == str((scene / "map.tif").resolve())
    assert summary.tiles > 10 and not summary.from_cache
    assert len(summary.footprints) == summary.tiles
    assert window.indexed
    assert f"{summary.tiles} tiles indexed" in window.message_label.text()
    qtbot.waitUntil(lambda: window.canvas.overview_item.image is not None, timeout=10_000)
    assert window.canvas.overview_item.image.shape[:2] == (480, 480)   # 240 m at 0.5 m/px: the whole map

    # the same map again (another window, same model) opens from the gallery cache
    again = make_window(tiny_model_path)
    with qtbot.waitSignal(again.map_indexed, timeout=RESULT_TIMEOUT_MS) as cached:
        again.open_paths([str(scene / "map.tif")])
    assert cached.args[0].from_cache and cached.args[0].tiles == summary.tiles


def test_photos_dropped_before_the_map_wait_for_it(qtbot, make_window, scene, tiny_model_path):
    window = make_window(tiny_model_path)
    assert drop_paths(window, scene_photos(scene))
    assert [e.status for e in window.results.entries] == ["waiting for map"] * SCENE_PHOTOS
    assert drop_paths(window, [scene / "map.tif"])
    wait_for_all_results(qtbot, window, SCENE_PHOTOS)
    assert {e.result.status for e in window.results.entries} == {DONE}


def test_bad_photo_gets_a_failed_row_with_its_reason_and_the_others_succeed(qtbot, localized_window, tmp_path):
    window = localized_window
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")
    assert drop_paths(window, [broken])
    wait_for_all_results(qtbot, window, SCENE_PHOTOS + 1)
    entry = window.results.entry(str(broken.resolve()))
    assert entry.result.status == FAILED
    assert "broken.jpg" in entry.result.error
    row = window.results.row_of(entry.path)
    status_text = window.results.index(row, window.results.STATUS).data()
    assert status_text.startswith("failed: ") and "broken.jpg" in status_text
    others = [e for e in window.results.entries if e.path != entry.path]
    assert all(e.result.status == DONE and e.result.best is not None for e in others)


def test_attention_centres_off_the_map_are_not_drawn(localized_window):
    window = localized_window
    entry = window.results.entries[0]
    candidate = entry.result.candidates[0]
    left, bottom, right, top = window.map_layers.map_bounds
    finest = candidate.cwr_points[0]
    # an edge tile reaches past the map: its coarse attention centre can land there
    candidate.cwr_points = [finest, Position(x=right + 25.0, y=finest.y, lon=finest.lon, lat=finest.lat)]
    window.map_layers.draw_selection(window.session.record(entry.path), 0)
    drawn = [tuple(item.getData()[i][0] for i in (0, 1)) for item in window.map_layers["cwr"].items]
    assert drawn == [(finest.x, finest.y)]
    cwr_legend = next(e for e in window.legend.entries if e.key == "cwr")
    assert len(cwr_legend.symbols) == 2           # both levels still explained


def test_results_table_lists_positions_and_selection_draws_the_explanation(qtbot, localized_window):
    window = localized_window
    model = window.results
    for row, entry in enumerate(model.entries):
        best = entry.result.best
        assert model.index(row, model.LON).data() == f"{best.position.lon:.6f}"
        assert model.index(row, model.LAT).data() == f"{best.position.lat:.6f}"
        assert model.index(row, model.SCORE).data() == f"{best.score:.3f}"
        assert not model.thumbnails[entry.path].isNull()
    second = model.entries[1]
    window.results_panel.select_photo(second.path)
    assert window.selected_photo == second.path
    candidates = second.result.candidates
    assert window.results_panel.candidates.rowCount() == len(candidates)
    layers = window.map_layers
    assert len(layers["footprints"].items) >= len(candidates)          # outlines (+ rank labels)
    left, bottom, right, top = window.map_layers.map_bounds
    on_map = [p for p in candidates[0].cwr_points if left <= p.x <= right and bottom <= p.y <= top]
    assert len(layers["heatmap"].items) == 1 and len(layers["cwr"].items) == len(on_map) >= 1
    heatmap = layers["heatmap"].items[0]
    assert heatmap.grid is candidates[0].attention[0]
    # the view zooms to the photo's best position
    x, y = second.result.best.position.x, second.result.best.position.y
    left, bottom, right, top = window.canvas.view_bounds()
    assert left < x < right and bottom < y < top
    # choosing another candidate switches the overlays to it
    window.results_panel.select_candidate(2)
    assert window.candidate_index == 2
    assert layers["heatmap"].items[0].grid is candidates[2].attention[0]
    # choosing a coarser attention level redraws the heatmap from that level
    window.level_combo.setCurrentIndex(len(candidates[2].attention) - 1)
    assert layers["heatmap"].items[0].grid is candidates[2].attention[-1]
    # the preview shows the photo and, once read, the candidate's tile
    qtbot.waitUntil(lambda: window.results_panel.tile_view.image() is not None, timeout=10_000)
    assert window.results_panel.photo_view.image() is not None


def test_toggling_a_layer_hides_its_items(qtbot, localized_window):
    window = localized_window
    window.results_panel.select_photo(window.results.entries[0].path)
    panel, layers = window.layers_panel, window.map_layers
    for key in ("cameras", "footprints", "heatmap", "satellite"):
        layer = layers[key]
        assert layer.items and all(item.isVisible() for item in layer.items), key
        row = [layer.key for layer in layers.stack.layers].index(key)
        check = panel.list.item(row)
        check.setCheckState(Qt.CheckState.Unchecked)
        assert not layer.visible and not any(item.isVisible() for item in layer.items), key
        check.setCheckState(Qt.CheckState.Checked)
        assert all(item.isVisible() for item in layer.items), key
    # hiding the heatmap takes its colour ramp out of the legend
    heatmap_row = [layer.key for layer in layers.stack.layers].index("heatmap")
    assert "heatmap" in [entry.key for entry in window.legend.entries]
    panel.list.item(heatmap_row).setCheckState(Qt.CheckState.Unchecked)
    assert "heatmap" not in [entry.key for entry in window.legend.entries]
    # items drawn later into a hidden layer start hidden
    window.results_panel.select_photo(window.results.entries[1].path)
    assert layers["heatmap"].items and not any(item.isVisible() for item in layers["heatmap"].items)


def test_opacity_and_order_changes_reach_the_items(qtbot, localized_window):
    window = localized_window
    window.results_panel.select_photo(window.results.entries[0].path)
    panel, layers = window.layers_panel, window.map_layers
    keys = [layer.key for layer in layers.stack.layers]
    panel.list.setCurrentRow(keys.index("footprints"))
    panel.opacity_slider.setValue(30)
    assert layers["footprints"].opacity == pytest.approx(0.3)
    assert all(item.opacity() == pytest.approx(0.3) for item in layers["footprints"].items)
    assert panel.opacity_value.text() == "30 %"
    # moving a layer up draws its items above the layer it passed
    above_before = layers[keys[keys.index("footprints") - 1]]
    panel.up_button.click()
    footprint_z = min(item.zValue() for item in layers["footprints"].items)
    assert footprint_z > max(item.zValue() for item in above_before.items)
    assert panel.current_layer().key == "footprints"


def test_score_surface_layer_draws_the_selected_photos_retrieval_scores(qtbot, localized_window):
    window = localized_window
    entry = window.results.entries[0]
    window.results_panel.select_photo(entry.path)
    layer = window.map_layers["score"]
    assert len(layer.items) == 1 and not layer.visible           # off by default, drawn all the same
    grid = entry.result.score_surface
    rgba = layer.items[0].image
    assert rgba.shape[:2] == grid.values.shape
    finite = np.isfinite(grid.values)
    assert (rgba[..., 3][~finite] == 0).all() and (rgba[..., 3][finite] > 0).all()
    best_cell = np.unravel_index(np.nanargmax(grid.values), grid.values.shape)
    worst_cell = np.unravel_index(np.nanargmin(grid.values), grid.values.shape)
    assert rgba[best_cell][:3].astype(int).sum() > rgba[worst_cell][:3].astype(int).sum()  # viridis: bright = high


def test_prior_and_truth_layers_come_from_exif_and_truth_geojson(qtbot, localized_window):
    window = localized_window
    entry = window.results.entries[0]
    window.results_panel.select_photo(entry.path)
    prior = entry.result.priors["position"]
    circles = [item for item in window.map_layers["prior"].items if hasattr(item, "radius")]
    assert len(circles) == 1 and circles[0].radius == pytest.approx(prior["radius_m"])
    truth = window.truths[Path(entry.path).stem]
    # a GPS prior from the scene's EXIF is centred on the true position
    assert np.hypot(circles[0].centre[0] - truth.x, circles[0].centre[1] - truth.y) < 1.0
    truth_items = window.map_layers["truth"].items
    assert len(truth_items) == SCENE_PHOTOS + 1                  # every camera + the selected overlap
    overlap = [item for item in truth_items if hasattr(item, "geometry")]
    assert len(overlap) == 1 and overlap[0].geometry.equals_exact(truth.overlap, 1e-6)


def test_classify_paths_knows_maps_photos_projects_and_scene_folders(scene, tmp_path):
    project = tmp_path / "a.vfproj"
    project.write_text("{}")
    maps, photos, projects = classify_paths([str(scene), str(project), str(scene / "map.tif")])
    assert maps == [str(scene / "map.tif")] * 2
    assert sorted(photos) == [str(p) for p in scene_photos(scene)]
    assert projects == [str(project)]


def test_indexing_can_be_cancelled_from_the_status_bar(qtbot, make_window, scene, tiny_model_path, tmp_path,
                                                        monkeypatch):
    monkeypatch.setenv("VIEWFINDER_CACHE", str(tmp_path / "cache"))
    window = make_window(tiny_model_path)
    assert drop_paths(window, scene_photos(scene)[:1])
    with qtbot.waitSignal(window.engine.index_cancelled, timeout=RESULT_TIMEOUT_MS) as cancelled:
        assert drop_paths(window, [scene / "map.tif"])
        assert window.progress_widget.isVisible() and window.cancel_button.isVisible()
        window.cancel_button.click()
    assert cancelled.args == [str((scene / "map.tif").resolve())]
    assert not window.indexed and "cancelled" in window.message_label.text()
    assert not window.progress_widget.isVisible()
    assert window.results.entries[0].status == "waiting for map"
    # opening the map again indexes it and localises the waiting photo
    with qtbot.waitSignal(window.map_indexed, timeout=RESULT_TIMEOUT_MS):
        window.open_map(str(scene / "map.tif"))
    wait_for_all_results(qtbot, window, 1)
