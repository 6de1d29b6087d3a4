"""The trainer: Sample4Geo batches, InfoNCE + warm-up-gated CAFR + fine head, AMP on CUDA, DDP by torchrun,
a checkpoint every epoch and exact resume.

Files in the output folder (rank 0 writes them, atomically):
    last.safetensors        model weights + JSON metadata (CrossViewNet.save), the latest good state
    last.state.safetensors  optimiser, schedule, grad scaler, sampler (neighbour table), RNG states,
                            position (epoch, step), metrics history; pairs with last.safetensors by id
    best.safetensors        the model with the best validation R@1 (lowest training loss without validation)
    history.json            one record per finished epoch; config.json: the configuration used
A checkpoint is written at the end of every epoch and when a run stops early (cancel, time budget), so a
resumed run loses nothing. A non-finite loss stops the run before the bad step touches the weights; the
files on disk then still hold the last good state.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from engine.data.errors import EmptyDatasetError
from engine.data.pairs import CrossViewPairs, PairConfig, collate_pairs
from engine.atomic import write_text_atomic
from engine.model import CafrLoss, CafrTargets, CrossViewNet
from engine.model.checkpoint import CheckpointError, read_checkpoint
from engine.progress import Cancelled, CancelToken
from engine.train.config import TrainConfig
from engine.train.datasets import open_dataset
from engine.train.distributed import DistributedContext
from engine.train.evaluate import evaluate
from engine.train.loading import loadable
from engine.train.sampler import (
    NeighbourBatchSampler,
    conflict_keys,
    conflicting_items,
    gps_neighbours,
    item_positions,
    visual_neighbours,
)
from engine.train.schedule import CosineWarmupSchedule
from engine.train.state import read_training_state, rng_states, set_rng_states, write_training_state
from engine.train.synthetic import ensure_synthetic_dataset

LAST_MODEL = "last.safetensors"
LAST_STATE = "last.state.safetensors"
BEST_MODEL = "best.safetensors"
HISTORY_JSON = "history.json"
CONFIG_JSON = "config.json"
#: Validation metric that picks the best checkpoint (higher is better).
BEST_METRIC = "R@1"
#: Config entries that may change between a run and its resumption without a warning.
_RESUMABLE_CHANGES = ("train.epochs", "train.out", "train.num_workers", "train.time_budget_min",
                      "train.device", "eval.num_workers", "eval.batch_size", "data.check_images")


class TrainingError(RuntimeError):
    """Training cannot start or go on (bad resume point, output folder in use, ...)."""


class NonFiniteLossError(TrainingError):
    """The loss became NaN or infinite; the run stopped before the bad step changed the weights."""

    def __init__(self, message: str, epoch: int, step: int, losses: dict[str, float],
                 checkpoint: Path | None) -> None:
        super().__init__(message)
        self.epoch, self.step, self.losses, self.checkpoint = epoch, step, losses, checkpoint


class TrainCallbacks:
    """Hooks the CLI and the app implement (called from the training thread, rank 0 only). Epochs and steps
    are 0-based; losses are the batch's loss terms as floats ("total" included)."""

    def on_step(self, epoch: int, step: int, steps: int, losses: dict[str, float], lr: float) -> None:
        pass

    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        pass

    def on_checkpoint(self, path: Path) -> None:
        pass

    def on_log(self, message: str) -> None:
        pass

    def on_progress(self, stage: str, done: int, total: int) -> None:
        """Passes other than training steps: data generation, hard-negative mining, validation."""


@dataclass
class TrainSummary:
    out_dir: Path
    last_checkpoint: Path | None
    best_checkpoint: Path | None
    epochs_completed: int
    global_step: int
    #: "completed", "cancelled" or "time budget"
    stopped: str
    history: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    #: Training pairs per second over this run's optimiser steps (all processes together).
    pairs_per_second: float = 0.0


@dataclass
class _Position:
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


def pair_config_for(model_config, overrides: dict[str, Any]) -> PairConfig:
    return PairConfig(ground_hw=model_config.ground_hw, satellite_hw=model_config.satellite_hw,
                      metres_per_px=model_config.metres_per_pixel, **overrides)


def state_path_for(model_path: Path) -> Path:
    name = model_path.name
    stem = name[:-len(".safetensors")] if name.endswith(".safetensors") else model_path.stem
    return model_path.with_name(f"{stem}.state.safetensors")


class Trainer:
    """Runs one training (see the module docstring). `callbacks`: a TrainCallbacks or any object with its
    methods; `cancel`: set it (from any thread) to stop after the current step with a checkpoint."""

    def __init__(self, config: TrainConfig, callbacks: TrainCallbacks | None = None,
                 cancel: CancelToken | None = None) -> None:
        config.validate()
        self.config = config
        self.callbacks = callbacks or TrainCallbacks()
        self.cancel = cancel or CancelToken()
        self.model: CrossViewNet | None = None
        self.out = Path(config.train.out)

    # ------------------------------------------------------------ public
    def run(self, resume: bool | str | Path = False, overwrite: bool = False) -> TrainSummary:
        """Train (or continue, with resume=True / a checkpoint path) and return what happened."""
        ctx = DistributedContext.from_environment(self.config.train.device)
        self.ctx = ctx
        threads = torch.get_num_threads()
        try:
            return self._run(resume, overwrite)
        finally:
            torch.set_num_threads(threads)
            ctx.close()

    # ------------------------------------------------------------ set-up
    def _log(self, message: str) -> None:
        if self.ctx.is_main:
            self.callbacks.on_log(message)

    def _progress(self, stage: str, done: int, total: int) -> None:
        if self.ctx.is_main:
            self.callbacks.on_progress(stage, done, total)

    def _resume_paths(self, resume: bool | str | Path) -> tuple[Path, Path] | None:
        if resume is False or resume is None:
            return None
        if resume is True:
            model_path = self.out / LAST_MODEL
        else:
            model_path = Path(resume)
            if model_path.is_dir():
                model_path = model_path / LAST_MODEL
        state_path = state_path_for(model_path)
        if not model_path.is_file() or not state_path.is_file():
            raise TrainingError(f"nothing to resume: {model_path} and {state_path} must both exist")
        return model_path, state_path

    def _prepare_runtime(self) -> None:
        cfg = self.config.train
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        if cfg.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
        else:
            torch.backends.cudnn.benchmark = self.ctx.device.type == "cuda"
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed % 2**32)
        random.seed(cfg.seed)

    def _prepare_data(self) -> None:
        data = self.config.data
        specs = [(data.generate, data.root), (data.val_generate, data.val_root)]
        if self.ctx.is_main:
            for spec, root in specs:
                if spec is not None and root is not None:
                    self._log(f"synthetic data at {root}")
                    ensure_synthetic_dataset(spec, root, progress=self._progress, cancel=self.cancel)
        self.ctx.barrier()
        self.train_reader = open_dataset(data.kind, data.root, data.split, training=True, cities=data.cities,
                                         vigor_mode=data.vigor_mode, check_images=data.check_images)
        self.items = list(self.train_reader.items)
        self.val_reader = None
        if self.config.train.validate_every:
            val_kind = data.val_kind or data.kind
            try:
                self.val_reader = open_dataset(val_kind, data.val_root or data.root, data.val_split,
                                               training=False, cities=data.val_cities, vigor_mode=data.vigor_mode,
                                               check_images=data.check_images)
            except EmptyDatasetError:
                if data.val_root is not None or data.val_split is not None:
                    raise
                # the training root has no evaluation split and none was asked for: train without validation
                self._log(f"{data.root} has no evaluation split; training without validation")
        self._log(f"training on {len(self.items)} pairs of {data.kind} at {data.root}"
                  + (f"; validating on {len(self.val_reader)} pairs" if self.val_reader is not None else ""))

    def _build_model(self) -> CrossViewNet:
        init = self.config.train.init_from
        if init is not None:
            model = CrossViewNet.load(init)
            self._log(f"starting from the weights of {init} (its architecture replaces [model])")
        else:
            torch.manual_seed(self.config.train.seed)
            model = CrossViewNet(self.config.model)
        model.to(self.ctx.device).train()
        if self.ctx.device.type == "cuda":
            model.to(memory_format=torch.channels_last)
        return model

    def _build_optimizer(self, model: CrossViewNet) -> torch.optim.Optimizer:
        optim = self.config.optim
        decay, no_decay = [], []
        for parameter in model.parameters():
            if parameter.requires_grad:
                # biases, norms, GeM exponents and the logit scale are not weights to shrink
                (decay if parameter.ndim >= 2 else no_decay).append(parameter)
        groups = [{"params": decay, "weight_decay": optim.weight_decay},
                  {"params": no_decay, "weight_decay": 0.0}]
        if optim.optimizer == "adamw":
            return torch.optim.AdamW(groups, lr=optim.lr, betas=optim.betas)
        return torch.optim.SGD(groups, lr=optim.lr, momentum=optim.momentum)

    def _amp_dtype(self) -> torch.dtype | None:
        if self.ctx.device.type != "cuda" or not self.config.optim.amp:
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16

    def _steps_per_epoch(self) -> int:
        steps = (len(self.items) // self.config.train.batch_size) // self.ctx.world_size
        cap = self.config.train.max_steps_per_epoch
        return max(1, min(steps, cap) if cap else steps)

    # ------------------------------------------------------------ the run
    def _run(self, resume: bool | str | Path, overwrite: bool) -> TrainSummary:
        started = time.perf_counter()
        config = self.config
        resume_paths = self._resume_paths(resume)
        if resume_paths is None and (self.out / LAST_MODEL).exists() and not overwrite:
            raise TrainingError(f"{self.out} already holds a training run; resume it, or choose another output "
                                f"folder, or overwrite it")
        self._prepare_runtime()
        self._prepare_data()
        model = self.model = self._build_model()
        self.pair_config = pair_config_for(model.config, config.pairs)
        self.loss_fn = CafrLoss(config.loss)
        self.optimizer = self._build_optimizer(model)
        steps_per_epoch = self._steps_per_epoch()
        self.schedule = CosineWarmupSchedule(
            self.optimizer, config.optim.lr, config.train.epochs * steps_per_epoch,
            round(config.optim.warmup_epochs * steps_per_epoch), config.optim.min_lr_ratio)
        self.amp_dtype = self._amp_dtype()
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        keys = conflict_keys(self.items)
        self.conflicts = conflicting_items(keys)
        self.sampler = NeighbourBatchSampler(
            keys, config.train.batch_size, config.train.seed,
            neighbours_per_anchor=config.sampler.neighbours_per_anchor,
            neighbour_range=config.sampler.neighbour_range, pool=config.sampler.pool)
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] = {}
        position = _Position()
        if resume_paths is not None:
            position = self._restore(*resume_paths)
        elif config.sampler.mode in ("neighbours", "gps"):
            self.sampler.set_neighbours(gps_neighbours(self.items, config.sampler.pool), "gps", 0)
        if self.ctx.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            write_text_atomic(self.out / CONFIG_JSON, json.dumps(config.to_dict(), indent=2) + "\n")

        self.train_pairs = CrossViewPairs(self.items, self.pair_config, config.augment, seed=config.train.seed)
        self.forward_model = model
        if self.ctx.active:
            device_ids = [self.ctx.device.index] if self.ctx.device.type == "cuda" else None
            self.forward_model = DistributedDataParallel(model, device_ids=device_ids)
        self.run_started = started
        self.pairs_done, self.train_seconds = 0, 0.0
        stopped = self._train(position)
        seconds = time.perf_counter() - started
        last = self.out / LAST_MODEL
        best = self.out / BEST_MODEL
        return TrainSummary(
            out_dir=self.out, last_checkpoint=last if last.exists() else None,
            best_checkpoint=best if best.exists() else None,
            epochs_completed=len(self.history), global_step=self.position.global_step, stopped=stopped,
            history=list(self.history), best=dict(self.best), seconds=seconds,
            pairs_per_second=self.pairs_done * self.ctx.world_size / self.train_seconds if self.train_seconds else 0.0)

    def _train(self, position: _Position) -> str:
        config = self.config
        self.position = position
        budget = config.train.time_budget_min * 60.0
        while position.epoch < config.train.epochs:
            epoch = position.epoch
            if self._mining_due(epoch):
                try:
                    self._mine_hard_negatives(epoch)
                except Cancelled:
                    self._log(f"stopped (cancelled) before epoch {epoch + 1}; the last checkpoint stands")
                    return "cancelled"
            batches = NeighbourBatchSampler.shard(self.sampler.epoch_batches(epoch), self.ctx.rank,
                                                  self.ctx.world_size)
            if config.train.max_steps_per_epoch:
                batches = batches[:config.train.max_steps_per_epoch]
            self.train_pairs.set_epoch(epoch)
            loader = DataLoader(loadable(self.train_pairs, config.train.num_workers),
                                batch_sampler=batches[position.step:], collate_fn=collate_pairs,
                                num_workers=config.train.num_workers,
                                pin_memory=self.ctx.device.type == "cuda")
            self.model.train()
            segment_started, segment_pairs = time.perf_counter(), 0
            for batch in loader:
                stop = self._stop_reason(budget)
                if stop:
                    self._account(segment_started, segment_pairs)
                    self._checkpoint(final=False)
                    self._log(f"stopped ({stop}) at epoch {epoch + 1}, step {position.step}; "
                              f"checkpoint {self.out / LAST_MODEL}")
                    return stop
                losses = self._step(batch, epoch, position.step)
                position.step += 1
                if losses is None:
                    continue
                position.steps += 1
                segment_pairs += len(batch["index"])
                for key, value in losses.items():
                    position.terms[key] = position.terms.get(key, 0.0) + value
                if self.ctx.is_main:
                    self.callbacks.on_step(epoch, position.step - 1, len(batches), losses,
                                           self.schedule.lr(position.global_step - 1))
            self._account(segment_started, segment_pairs)
            with torch.no_grad():
                self.ctx.average_buffers(self.model)
            try:
                self._finish_epoch(epoch)
            except Cancelled:
                self._checkpoint(final=False)
                self._log(f"stopped (cancelled) after the steps of epoch {epoch + 1}; checkpoint written")
                return "cancelled"
        return "completed"

    def _account(self, started: float, pairs: int) -> None:
        seconds = time.perf_counter() - started
        self.position.seconds += seconds
        self.position.pairs += pairs
        self.train_seconds += seconds
        self.pairs_done += pairs

    def _stop_reason(self, budget_s: float) -> str | None:
        flags = torch.tensor([float(self.cancel.cancelled),
                              float(budget_s > 0 and time.perf_counter() - self.run_started > budget_s)])
        flags = self.ctx.sum(flags)
        if flags[0] > 0:
            return "cancelled"
        if flags[1] > 0:
            return "time budget"
        return None

    def _targets(self, batch: dict) -> CafrTargets:
        device = self.ctx.device
        move = lambda t: t.to(device, non_blocking=True)  # noqa: E731
        all_headings = bool(batch["has_heading"].all())
        # a sample without a heading has no CWR target (NaN); such batches train without CWR
        return CafrTargets(overlap_centre_px=move(batch["overlap_centre_px"]) if all_headings else None,
                           overlap_mask=move(batch["overlap_mask"]), camera_px=move(batch["camera_px"]),
                           heading_deg=move(batch["heading_deg"]), same_place=self._same_place(batch["index"]))

    def _same_place(self, indices: torch.Tensor) -> torch.Tensor | None:
        """(B, B) pairs of the batch whose cameras lie within the loss's exclusion radius of each other."""
        radius = self.config.loss.negative_exclusion_m
        if radius <= 0:
            return None
        items = [self.items[int(i)] for i in indices]
        positions, valid = item_positions(items)
        points = torch.from_numpy(positions)
        near = torch.cdist(points, points) < radius
        known = torch.from_numpy(valid)
        places = [(item.dataset, item.city) for item in items]      # worlds of one biome share coordinates
        same_world = torch.tensor([[a == b for b in places] for a in places])
        return near & same_world & known[:, None] & known[None, :]

    def _step(self, batch: dict | None, epoch: int, step: int) -> dict[str, float] | None:
        """One optimiser step; None when no process could load its batch (the step is skipped everywhere)."""
        device = self.ctx.device
        missing = torch.tensor([float(batch is None)])
        if self.ctx.sum(missing)[0] > 0:
            return None
        ground = batch["ground"].to(device, non_blocking=True)
        satellite = batch["satellite"].to(device, non_blocking=True)
        if device.type == "cuda":
            ground = ground.contiguous(memory_format=torch.channels_last)
            satellite = satellite.contiguous(memory_format=torch.channels_last)
        targets = self._targets(batch)
        with torch.autocast(device.type, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None):
            output = self.forward_model(ground, satellite)
            terms = self.loss_fn(output, targets, epoch)
        total = terms["total"]
        finite = torch.isfinite(total.detach()).float().cpu().reshape(1)
        if self.ctx.sum(1.0 - finite)[0] > 0:
            self._non_finite(epoch, step, terms)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        optim = self.config.optim
        if optim.grad_clip:
            self.scaler.unscale_(self.optimizer)
            parameters = [p for p in self.model.parameters() if p.grad is not None]
            if optim.grad_clip_mode == "norm":
                torch.nn.utils.clip_grad_norm_(parameters, optim.grad_clip)
            else:
                torch.nn.utils.clip_grad_value_(parameters, optim.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.schedule.step()
        self.position.global_step += 1
        return {key: float(value.detach()) for key, value in terms.items()}

    def _non_finite(self, epoch: int, step: int, terms: dict[str, torch.Tensor]) -> None:
        losses = {key: float(value.detach()) for key, value in terms.items()}
        last = self.out / LAST_MODEL
        bad_terms = [f"{key}={value:.4g}" for key, value in losses.items() if not math.isfinite(value)]
        bad = ", ".join(bad_terms[:4]) + (f" and {len(bad_terms) - 4} more" if len(bad_terms) > 4 else "")
        kept = (f"the last good checkpoint is {last} (unchanged)" if last.exists()
                else "no checkpoint had been written yet")
        message = (f"training stopped: the loss is not finite at epoch {epoch + 1}, step {step + 1} "
                   f"({bad or 'on another process'}); {kept}. Lower the learning rate, check the data, or "
                   f"resume from the checkpoint.")
        self._log(message)
        raise NonFiniteLossError(message, epoch, step, losses, last if last.exists() else None)

    # ------------------------------------------------------------ epoch end
    def _finish_epoch(self, epoch: int) -> None:
        config, position = self.config, self.position
        last_epoch = epoch + 1 >= config.train.epochs
        steps = position.steps
        metrics: dict[str, float] = {f"loss/{k}": v / steps for k, v in position.terms.items()} if steps else {}
        metrics["loss"] = metrics.pop("loss/total", math.nan)
        metrics["lr"] = self.schedule.lr(max(0, position.global_step - 1))
        metrics["pairs_per_s"] = (position.pairs * self.ctx.world_size / position.seconds
                                  if position.seconds > 0 else math.nan)
        validate = config.train.validate_every and (
            (epoch + 1) % config.train.validate_every == 0 or last_epoch)
        if validate and self.val_reader is not None:
            metrics.update(self._validate())
        record = {"epoch": epoch + 1, "steps": steps, "pairs": position.pairs * self.ctx.world_size,
                  "train_seconds": position.seconds, "neighbours": self.sampler.source, **metrics}
        self.history.append(record)
        improved = self._is_better(metrics)
        position.start_epoch(epoch + 1)
        self._checkpoint(final=True, best=improved)
        if self.ctx.is_main:
            write_text_atomic(self.out / HISTORY_JSON, json.dumps(_finite(self.history), indent=2) + "\n")
            self.callbacks.on_epoch_end(epoch, metrics)
            shown = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()
                              if k in ("loss", "R@1", "R@5", "fine_median_m", "pairs_per_s"))
            self._log(f"epoch {epoch + 1}/{config.train.epochs}: {shown}")

    def _is_better(self, metrics: dict[str, float]) -> bool:
        if BEST_METRIC in metrics and math.isfinite(metrics[BEST_METRIC]):
            name, value, higher = BEST_METRIC, metrics[BEST_METRIC], True
        else:
            name, value, higher = "loss", metrics.get("loss", math.nan), False
        if not math.isfinite(value):
            return False
        current = self.best.get("value")
        better = (current is None or self.best.get("metric") != name
                  or (value > current if higher else value < current))
        if better:
            self.best = {"metric": name, "value": value, "epoch": len(self.history)}
        return better

    def _validate(self) -> dict[str, float]:
        metrics: dict[str, float] = {}
        if self.ctx.is_main:
            report = evaluate(self.model, self.val_reader, self.config.eval, pair_config=self.pair_config,
                              progress=self._progress, cancel=None if self.ctx.active else self.cancel)
            metrics = report.metrics()
        self.ctx.barrier()
        return self.ctx.broadcast_object(metrics)

    def _mining_due(self, epoch: int) -> bool:
        """Visual hard negatives are mined at the start of every mine_every-th epoch after the first (GPS)
        one, unless the table in hand was made for this epoch (a run resumed mid-epoch)."""
        sampler = self.config.sampler
        return (sampler.mode == "neighbours" and epoch > 0 and epoch % sampler.mine_every == 0
                and self.sampler.built_for_epoch != epoch)

    def _mine_hard_negatives(self, epoch: int) -> None:
        """Re-rank every item's neighbours by the current model: ground descriptor vs satellite descriptors.
        Each process embeds a share of the items; rank 0 ranks them and shares the table."""
        model, count = self.model, len(self.items)
        pairs = CrossViewPairs(self.items, self.pair_config, None, seed=self.config.train.seed)
        mine = list(range(self.ctx.rank, count, self.ctx.world_size))
        size = self.config.eval.batch_size
        loader = DataLoader(loadable(pairs, self.config.train.num_workers),
                            batch_sampler=[mine[i:i + size] for i in range(0, len(mine), size)],
                            collate_fn=collate_pairs, num_workers=self.config.train.num_workers)
        dim = model.config.descriptor_dim
        ground, satellite, indices = [], [], []
        model.eval()
        cancel = None if self.ctx.active else self.cancel
        with torch.inference_mode():
            for batch in loader:
                if cancel is not None:
                    cancel.raise_if_cancelled()
                if batch is None:
                    continue
                ground.append(model.embed_ground(batch["ground"], with_pyramid=False).descriptor.float().cpu())
                satellite.append(model.embed_satellite(batch["satellite"], with_pyramid=False).descriptor.float().cpu())
                indices.append(batch["index"])
                self._progress("mining hard negatives", sum(len(i) for i in indices) * self.ctx.world_size, count)
        model.train()
        empty = torch.zeros(0, dim)
        local_index = torch.cat(indices) if indices else torch.zeros(0, dtype=torch.int64)
        all_ground = self.ctx.gather_rows(torch.cat(ground) if ground else empty, local_index, count)
        all_satellite = self.ctx.gather_rows(torch.cat(satellite) if satellite else empty, local_index, count)
        table = torch.zeros((count, self.config.sampler.pool), dtype=torch.int64)
        if self.ctx.is_main:
            table = torch.from_numpy(visual_neighbours(all_ground, all_satellite, self.conflicts,
                                                       self.config.sampler.pool))
        table = self.ctx.broadcast(table)
        self.sampler.set_neighbours(table.numpy(), "visual", epoch)
        self._log(f"mined visual hard negatives for epoch {epoch + 1}")

    # ------------------------------------------------------------ checkpoints
    def _training_summary(self, checkpoint_id: str) -> dict[str, Any]:
        device = self.ctx.device
        hardware = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({os.cpu_count()} cores)"
        return {
            "trainer": "engine.train", "checkpoint_id": checkpoint_id, "epoch": self.position.epoch,
            "step": self.position.step,
            "global_step": self.position.global_step, "epochs_completed": len(self.history),
            "epochs_planned": self.config.train.epochs,
            "training_seconds": self.position.elapsed + time.perf_counter() - self.run_started,
            "hardware": {"device": hardware, "processes": self.ctx.world_size, "torch": torch.__version__},
            "command": " ".join(sys.argv),
            "dataset": {"kind": self.config.data.kind, "root": str(self.config.data.root),
                        "split": self.train_reader.split if hasattr(self.train_reader, "split") else None,
                        "pairs": len(self.items)},
            "pairs": _finite(dataclasses.asdict(self.pair_config)),
            "loss": self.config.loss.to_dict(),
            "last_metrics": _finite(self.history[-1]) if self.history else {},
            "best": _finite(self.best),
            "config": self.config.to_dict(),
        }

    def _checkpoint(self, final: bool, best: bool = False) -> None:
        """Write last.safetensors + last.state.safetensors for the current position (rank 0)."""
        if self.ctx.is_main:
            checkpoint_id = uuid.uuid4().hex
            summary = self._training_summary(checkpoint_id)
            state = {
                "checkpoint_id": checkpoint_id, "position": {**self.position.to_dict(),
                                                             "elapsed": summary["training_seconds"]},
                "optimizer": self.optimizer.state_dict(), "schedule": self.schedule.state_dict(),
                "scaler": self.scaler.state_dict(), "sampler": self.sampler.state_dict(), "rng": rng_states(),
                "history": _finite(self.history), "best": _finite(self.best), "config": self.config.to_dict(),
                "items": len(self.items)}
            self.out.mkdir(parents=True, exist_ok=True)
            write_training_state(self.out / LAST_STATE, state)
            last = self.model.save(self.out / LAST_MODEL, summary)
            self.callbacks.on_checkpoint(last)
            if best:
                self.callbacks.on_checkpoint(self.model.save(self.out / BEST_MODEL, summary))
            if final and self.config.train.keep_epoch_checkpoints:
                path = self.out / "epochs" / f"epoch_{self.position.epoch:03d}.safetensors"
                self.callbacks.on_checkpoint(self.model.save(path, summary))
        self.ctx.barrier()

    def _restore(self, model_path: Path, state_path: Path) -> _Position:
        state = read_training_state(state_path)
        try:
            tensors, metadata = read_checkpoint(model_path)
        except CheckpointError as exc:
            raise TrainingError(str(exc)) from exc
        training = metadata.get("training", {})
        if training.get("checkpoint_id") != state.get("checkpoint_id"):
            raise TrainingError(f"{model_path} and {state_path} are not from the same checkpoint (a save was "
                                f"interrupted?); resume from a matching pair")
        if metadata.get("config") != self.model.config.to_dict():
            raise TrainingError(f"{model_path}: its architecture differs from the configuration's [model]")
        if int(state["items"]) != len(self.items):
            raise TrainingError(f"{state_path}: trained on {state['items']} pairs, the dataset now has "
                                f"{len(self.items)}; resume with the same data")
        saved_optimizer = state["config"].get("optim", {}).get("optimizer")
        if saved_optimizer != self.config.optim.optimizer:
            raise TrainingError(f"{state_path}: the run used optimizer {saved_optimizer!r}, the configuration says "
                                f"{self.config.optim.optimizer!r}; a resumed run keeps its optimizer")
        self.model.load_state_dict(tensors, strict=True)
        try:
            self.optimizer.load_state_dict(state["optimizer"])
        except (KeyError, ValueError) as exc:
            raise TrainingError(f"{state_path}: optimizer state does not fit this model ({exc})") from exc
        self.schedule.load_state_dict(state["schedule"])
        self.scaler.load_state_dict(state["scaler"])
        self.sampler.load_state_dict(state["sampler"])
        set_rng_states(state["rng"])
        self.history = list(state["history"])
        self.best = dict(state["best"])
        changed = _changed_keys(state["config"], self.config.to_dict())
        if changed:
            self._log(f"resuming with a changed configuration: {', '.join(changed)}")
        position = _Position(**state["position"])
        self._log(f"resuming {model_path} at epoch {position.epoch + 1}, step {position.step}")
        return position


def _changed_keys(old: dict, new: dict, prefix: str = "") -> list[str]:
    changed = []
    for key in sorted(set(old) | set(new)):
        name = f"{prefix}{key}"
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            changed += _changed_keys(a, b, f"{name}.")
        elif a != b and name not in _RESUMABLE_CHANGES:
            changed.append(name)
    return changed


def _finite(value: Any) -> Any:
    """JSON-safe copy: NaN and infinities become None."""
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
