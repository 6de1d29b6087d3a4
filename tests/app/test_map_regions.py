"""A map too large for one ground frame, opened in the app: the app offers to cut it into regions, writes them
in the engine process, lists them and opens the chosen one as any map (the photos dropped with it follow)."""
from __future__ import annotations

import os
from datetime import datetime

import numpy as np
import pytest
import rasterio
from affine import Affine
from PySide6.QtWidgets import QFileDialog

from app.region_chooser import CUT_TEXT
from app.regions import busiest_region, photo_lonlats, photos_in
from engine.geo.exif import build_exif, write_jpeg
from engine.pipeline import DONE, LocalizationResult, MapRegion, Position, Session
from tests.app.conftest import RESULT_TIMEOUT_MS, drop_paths, scene_photos, wait_for_all_results

STEP_DEG = 0.1333                       # 15 km pixels: a coarse mosaic, so it is written in milliseconds
REGIONS = 38                            # what a 40 x 20 degree map at 30-50 N is cut into
ANSWER_MS = RESULT_TIMEOUT_MS            # the engine process may still be starting on 2 busy cores


def continent(path, west=0.0, north=50.0, width=300, height=150):
    """A 40 x 20 degree EPSG:4326 mosaic (0-40 E, 30-50 N): too large for any single projection."""
    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=3, dtype="uint8",
                       crs="EPSG:4326", transform=Affine(STEP_DEG, 0, west, 0, -STEP_DEG, north)) as dst:
        dst.write(np.full((3, height, width), 40, np.uint8))
    return path


def a_photo(path, lonlat: tuple[float, float] | None = None):
    """A small photo, with EXIF GPS when `lonlat` is given."""
    pixels = np.full((120, 160, 3), (90, 120, 60), np.uint8)
    exif = None if lonlat is None else build_exif(lon=lonlat[0], lat=lonlat[1], heading_deg=90.0, fov_deg=60.0,
                                                  taken=datetime(2026, 5, 1, 12, 0))
    write_jpeg(path, pixels, exif)
    return path


def vrts(folder) -> list[str]:
    return sorted(name for name in os.listdir(folder) if name.endswith(".vrt"))


def click_button(box, text: str) -> None:
    next(b for b in box.buttons() if text in b.text().replace("&", "")).click()


def wait_for_question(qtbot, window):
    qtbot.waitUntil(lambda: window.question_box is not None and window.question_box.isVisible(), timeout=ANSWER_MS)
    return window.question_box


def wait_for_chooser(qtbot, window):
    qtbot.waitUntil(lambda: window.region_chooser is not None and window.region_chooser.isVisible(),
                    timeout=ANSWER_MS)
    return window.region_chooser


def known_result(session: Session, path: str, lon: float, lat: float) -> None:
    """A photo localised on an earlier map: its result carries the EXIF GPS prior, as the engine's do."""
    session.add_photos([path])
    session.deliver(path, LocalizationResult(photo=path, status=DONE, priors={"position": {
        "lon": lon, "lat": lat, "radius_m": 45.0, "sigma_m": 15.0, "source": "exif"}}), session.generation)


def test_a_continent_is_cut_and_the_chosen_region_opens_with_its_photos(qtbot, make_window, tiny_model_path,
                                                                        tmp_path):
    source = continent(tmp_path / "europe.tif")
    dropped_photo = a_photo(tmp_path / "dropped.jpg", (30.2, 35.1))         # its EXIF GPS is read when cutting
    dropped_too = a_photo(tmp_path / "dropped-too.jpg", (30.4, 35.3))
    window = make_window(tiny_model_path)
    known_result(window.session, str(a_photo(tmp_path / "athens.jpg")), 18.0, 41.0)

    assert drop_paths(window, [source, dropped_photo, dropped_too])
    question = wait_for_question(qtbot, window)
    assert question.text() == (f"europe.tif is too large for one ground frame ({REGIONS} regions of about "
                               "500 km). Cut it into regions and open one?")
    assert vrts(tmp_path) == []                     # nothing written before the analyst says so
    click_button(question, CUT_TEXT)

    chooser = wait_for_chooser(qtbot, window)
    assert vrts(tmp_path) == sorted(f"europe-{region.name}.vrt" for region, _ in chooser.regions)
    assert len(chooser.regions) == REGIONS and chooser.table.rowCount() == REGIONS
    assert chooser.table.item(0, 0).text() == "r0c0"
    assert chooser.table.item(0, 1).text() == "0.00° E" and chooser.table.item(0, 4).text() == "50.00° N"
    # the region holding most photos (the two dropped ones, not the session's one) is preselected
    region, chosen = chooser.regions[chooser.table.selectionModel().selectedRows()[0].row()]
    west, south, east, north = region.lonlat_bounds
    assert west <= 30.3 <= east and south <= 35.2 <= north
    assert chosen == window.region_chooser.chosen and chooser.table.horizontalHeaderItem(5).text() == "Photos"

    with qtbot.waitSignal(window.engine.index_started, timeout=RESULT_TIMEOUT_MS) as started:
        chooser.open_button.click()
    assert started.args[0] == chosen and window.session.map.path == chosen
    assert window.session.has(str(dropped_photo.resolve()))        # the photo dropped with the map followed it
    assert window.windowTitle().startswith(f"Viewfinder — {os.path.basename(chosen)}")


@pytest.mark.slow     # about 5 s: indexes the scene's map first
def test_cancel_at_the_question_changes_nothing_and_writes_nothing(qtbot, make_window, tiny_model_path, scene,
                                                                   tmp_path):
    window = make_window(tiny_model_path)
    with qtbot.waitSignal(window.map_indexed, timeout=RESULT_TIMEOUT_MS):
        assert drop_paths(window, [scene / "map.tif"])
    photos = [str(p) for p in scene_photos(scene)[:2]]
    window.add_photos(photos[:1])
    wait_for_all_results(qtbot, window, 1)          # so nothing else is still reporting when we look
    qtbot.waitUntil(lambda: window.message_label.text() == "1 photos localised", timeout=ANSWER_MS)  # the idle report
    before = (window.session.map, window.session.generation, [r.path for r in window.session.photos])
    source = continent(tmp_path / "europe.tif")

    assert drop_paths(window, [source, photos[1]])
    click_button(wait_for_question(qtbot, window), "Cancel")
    qtbot.wait(300)
    assert (window.session.map, window.session.generation, [r.path for r in window.session.photos]) == before
    assert window.indexed and vrts(tmp_path) == [] and window.region_chooser is None
    assert window.message_label.text() == "europe.tif not opened"
    assert not window.progress_widget.isVisible()


def test_a_map_broken_before_cutting_shows_the_engine_message_naming_it(qtbot, make_window, tiny_model_path,
                                                                        tmp_path):
    source = continent(tmp_path / "europe.tif")
    window = make_window(tiny_model_path)
    assert drop_paths(window, [source])
    question = wait_for_question(qtbot, window)
    source.write_bytes(b"not a raster any more")
    with qtbot.waitSignal(window.controller.warning, timeout=ANSWER_MS) as warned:
        click_button(question, CUT_TEXT)
    title, text = warned.args
    assert title == "Regions not written" and text.startswith(f"{source}: not a readable raster")
    assert "\n" not in text and "Traceback" not in text
    assert vrts(tmp_path) == [] and window.session.map is None and window.region_chooser is None


def test_an_unwritable_map_folder_asks_for_another_and_writes_there(qtbot, make_window, tiny_model_path,
                                                                    tmp_path, monkeypatch):
    shelf, elsewhere = tmp_path / "read-only", tmp_path / "regions"
    shelf.mkdir()
    elsewhere.mkdir()
    source = continent(shelf / "europe.tif")
    shelf.chmod(0o555)
    if os.access(shelf, os.W_OK):
        shelf.chmod(0o755)
        pytest.skip("this user writes into read-only folders (root): no folder is unwritable")
    asked = []

    def choose_elsewhere(parent, title, start):      # the analyst picks a folder in the (native) dialog
        asked.append(title)
        return str(elsewhere)

    monkeypatch.setattr(QFileDialog, "getExistingDirectory", choose_elsewhere)
    window = make_window(tiny_model_path)
    try:
        assert drop_paths(window, [source])
        click_button(wait_for_question(qtbot, window), CUT_TEXT)
        chooser = wait_for_chooser(qtbot, window)
    finally:
        shelf.chmod(0o755)
    assert asked == [f"{shelf} is not writable: choose a folder for the regions of europe.tif"]
    assert vrts(shelf) == [] and len(vrts(elsewhere)) == REGIONS
    with qtbot.waitSignal(window.engine.index_started, timeout=RESULT_TIMEOUT_MS):
        chooser.open_button.click()         # the VRTs elsewhere still find their source
    assert window.session.map.path == str(elsewhere / "europe-r0c0.vrt")


def test_the_busiest_region_is_the_one_holding_most_known_photos(tmp_path):
    west, east = MapRegion("r0c0", (0.0, 40.0, 10.0, 50.0)), MapRegion("r0c1", (9.9, 40.0, 20.0, 50.0))
    session = Session()
    for name, lon in (("a", 15.0), ("b", 16.0), ("c", 5.0)):
        known_result(session, str(tmp_path / f"{name}.jpg"), lon, 45.0)
    session.add_photos([str(tmp_path / "waiting.jpg")])         # not localised: no position known
    record = session.record(str(tmp_path / "c.jpg"))
    record.result = record.result.corrected(Position(0.0, 0.0, 19.0, 44.0))   # the analyst's own placement wins
    points, unplaced = photo_lonlats(session)
    assert sorted(points) == [(15.0, 45.0), (16.0, 45.0), (19.0, 44.0)]
    assert unplaced == [str(tmp_path / "waiting.jpg")]          # the engine process reads its EXIF
    counts = [photos_in(west, points), photos_in(east, points)]
    assert counts == [0, 3] and busiest_region(counts) == 1
    assert busiest_region([0, 0]) == 0 and busiest_region([]) == 0
