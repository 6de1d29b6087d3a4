"""The trainer: Sample4Geo batches, InfoNCE + warm-up-gated CAFR + fine head, AMP on CUDA, DDP by torchrun,
a checkpoint every epoch and exact resume (the files: checkpointing.py).

A checkpoint is written at the end of every epoch and when a run stops early (cancel, time budget), so a
resumed run loses nothing. A non-finite loss stops the run before the bad step touches the weights; the
files on disk then still hold the last good state.
"""
from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from engine.atomic import write_text_atomic
from engine.data.datasets import open_dataset
from engine.data.errors import EmptyDatasetError
from engine.data.pairs import CrossViewPairs, PairConfig, collate_pairs
from engine.model import CafrLoss, CafrTargets, CrossViewNet
from engine.model.device import DistributedContext, autocast_dtype
from engine.progress import Cancelled, CancelToken
from engine.train.checkpointing import (
    BEST_MODEL,
    CONFIG_JSON,
    HISTORY_JSON,
    LAST_MODEL,
    TrainPosition,
    restore_checkpoint,
    resume_paths,
    write_checkpoint,
)
from engine.train.config import TrainConfig
from engine.train.errors import NonFiniteLossError, TrainingError
from engine.train.evaluate import evaluate
from engine.train.hard_negatives import mine_hard_negatives, mining_due
from engine.train.json_values import json_safe
from engine.train.loading import loadable
from engine.train.sampler import NeighbourBatchSampler, conflict_keys, conflicting_items, gps_neighbours, item_positions
from engine.train.schedule import CosineWarmupSchedule
from engine.train.synthetic import ensure_synthetic_dataset

#: Validation metric that picks the best checkpoint (higher is better).
BEST_METRIC = "R@1"


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


def pair_config_for(model_config, overrides: dict[str, Any]) -> PairConfig:
    return PairConfig(ground_hw=model_config.ground_hw, satellite_hw=model_config.satellite_hw,
                      metres_per_px=model_config.metres_per_pixel, **overrides)


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
    def log(self, message: str) -> None:
        if self.ctx.is_main:
            self.callbacks.on_log(message)

    def report_progress(self, stage: str, done: int, total: int) -> None:
        if self.ctx.is_main:
            self.callbacks.on_progress(stage, done, total)

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
                    self.log(f"synthetic data at {root}")
                    ensure_synthetic_dataset(spec, root, progress=self.report_progress, cancel=self.cancel)
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
                self.log(f"{data.root} has no evaluation split; training without validation")
        self.log(f"training on {len(self.items)} pairs of {data.kind} at {data.root}"
                  + (f"; validating on {len(self.val_reader)} pairs" if self.val_reader is not None else ""))

    def _build_model(self) -> CrossViewNet:
        init = self.config.train.init_from
        if init is not None:
            model = CrossViewNet.load(init)
            self.log(f"starting from the weights of {init} (its architecture replaces [model])")
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

    def _steps_per_epoch(self) -> int:
        steps = (len(self.items) // self.config.train.batch_size) // self.ctx.world_size
        cap = self.config.train.max_steps_per_epoch
        return max(1, min(steps, cap) if cap else steps)

    # ------------------------------------------------------------ the run
    def _run(self, resume: bool | str | Path, overwrite: bool) -> TrainSummary:
        started = time.perf_counter()
        config = self.config
        resume_from = resume_paths(self.out, resume)
        if resume_from is None and (self.out / LAST_MODEL).exists() and not overwrite:
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
        self.amp_dtype = autocast_dtype(self.ctx.device) if config.optim.amp else None
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        keys = conflict_keys(self.items)
        self.conflicts = conflicting_items(keys)
        self.sampler = NeighbourBatchSampler(
            keys, config.train.batch_size, config.train.seed,
            neighbours_per_anchor=config.sampler.neighbours_per_anchor,
            neighbour_range=config.sampler.neighbour_range, pool=config.sampler.pool)
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] = {}
        position = TrainPosition()
        if resume_from is not None:
            position = restore_checkpoint(self, *resume_from)
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

    def _train(self, position: TrainPosition) -> str:
        config = self.config
        self.position = position
        budget = config.train.time_budget_min * 60.0
        while position.epoch < config.train.epochs:
            epoch = position.epoch
            if mining_due(config.sampler, self.sampler, epoch):
                try:
                    self._mine_hard_negatives(epoch)
                except Cancelled:
                    self.log(f"stopped (cancelled) before epoch {epoch + 1}; the last checkpoint stands")
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
                    write_checkpoint(self, final=False)
                    self.log(f"stopped ({stop}) at epoch {epoch + 1}, step {position.step}; "
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
                write_checkpoint(self, final=False)
                self.log(f"stopped (cancelled) after the steps of epoch {epoch + 1}; checkpoint written")
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
        self.log(message)
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
        write_checkpoint(self, final=True, best=improved)
        if self.ctx.is_main:
            write_text_atomic(self.out / HISTORY_JSON, json.dumps(json_safe(self.history), indent=2) + "\n")
            self.callbacks.on_epoch_end(epoch, metrics)
            shown = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()
                              if k in ("loss", "R@1", "R@5", "fine_median_m", "pairs_per_s"))
            self.log(f"epoch {epoch + 1}/{config.train.epochs}: {shown}")

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
                              progress=self.report_progress, cancel=None if self.ctx.active else self.cancel)
            metrics = report.metrics()
        self.ctx.barrier()
        return self.ctx.broadcast_object(metrics)

    def _mine_hard_negatives(self, epoch: int) -> None:
        cfg = self.config
        table = mine_hard_negatives(
            self.model, self.items, self.pair_config, self.conflicts, cfg.sampler.pool, self.ctx,
            batch_size=cfg.eval.batch_size, num_workers=cfg.train.num_workers, seed=cfg.train.seed,
            cancel=None if self.ctx.active else self.cancel, progress=self.report_progress)
        self.sampler.set_neighbours(table, "visual", epoch)
        self.log(f"mined visual hard negatives for epoch {epoch + 1}")
