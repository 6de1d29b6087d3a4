"""`python -m app.screenshots [FOLDER]`: render the app on the bundled demo scene into PNGs (docs/images).

Works with a real display, Xvfb or Qt's offscreen platform: windows are captured with QWidget.grab().
Writes app-main.png (1920 x 1200: map with pose probability, credible region, heatmap, cameras, legend,
attribute table), app-small.png (the same at 1024 x 640), app-results.png (the results panel alone),
app-identify.png (identify of the selected photo), app-score-surface.png and app-training.png (the training
dialog after a short run).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QEventLoop
from PySide6.QtWidgets import QApplication

from app.main import DEMO_FOLDER, create_application, demo_paths

WINDOW_SIZE = (1920, 1200)
SMALL_SIZE = (1024, 640)
TRAINING_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "tiny-cpu.toml"


def wait_until(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"screenshots: gave up waiting for {what} after {timeout_s:.0f} s")
        QApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        time.sleep(0.02)


def settle(seconds: float = 0.6) -> None:
    """Let debounced map reads and repaints finish."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        time.sleep(0.02)


def best_photo(window) -> str:
    """The photo whose best position lies closest to its truth (the clearest explanation to show)."""
    def error(entry) -> float:
        truth = window.truths.get(Path(entry.path).stem)
        best = entry.result.best if entry.result is not None else None
        if truth is None or best is None:
            return float("inf")
        return ((best.position.x - truth.x) ** 2 + (best.position.y - truth.y) ** 2) ** 0.5
    done = [e for e in window.session.photos if e.result is not None and e.result.status == "done"]
    return min(done, key=error).path


def shoot_main(window, out: Path) -> None:
    window.resize(*WINDOW_SIZE)
    window.open_paths(demo_paths())
    wait_until(lambda: window.indexed, 900, "the demo map to be indexed")
    count = len(window.results.entries)
    wait_until(lambda: all(e.result is not None for e in window.results.entries), 900,
               f"{count} demo photos to be localised")
    window.results_panel.select_photo(best_photo(window))
    # the trained model's finest attention is a few 8 m cells; level 1 shows where it spreads
    window.level_combo.setCurrentIndex(min(1, window.level_combo.count() - 1))
    window.map_layers["score"].set_visible(False)
    settle(1.5)
    wait_until(lambda: window.results_panel.tile_view.image() is not None, 30, "the tile preview")
    settle(0.5)
    window.grab().save(str(out / "app-main.png"))
    window.results_dock.grab().save(str(out / "app-results.png"))
    window.identify_dock.show()
    window.identify_dock.raise_()
    settle(0.5)
    window.identify_dock.grab().save(str(out / "app-identify.png"))
    window.results_dock.raise_()
    window.resize(*SMALL_SIZE)
    settle(1.5)
    window.zoom_to_selected()
    settle(1.0)
    window.grab().save(str(out / "app-small.png"))
    window.resize(*WINDOW_SIZE)
    settle(1.0)
    # the same view with the retrieval score surface over the whole map
    window.map_layers["score"].set_visible(True)
    window.map_layers["heatmap"].set_visible(False)
    window.canvas.zoom_to_map()
    settle(1.5)
    window.canvas.grab().save(str(out / "app-score-surface.png"))
    window.map_layers["score"].set_visible(False)
    window.map_layers["heatmap"].set_visible(True)


def shoot_training(window, out: Path) -> None:
    window.show_training_dialog()
    dialog = window.training_dialog
    dialog.resize(1180, 760)
    dialog.set_config_path(str(TRAINING_CONFIG))
    dialog.data_synthetic.setChecked(True)
    dialog.worlds_spin.setValue(1)
    dialog.photos_spin.setValue(24)
    dialog.size_spin.setValue(300.0)
    dialog.epochs_spin.setValue(3)
    dialog.batch_spin.setValue(8)
    with tempfile.TemporaryDirectory(prefix="viewfinder-screenshot-run-") as run:
        dialog.out_edit.setText(str(Path(run) / "run"))
        if not dialog.start():
            raise RuntimeError(f"screenshots: training did not start: {dialog.status_label.text()}")
        wait_until(lambda: not dialog.running, 1200, "the short training run")
        settle(0.8)
        dialog.grab().save(str(out / "app-training.png"))
    dialog.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.screenshots", description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default="docs/images", type=Path)
    parser.add_argument("--no-training", action="store_true", help="keep the existing app-training.png")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if not (DEMO_FOLDER / "map.tif").is_file():
        print(f"screenshots: no demo scene at {DEMO_FOLDER}", file=sys.stderr)
        return 2
    app = create_application(sys.argv[:1])
    from app.main_window import MainWindow
    window = MainWindow()
    window.ask_before_closing = False
    window.show()
    try:
        shoot_main(window, args.out)
        if not args.no_training:
            shoot_training(window, args.out)
    finally:
        window.shutdown()
        window.close()
    app.processEvents()
    for name in ("app-main.png", "app-small.png", "app-results.png", "app-identify.png", "app-score-surface.png",
                 "app-training.png"):
        print(args.out / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
