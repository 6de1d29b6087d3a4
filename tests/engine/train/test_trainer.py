"""The trainer on a tiny synthetic dataset (CPU, seconds): exact resume from any stop, callbacks and files,
the CAFR warm-up switch, a non-finite loss stopping the run, cancel, time budget, fine-tuning."""
from __future__ import annotations

import json
import math
import threading
import time

import pytest
import torch

from engine.model import CrossViewNet
from engine.model.checkpoint import read_checkpoint, write_checkpoint
from engine.progress import CancelToken
from engine.train import LAST_MODEL, LAST_STATE, NonFiniteLossError, TrainCallbacks, Trainer, TrainingError
from engine.train.schedule import cosine_warmup_lr
from engine.train.state import read_training_state
from tests.engine.train.conftest import tiny_config


class Recorder(TrainCallbacks):
    """Records every callback; cancels the run at a chosen ("step", epoch, step) or ("epoch", epoch)."""

    def __init__(self, cancel: CancelToken | None = None, stop_at: tuple | None = None) -> None:
        self.cancel, self.stop_at = cancel, stop_at
        self.steps, self.epochs, self.checkpoints, self.messages = [], [], [], []

    def on_step(self, epoch, step, steps, losses, lr):
        self.steps.append((epoch, step, steps, dict(losses), lr))
        if self.stop_at == ("step", epoch, step):
            self.cancel.cancel()

    def on_epoch_end(self, epoch, metrics):
        self.epochs.append((epoch, dict(metrics)))
        if self.stop_at == ("epoch", epoch):
            self.cancel.cancel()

    def on_checkpoint(self, path):
        self.checkpoints.append(path)

    def on_log(self, message):
        self.messages.append(message)


def weights(path) -> dict[str, torch.Tensor]:
    return read_checkpoint(path)[0]


def assert_same_weights(a, b) -> None:
    first, second = weights(a), weights(b)
    assert first.keys() == second.keys()
    different = [key for key in first if not torch.equal(first[key], second[key])]
    assert different == []


@pytest.fixture(scope="module")
def reference(tiny_dataset, tmp_path_factory):
    """An uninterrupted 2-epoch run."""
    out = tmp_path_factory.mktemp("reference")
    recorder = Recorder()
    summary = Trainer(tiny_config(tiny_dataset, out), recorder).run()
    return summary, recorder


@pytest.mark.parametrize("stop_at", [("epoch", 0), ("step", 0, 1), ("step", 1, 0)],
                         ids=["after-epoch-1", "mid-epoch-1", "first-step-of-epoch-2"])
def test_resume_continues_exactly(tiny_dataset, tmp_path, reference, stop_at):
    full, _ = reference
    cancel = CancelToken()
    stopped = Trainer(tiny_config(tiny_dataset, tmp_path), Recorder(cancel, stop_at), cancel).run()
    assert stopped.stopped == "cancelled"
    assert (tmp_path / LAST_MODEL).exists() and (tmp_path / LAST_STATE).exists()
    resumed_recorder = Recorder()
    resumed = Trainer(tiny_config(tiny_dataset, tmp_path), resumed_recorder).run(resume=True)
    assert resumed.stopped == "completed" and resumed.global_step == full.global_step
    assert any("resuming" in m for m in resumed_recorder.messages)
    assert_same_weights(full.last_checkpoint, resumed.last_checkpoint)
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in full.history]
    assert [h.get("R@1") for h in resumed.history] == [h.get("R@1") for h in full.history]
    full_state = read_training_state(full.out_dir / LAST_STATE)["optimizer"]["state"]
    resumed_state = read_training_state(tmp_path / LAST_STATE)["optimizer"]["state"]
    for index, moments in full_state.items():
        for key, value in moments.items():
            assert torch.equal(value, resumed_state[index][key]), (index, key)


def test_callbacks_files_and_schedule(reference):
    summary, recorder = reference
    config = json.loads((summary.out_dir / "config.json").read_text())
    epochs, batch = config["train"]["epochs"], config["train"]["batch_size"]
    steps_per_epoch = 20 // batch            # 20 training pairs in the tiny dataset
    assert summary.stopped == "completed" and summary.epochs_completed == epochs
    assert [(e, s) for e, s, *_ in recorder.steps] == [(e, s) for e in range(epochs) for s in range(steps_per_epoch)]
    assert all(n == steps_per_epoch for _, _, n, _, _ in recorder.steps)
    total = epochs * steps_per_epoch
    warmup = round(config["optim"]["warmup_epochs"] * steps_per_epoch)
    expected_lr = [cosine_warmup_lr(k, total, warmup, config["optim"]["lr"]) for k in range(total)]
    assert [lr for *_, lr in recorder.steps] == pytest.approx(expected_lr)
    for *_, losses, _ in recorder.steps:
        assert {"total", "infonce", "fine", "cwr", "srs"} <= set(losses)
        assert all(math.isfinite(v) for v in losses.values())
    assert [e for e, _ in recorder.epochs] == list(range(epochs))
    for _, metrics in recorder.epochs:
        assert {"loss", "lr", "pairs_per_s", "R@1", "R@5", "R@10", "R@1%", "fine_median_m"} <= set(metrics)
        assert 0.0 <= metrics["R@1"] <= metrics["R@5"] <= metrics["R@10"] <= 1.0
    history = json.loads((summary.out_dir / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2] and [h["neighbours"] for h in history] == ["gps", "visual"]
    best_epoch = max(range(epochs), key=lambda e: (history[e]["R@1"], -e)) + 1
    assert summary.best == {"metric": "R@1", "value": history[best_epoch - 1]["R@1"], "epoch": best_epoch}
    metadata = CrossViewNet.read_metadata(summary.last_checkpoint)["training"]
    assert metadata["epochs_completed"] == epochs and metadata["global_step"] == total
    assert metadata["pairs"]["mask_source"] == "exact" and metadata["dataset"]["pairs"] == 20
    assert CrossViewNet.read_metadata(summary.best_checkpoint)["training"]["epochs_completed"] == best_epoch
    assert summary.last_checkpoint in recorder.checkpoints and summary.pairs_per_second > 0


def test_cafr_terms_count_only_after_their_start_epoch(reference):
    _, recorder = reference
    for epoch, _, _, losses, _ in recorder.steps:
        fine_and_infonce = losses["infonce"] + losses["fine"]
        cafr = 0.05 * (losses["cwr"] + losses["srs"])
        expected = fine_and_infonce if epoch == 0 else fine_and_infonce + cafr
        assert losses["total"] == pytest.approx(expected, rel=1e-5)
        assert losses["cwr"] > 0


def test_a_non_finite_loss_stops_and_keeps_the_last_checkpoint(tiny_dataset, tmp_path):
    cancel = CancelToken()
    Trainer(tiny_config(tiny_dataset, tmp_path), Recorder(cancel, ("epoch", 0)), cancel).run()
    good = (tmp_path / LAST_MODEL).read_bytes()
    good_state = (tmp_path / LAST_STATE).read_bytes()
    # an absurd learning rate: the first update blows the weights up and the next loss is NaN
    exploding = tiny_config(tiny_dataset, tmp_path, optim={"lr": 1e30})
    recorder = Recorder()
    with pytest.raises(NonFiniteLossError, match="loss is not finite at epoch 2, step 2") as caught:
        Trainer(exploding, recorder).run(resume=True)
    assert "the last good checkpoint is" in str(caught.value) and caught.value.checkpoint == tmp_path / LAST_MODEL
    assert len(recorder.steps) == 1 and math.isnan(caught.value.losses["total"])
    assert (tmp_path / LAST_MODEL).read_bytes() == good and (tmp_path / LAST_STATE).read_bytes() == good_state
    model = CrossViewNet.load(tmp_path / LAST_MODEL)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_cancel_from_another_thread_stops_within_two_seconds(tiny_dataset, tmp_path):
    cancel = CancelToken()
    cancelled_at = []

    class CancelLater(Recorder):
        def on_step(self, epoch, step, steps, losses, lr):
            super().on_step(epoch, step, steps, losses, lr)
            if epoch == 0 and step == 0:
                threading.Thread(target=lambda: (cancelled_at.append(time.perf_counter()), cancel.cancel())).start()

    summary = Trainer(tiny_config(tiny_dataset, tmp_path), CancelLater(), cancel).run()
    assert summary.stopped == "cancelled" and time.perf_counter() - cancelled_at[0] < 2.0
    state = read_training_state(tmp_path / LAST_STATE)
    assert state["position"]["epoch"] == 0 and 1 <= state["position"]["step"] <= 3


def test_time_budget_stops_with_a_checkpoint_and_resumes_exactly(tiny_dataset, tmp_path, reference):
    summary = Trainer(tiny_config(tiny_dataset, tmp_path, train={"time_budget_min": 1e-9})).run()
    assert summary.stopped == "time budget" and summary.global_step == 0
    assert read_training_state(tmp_path / LAST_STATE)["position"]["step"] == 0
    resumed = Trainer(tiny_config(tiny_dataset, tmp_path)).run(resume=tmp_path / LAST_MODEL)
    assert_same_weights(reference[0].last_checkpoint, resumed.last_checkpoint)


def test_runs_are_not_overwritten_and_bad_resumes_are_refused(tiny_dataset, tmp_path, reference):
    with pytest.raises(TrainingError, match="nothing to resume"):
        Trainer(tiny_config(tiny_dataset, tmp_path)).run(resume=True)
    cancel = CancelToken()
    Trainer(tiny_config(tiny_dataset, tmp_path), Recorder(cancel, ("step", 0, 0)), cancel).run()
    with pytest.raises(TrainingError, match="already holds a training run"):
        Trainer(tiny_config(tiny_dataset, tmp_path)).run()
    with pytest.raises(TrainingError, match="a resumed run keeps its optimizer"):
        Trainer(tiny_config(tiny_dataset, tmp_path, optim={"optimizer": "sgd"})).run(resume=True)
    tensors, metadata = read_checkpoint(tmp_path / LAST_MODEL)
    metadata["training"]["checkpoint_id"] = "another"
    write_checkpoint(tmp_path / LAST_MODEL, tensors, metadata)
    with pytest.raises(TrainingError, match="not from the same checkpoint"):
        Trainer(tiny_config(tiny_dataset, tmp_path)).run(resume=True)
    fresh = Trainer(tiny_config(tiny_dataset, tmp_path, train={"epochs": 1})).run(overwrite=True)
    assert fresh.stopped == "completed"


def test_fine_tuning_starts_from_saved_weights(tiny_dataset, tmp_path, reference):
    start = reference[0].last_checkpoint
    config = tiny_config(tiny_dataset, tmp_path, train={"epochs": 1, "max_steps_per_epoch": 1, "init_from": str(start),
                                                        "validate_every": 0},
                         optim={"lr": 1e-12, "warmup_epochs": 0}, sampler={"mode": "random"})
    summary = Trainer(config).run()
    assert summary.global_step == 1 and summary.best["metric"] == "loss"
    before, after = CrossViewNet.load(start), CrossViewNet.load(summary.last_checkpoint)
    for (name, a), (_, b) in zip(before.named_parameters(), after.named_parameters()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0, msg=name)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_mixed_precision_training_and_resume(tiny_dataset, tmp_path):
    cancel = CancelToken()
    config = tiny_config(tiny_dataset, tmp_path, train={"device": "cuda", "deterministic": False},
                         optim={"amp": True})
    stopped = Trainer(config, Recorder(cancel, ("epoch", 0)), cancel).run()
    assert stopped.stopped == "cancelled"
    resumed = Trainer(config, Recorder()).run(resume=True)
    assert resumed.stopped == "completed" and resumed.epochs_completed == 2
    assert all(math.isfinite(h["loss"]) for h in resumed.history)
    model = CrossViewNet.load(resumed.last_checkpoint)
    assert all(torch.isfinite(p).all() for p in model.parameters())
