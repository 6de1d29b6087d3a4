"""`viewfinder-gui`: the desktop app. `viewfinder-gui --demo` opens the bundled demo scene."""
from __future__ import annotations

import argparse
import multiprocessing
import sys
from pathlib import Path

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

RESOURCES = Path(__file__).resolve().parents[1] / "resources"
DEMO_FOLDER = RESOURCES / "demo"
ICON_PATH = Path(__file__).resolve().parent / "resources" / "viewfinder.svg"


def demo_paths(folder: Path = DEMO_FOLDER) -> list[str]:
    """The demo scene: its map and its photos folder (the main window expands folders)."""
    scene_map = folder / "map.tif"
    if not scene_map.is_file():
        raise FileNotFoundError(f"{scene_map}: the bundled demo scene is missing "
                                "(reinstall, or make one with `viewfinder demo --out DIR` and open DIR)")
    photos = folder / "photos"
    return [str(scene_map)] + ([str(photos)] if photos.is_dir() else [])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="viewfinder-gui", description=__doc__)
    parser.add_argument("paths", nargs="*", metavar="MAP_OR_PHOTO",
                        help="a GeoTIFF map, photos, folders of photos or a .vfproj project")
    parser.add_argument("--demo", action="store_true", help="open the bundled demo scene")
    parser.add_argument("--model", help="model checkpoint (.safetensors); default: the shipped model")
    parser.add_argument("--device", help="torch device, e.g. cpu or cuda (default: CUDA when present)")
    return parser.parse_args(argv)


def create_application(argv: list[str]) -> QApplication:
    app = QApplication.instance() or QApplication(argv)
    app.setStyle("Fusion")                 # the same look on every platform (and in screenshots)
    app.setApplicationName("Viewfinder")
    app.setOrganizationName("Viewfinder")
    app.setDesktopFileName("viewfinder")
    if ICON_PATH.is_file():
        app.setWindowIcon(QIcon(str(ICON_PATH)))
    return app


def main(argv: list[str] | None = None) -> int:
    multiprocessing.freeze_support()      # training runs in a spawned process, also in a frozen app
    args = parse_args(argv)
    app = create_application(sys.argv[:1])
    from app.main_window import MainWindow  # after QApplication: pyqtgraph reads the app's settings

    paths = list(args.paths)
    if args.demo:
        try:
            paths = demo_paths() + paths
        except FileNotFoundError as exc:
            print(f"viewfinder-gui: {exc}", file=sys.stderr)
            return 2
    window = MainWindow(model_source=args.model, device=args.device)
    window.show()
    if paths:
        window.open_paths(paths)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
