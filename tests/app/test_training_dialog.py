"""The training dialog runs real (tiny) training in its worker thread: completion, curves, cancel, resume."""
from __future__ import annotations

import math
import time
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from app.training_dialog import TrainingDialog, smoothed
from engine.train import LAST_MODEL

TINY_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "tiny-cpu.toml"
RUN_TIMEOUT_MS = 240_000


def tiny_run_dialog(qtbot, out: Path, epochs: int = 1, photos: int = 8, track: bool = True) -> TrainingDialog:
    """The bundled tiny CPU config on a freshly generated, very small synthetic dataset."""
    dialog = TrainingDialog()
    if track:
        qtbot.addWidget(dialog)
    dialog.set_config_path(str(TINY_CONFIG))
    dialog.data_synthetic.setChecked(True)
    dialog.worlds_spin.setValue(1)
    dialog.photos_spin.setValue(photos)
    dialog.size_spin.setValue(300.0)
    dialog.epochs_spin.setValue(epochs)
    dialog.batch_spin.setValue(4)
    dialog.device_combo.setCurrentIndex(dialog.device_combo.findData("cpu"))
    dialog.out_edit.setText(str(out))
    dialog.show()
    return dialog


def wait_for_run(qtbot, dialog: TrainingDialog, timeout: int = RUN_TIMEOUT_MS):
    """Wait until the run reports its outcome; its summary, failing with the dialog's reason when it failed."""
    qtbot.waitUntil(lambda: not dialog.running, timeout=timeout)
    assert dialog.summary is not None, dialog.status_label.text()
    return dialog.summary


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, qapp, request):
    """One tiny run to completion, shared by the tests that inspect a finished run."""
    qtbot = QtBot(request)
    out = tmp_path_factory.mktemp("training") / "run"
    dialog = tiny_run_dialog(qtbot, out, epochs=2, track=False)
    steps = []
    assert dialog.start()
    dialog.job.step.connect(lambda *args: steps.append(args))
    summary = wait_for_run(qtbot, dialog)
    yield dialog, summary, steps, out
    dialog.close()


@pytest.mark.slow     # about 15 s: a training run
def test_tiny_config_trains_to_completion_with_live_curves(finished_run):
    dialog, summary, steps, out = finished_run
    assert summary.stopped == "completed" and summary.epochs_completed == 2
    assert summary.last_checkpoint == out / LAST_MODEL and summary.last_checkpoint.is_file()
    # the loss curve holds one point per optimiser step, the R@1 curve one point per validated epoch
    x, y = dialog.loss_curve.getData()
    assert len(x) == summary.global_step == len(steps) and all(math.isfinite(v) for v in y)
    assert list(y) == [s[3]["total"] for s in steps]
    rx, ry = dialog.recall_curve.getData()
    assert list(rx) == [1, 2]
    assert list(ry) == pytest.approx([100 * record["R@1"] for record in summary.history])
    assert dialog.use_button.isEnabled() and dialog.start_button.isEnabled()
    assert "completed" in dialog.status_label.text()


def test_finished_model_becomes_the_active_model(qtbot, finished_run, make_window, scene):
    dialog, summary, _, _ = finished_run
    window = make_window()
    window.open_map(str(scene / "map.tif"))
    qtbot.waitUntil(lambda: window.indexed, timeout=RUN_TIMEOUT_MS)
    dialog.model_activated.connect(window.use_model)
    with qtbot.waitSignal(window.map_indexed, timeout=RUN_TIMEOUT_MS) as reindexed:
        dialog.use_button.click()
    expected = str(summary.best_checkpoint or summary.last_checkpoint)
    assert window.model_path == expected
    assert reindexed.args[0].model_description == f"checkpoint {expected}"
    assert window.model_label.text() == f"Model: {Path(expected).name}"
    dialog.model_activated.disconnect(window.use_model)


@pytest.mark.slow     # about 25 s: two training runs
def test_cancel_stops_a_run_within_two_seconds_and_resume_continues_it(qtbot, tmp_path):
    out = tmp_path / "run"
    dialog = tiny_run_dialog(qtbot, out, epochs=2, photos=12)
    assert dialog.start()
    qtbot.waitUntil(lambda: len(dialog.losses) >= 2 or not dialog.running, timeout=RUN_TIMEOUT_MS)
    assert dialog.running, dialog.status_label.text()
    assert not dialog.close_button.isEnabled()
    cancelled_at = time.perf_counter()
    dialog.cancel_button.click()
    summary = wait_for_run(qtbot, dialog, timeout=10_000)
    waited = time.perf_counter() - cancelled_at
    assert waited < 2.0, f"cancel took {waited:.2f} s"
    assert summary.stopped == "cancelled" and summary.epochs_completed < 2
    assert (out / LAST_MODEL).is_file()
    # the bar stays where the run stopped and says cancelled, never a full "100 %"
    assert dialog.progress.format().startswith("cancelled at step")
    assert dialog.progress.value() < dialog.progress.maximum()
    steps_before = summary.global_step

    dialog.resume_check.setChecked(True)
    assert dialog.start()
    final = wait_for_run(qtbot, dialog)
    assert final.stopped == "completed" and final.epochs_completed == 2
    assert final.global_step > steps_before
    assert len(dialog.losses) == final.global_step      # the curve continues from where it stopped
    dialog.close()


def test_runs_and_generated_data_go_only_under_the_chosen_output_folder(qtbot, tmp_path):
    dialog = TrainingDialog()
    qtbot.addWidget(dialog)
    dialog.set_config_path(str(TINY_CONFIG))
    install = Path(__file__).resolve().parents[2]
    default = Path(dialog.out_edit.text())
    assert default.name == "tiny-cpu" and default.parent.name == "runs"
    assert install not in default.parents                               # the user's data folder, not the install
    out = tmp_path / "chosen"
    dialog.out_edit.setText(str(out))
    config = dialog.build_config()                                      # "as the config says": it generates data
    assert config.train.out == out
    assert config.data.root == out / "data" / "train" and config.data.val_root == out / "data" / "eval"
    dialog.data_synthetic.setChecked(True)
    config = dialog.build_config()
    assert config.data.root == out / "data" / "train" and config.data.val_root == out / "data" / "eval"


def test_a_dataset_folder_that_is_not_a_dataset_is_reported_and_nothing_starts(qtbot, tmp_path):
    dialog = TrainingDialog()
    qtbot.addWidget(dialog)
    dialog.set_config_path(str(TINY_CONFIG))
    dialog.data_from_folder.setChecked(True)
    dialog.folder_edit.setText(str(tmp_path))
    with qtbot.waitSignal(dialog.run_failed, timeout=5_000) as failed:
        assert not dialog.start()
    assert str(tmp_path) in failed.args[0] and "layout" in failed.args[0]
    assert dialog.job is None and dialog.start_button.isEnabled()


def test_smoothing_follows_a_constant_and_lags_a_step():
    assert smoothed([2.0] * 5) == pytest.approx([2.0] * 5)
    values = smoothed([0.0] * 5 + [1.0] * 5)
    assert values[4] == 0.0 and 0.0 < values[5] < values[9] < 1.0
