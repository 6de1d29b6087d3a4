"""Checkpoints of a training run and exact resume.

Files in the output folder (rank 0 writes them, atomically):
    last.safetensors        model weights + JSON metadata (CrossViewNet.save), the latest good state
    last.state.safetensors  optimiser, schedule, grad scaler, sampler (neighbour table), RNG states,
                            position (epoch, step), metrics history; pairs with last.safetensors by id
    best.safetensors        the model with the best validation R@1 (lowest training loss without validation)
    history.json            one record per finished epoch; config.json: the configuration used
"""
from __future__ import annotations

import dataclasses
import os
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from engine.model.checkpoint import CheckpointError, read_checkpoint
from engine.train.errors import TrainingError
from engine.train.json_values import json_safe
from engine.train.state import read_training_state, rng_states, set_rng_states, write_training_state

if TYPE_CHECKING:
    from engine.train.trainer import Trainer

LAST_MODEL = "last.safetensors"
LAST_STATE = "last.state.safetensors"
BEST_MODEL = "best.safetensors"
HISTORY_JSON = "history.json"
CONFIG_JSON = "config.json"
#: Config entries that may change between a run and its resumption without a warning.
RESUMABLE_CHANGES = ("train.epochs", "train.out", "train.num_workers", "train.time_budget_min",
                     "train.device", "eval.num_workers", "eval.batch_size", "data.check_images")


@dataclass
class TrainPosition:
    """Where a run stands; saved with every checkpoint."""

    epoch: int = 0
    step: int = 0             # next step of `epoch` to run
    global_step: int = 0
    elapsed: float = 0.0      # training seconds of earlier runs of this training
    # sums over the steps of `epoch` run so far (a run stopped mid-epoch resumes them)
    terms: dict[str, float] = field(default_factory=dict)
    steps: int = 0
    pairs: int = 0
    seconds: float = 0.0

    def start_epoch(self, epoch: int) -> None:
        self.epoch, self.step, self.terms, self.steps, self.pairs, self.seconds = epoch, 0, {}, 0, 0, 0.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def state_path_for(model_path: Path) -> Path:
    name = model_path.name
    stem = name[:-len(".safetensors")] if name.endswith(".safetensors") else model_path.stem
    return model_path.with_name(f"{stem}.state.safetensors")


def resume_paths(out: Path, resume: bool | str | Path | None) -> tuple[Path, Path] | None:
    """(model, state) files to resume from: resume=True -> the output folder's last checkpoint; a folder or
    a model file -> that one; False / None -> nothing."""
    if resume is False or resume is None:
        return None
    if resume is True:
        model_path = out / LAST_MODEL
    else:
        model_path = Path(resume)
        if model_path.is_dir():
            model_path = model_path / LAST_MODEL
    state_path = state_path_for(model_path)
    if not model_path.is_file() or not state_path.is_file():
        raise TrainingError(f"nothing to resume: {model_path} and {state_path} must both exist")
    return model_path, state_path


def training_summary(trainer: Trainer, checkpoint_id: str) -> dict[str, Any]:
    """The "training" metadata saved with the model: position, hardware, data, settings, metrics."""
    device, position = trainer.ctx.device, trainer.position
    hardware = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({os.cpu_count()} cores)"
    return {
        "trainer": "engine.train", "checkpoint_id": checkpoint_id, "epoch": position.epoch,
        "step": position.step,
        "global_step": position.global_step, "epochs_completed": len(trainer.history),
        "epochs_planned": trainer.config.train.epochs,
        "training_seconds": position.elapsed + time.perf_counter() - trainer.run_started,
        "hardware": {"device": hardware, "processes": trainer.ctx.world_size, "torch": torch.__version__},
        "command": " ".join(sys.argv),
        "dataset": {"kind": trainer.config.data.kind, "root": str(trainer.config.data.root),
                    "split": trainer.train_reader.split if hasattr(trainer.train_reader, "split") else None,
                    "pairs": len(trainer.items)},
        "pairs": json_safe(dataclasses.asdict(trainer.pair_config)),
        "loss": trainer.config.loss.to_dict(),
        "last_metrics": json_safe(trainer.history[-1]) if trainer.history else {},
        "best": json_safe(trainer.best),
        "config": trainer.config.to_dict(),
    }


def write_checkpoint(trainer: Trainer, final: bool, best: bool = False) -> None:
    """Write last.safetensors + last.state.safetensors for the current position (rank 0; all ranks wait)."""
    if trainer.ctx.is_main:
        out, model, callbacks = trainer.out, trainer.model, trainer.callbacks
        checkpoint_id = uuid.uuid4().hex
        summary = training_summary(trainer, checkpoint_id)
        state = {
            "checkpoint_id": checkpoint_id, "position": {**trainer.position.to_dict(),
                                                         "elapsed": summary["training_seconds"]},
            "optimizer": trainer.optimizer.state_dict(), "schedule": trainer.schedule.state_dict(),
            "scaler": trainer.scaler.state_dict(), "sampler": trainer.sampler.state_dict(), "rng": rng_states(),
            "history": json_safe(trainer.history), "best": json_safe(trainer.best),
            "config": trainer.config.to_dict(), "items": len(trainer.items)}
        out.mkdir(parents=True, exist_ok=True)
        write_training_state(out / LAST_STATE, state)
        callbacks.on_checkpoint(model.save(out / LAST_MODEL, summary))
        if best:
            callbacks.on_checkpoint(model.save(out / BEST_MODEL, summary))
        if final and trainer.config.train.keep_epoch_checkpoints:
            path = out / "epochs" / f"epoch_{trainer.position.epoch:03d}.safetensors"
            callbacks.on_checkpoint(model.save(path, summary))
    trainer.ctx.barrier()


def restore_checkpoint(trainer: Trainer, model_path: Path, state_path: Path) -> TrainPosition:
    """Load a checkpoint pair into the trainer's model, optimiser, schedule, scaler, sampler, RNGs and
    history; returns the position to go on from. Refuses a pair that does not fit the run."""
    config = trainer.config
    state = read_training_state(state_path)
    try:
        tensors, metadata = read_checkpoint(model_path)
    except CheckpointError as exc:
        raise TrainingError(str(exc)) from exc
    training = metadata.get("training", {})
    if training.get("checkpoint_id") != state.get("checkpoint_id"):
        raise TrainingError(f"{model_path} and {state_path} are not from the same checkpoint (a save was "
                            f"interrupted?); resume from a matching pair")
    if metadata.get("config") != trainer.model.config.to_dict():
        raise TrainingError(f"{model_path}: its architecture differs from the configuration's [model]")
    if int(state["items"]) != len(trainer.items):
        raise TrainingError(f"{state_path}: trained on {state['items']} pairs, the dataset now has "
                            f"{len(trainer.items)}; resume with the same data")
    saved_optimizer = state["config"].get("optim", {}).get("optimizer")
    if saved_optimizer != config.optim.optimizer:
        raise TrainingError(f"{state_path}: the run used optimizer {saved_optimizer!r}, the configuration says "
                            f"{config.optim.optimizer!r}; a resumed run keeps its optimizer")
    trainer.model.load_state_dict(tensors, strict=True)
    try:
        trainer.optimizer.load_state_dict(state["optimizer"])
    except (KeyError, ValueError) as exc:
        raise TrainingError(f"{state_path}: optimizer state does not fit this model ({exc})") from exc
    trainer.schedule.load_state_dict(state["schedule"])
    trainer.scaler.load_state_dict(state["scaler"])
    trainer.sampler.load_state_dict(state["sampler"])
    set_rng_states(state["rng"])
    trainer.history = list(state["history"])
    trainer.best = dict(state["best"])
    changed = changed_keys(state["config"], config.to_dict())
    if changed:
        trainer.log(f"resuming with a changed configuration: {', '.join(changed)}")
    position = TrainPosition(**state["position"])
    trainer.log(f"resuming {model_path} at epoch {position.epoch + 1}, step {position.step}")
    return position


def changed_keys(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two config dicts, leaving out RESUMABLE_CHANGES."""
    changed = []
    for key in sorted(set(old) | set(new)):
        name = f"{prefix}{key}"
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            changed += changed_keys(a, b, f"{name}.")
        elif a != b and name not in RESUMABLE_CHANGES:
            changed.append(name)
    return changed
