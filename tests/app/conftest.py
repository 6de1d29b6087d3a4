"""App tests run headless (offscreen Qt) on a small synthetic scene with a tiny random-init model, so they
exercise the real engine quickly; the demo-scene accuracy test uses the shipped model."""
from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QDragEnterEvent, QDropEvent  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

import app  # noqa: E402,F401  (before torch: the app's OpenMP wait policy must be set when torch loads)
from engine.model import CrossViewNet, ModelConfig  # noqa: E402
from engine.synth.export import export_scene  # noqa: E402
from engine.synth.generate import generate_world  # noqa: E402
from engine.synth.photos import PhotoSpec  # noqa: E402

SCENE_PHOTOS = 4
RESULT_TIMEOUT_MS = 120_000


def tiny_model_config() -> ModelConfig:
    """The default architecture at reduced widths and inputs: fast on CPU, same outputs (attention, CWR, fine)."""
    return ModelConfig(backbone_weights=None, ground_hw=(96, 160), satellite_hw=(128, 128), pyramid_dim=32,
                       descriptor_head_channels=64, descriptor_dim=48, fine_dim=32, fine_heads=2, fine_grid=4)


@pytest.fixture(scope="session", autouse=True)
def _isolated_gallery_cache(tmp_path_factory):
    """Each test session indexes into its own cache, so 'indexes the map' really embeds tiles."""
    previous = os.environ.get("VIEWFINDER_CACHE")
    os.environ["VIEWFINDER_CACHE"] = str(tmp_path_factory.mktemp("gallery-cache"))
    yield
    if previous is None:
        os.environ.pop("VIEWFINDER_CACHE", None)
    else:
        os.environ["VIEWFINDER_CACHE"] = previous


@pytest.fixture(scope="session", autouse=True)
def _isolated_settings(tmp_path_factory):
    """QSettings (last folder, window geometry) go to a temporary folder, never the user's own settings."""
    from PySide6.QtCore import QSettings
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path_factory.mktemp("settings")))


@pytest.fixture(scope="session")
def scene(tmp_path_factory) -> Path:
    """A 240 m synthetic scene: map.tif, photos/*.jpg with EXIF, truth.geojson."""
    world = generate_world("urban", 11, size_m=240.0, resolution_m=0.5)
    folder = tmp_path_factory.mktemp("scene") / "scene"
    export_scene(world, PhotoSpec(SCENE_PHOTOS, (50.0, 90.0), (320, 240)), 11, folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory) -> Path:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = CrossViewNet(tiny_model_config())
    return model.save(tmp_path_factory.mktemp("models") / "tiny.safetensors")


def scene_photos(scene: Path) -> list[Path]:
    return sorted((scene / "photos").glob("*.jpg"))


@pytest.fixture
def make_window(qtbot):
    """MainWindow factory; every window is shut down (worker threads joined) after the test."""
    from app.main_window import MainWindow
    windows = []

    def make(model_source=None, **kwargs):
        window = MainWindow(model_source=str(model_source) if model_source else None, **kwargs)
        window.ask_before_closing = False
        qtbot.addWidget(window)
        window.resize(1280, 800)
        window.show()
        qtbot.waitExposed(window)
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.shutdown()


def drop_paths(widget, paths) -> bool:
    """Drag-enter then drop local files on `widget`, as a file manager would. Returns whether it was accepted."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    centre = QPointF(widget.width() / 2, widget.height() / 2)
    enter = QDragEnterEvent(centre, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, enter)
    if not enter.isAccepted():
        return False
    drop = QDropEvent(centre, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, drop)
    return drop.isAccepted()


def wait_for_all_results(qtbot, window, count: int, timeout: int = RESULT_TIMEOUT_MS) -> None:
    def finished() -> None:
        entries = window.results.entries
        assert len(entries) == count
        assert all(entry.result is not None for entry in entries), [e.status for e in entries]
    qtbot.waitUntil(finished, timeout=timeout)


@pytest.fixture
def localized_window(qtbot, make_window, scene, tiny_model_path):
    """A window with the scene's map indexed and its photos localised by the tiny model."""
    window = make_window(tiny_model_path)
    with qtbot.waitSignal(window.map_indexed, timeout=RESULT_TIMEOUT_MS):
        assert drop_paths(window, [scene / "map.tif"])
    assert drop_paths(window, scene_photos(scene))
    wait_for_all_results(qtbot, window, SCENE_PHOTOS)
    return window
