"""File dialogs that start where the analyst last was (remembered across sessions in QSettings)."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QFileDialog, QWidget

from engine.pipeline import PHOTO_SUFFIXES
from engine.pipeline import session as vf

LAST_FOLDER_KEY = "last_folder"
FILTERS = {"map": "GeoTIFF maps (*.tif *.tiff *.vrt);;All files (*)",
           "photos": f"Photos ({' '.join('*' + s for s in PHOTO_SUFFIXES)});;All files (*)",
           "project": f"Viewfinder projects (*{vf.PROJECT_SUFFIX})",
           "model": "Viewfinder checkpoints (*.safetensors);;All files (*)",
           "geojson": "GeoJSON (*.geojson)", "html": "HTML map (*.html)", "csv": "CSV table (*.csv)"}


def last_folder(fallback: str | None = None) -> str:
    """The folder of the last file chosen; else `fallback` (the map's folder), else the working folder."""
    remembered = QSettings().value(LAST_FOLDER_KEY, "")
    if remembered and Path(remembered).is_dir():
        return str(remembered)
    return fallback if fallback and Path(fallback).is_dir() else str(Path.cwd())


def remember(path: str) -> None:
    target = Path(path)
    QSettings().setValue(LAST_FOLDER_KEY, str(target if target.is_dir() else target.parent))


class FileDialogs:
    def __init__(self, parent: QWidget, fallback_folder) -> None:
        self.parent = parent
        self.fallback_folder = fallback_folder      # callable: the current map's folder or None

    def _start(self, name: str = "") -> str:
        folder = last_folder(self.fallback_folder())
        return str(Path(folder) / name) if name else folder

    def open_file(self, title: str, kind: str) -> str:
        path, _ = QFileDialog.getOpenFileName(self.parent, title, self._start(), FILTERS[kind])
        if path:
            remember(path)
        return path

    def open_files(self, title: str, kind: str) -> list[str]:
        paths, _ = QFileDialog.getOpenFileNames(self.parent, title, self._start(), FILTERS[kind])
        if paths:
            remember(paths[0])
        return paths

    def choose_folder(self, title: str, start: str | None = None) -> str:
        folder = QFileDialog.getExistingDirectory(self.parent, title, start or self._start())
        if folder:
            remember(folder)
        return folder

    def save_file(self, title: str, kind: str, name: str) -> str:
        path, _ = QFileDialog.getSaveFileName(self.parent, title, self._start(name), FILTERS[kind])
        if path:
            remember(path)
        return path
