"""Training PoseNet on cached synthetic worlds: negative log-likelihood of the true pose in the score volume.

Every training pair supervises every hypothesis at once (a softmax over K headings x all placements of a
map crop, the camera within +-16 m), so a few thousand steps of the small heads learn on a 2-core CPU.
"""
from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch

from engine.model.pose_geometry import headings_deg
from engine.model.pose_net import PoseNet
from engine.train.pose_data import PoseWorld, sample_crops

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PoseTrainSpec:
    steps: int = 3000
    batch: int = 16
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    #: placements per axis - 1: the map crop is the BEV template plus this (the camera within +-16 m)
    search_cells: int = 32
    train_headings: int = 32
    eval_headings: int = 64
    seed: int = 0
    eval_every: int = 500
    eval_samples: int = 256
    #: wall-clock budget; when set, the schedule runs on elapsed time and training stops when it is spent
    budget_minutes: float | None = None


def truth_aligned_headings(heading_deg: torch.Tensor, count: int) -> torch.Tensor:
    """(B, K) hypotheses spaced 360/K apart with each photo's true heading at index 0: the label is exact
    (a fixed set of headings is up to half a step off the truth, which teaches a blurred heading)."""
    return (heading_deg[:, None] + torch.arange(count, dtype=torch.float32) * (360.0 / count)) % 360.0


def pose_nll(volume: torch.Tensor, label_ab: torch.Tensor, heading_index: torch.Tensor | None = None
             ) -> torch.Tensor:
    """Mean NLL of the true placement (nearest cell) and heading (index into K; default 0, the index of the
    truth in truth_aligned_headings) in a (B, K, A, A) score volume."""
    b, k, a, w = volume.shape
    log_p = torch.log_softmax(volume.reshape(b, -1), dim=1)
    ka = torch.zeros(b, dtype=torch.long) if heading_index is None else heading_index.long() % k
    ia = label_ab[:, 0].round().long().clamp(0, a - 1)
    ib = label_ab[:, 1].round().long().clamp(0, w - 1)
    return -log_p[torch.arange(b), (ka * a + ia) * w + ib].mean()


def forward_batch(model: PoseNet, batch: dict[str, torch.Tensor], headings: torch.Tensor) -> torch.Tensor:
    """Score volume of a batch; headings (K,) shared or (B, K) per photo."""
    bev = model.ground_bev(batch["f8"], batch["f16"], batch["fov"], batch["wh"])
    return model.score_volume(bev, model.map_features(batch["f2"], batch["f4"]), headings)


def volume_errors(volume: torch.Tensor, label_ab: torch.Tensor, heading_deg: torch.Tensor
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Position error (cells) and heading error (degrees) of each volume's arg-max."""
    b, k, a, w = volume.shape
    flat = volume.reshape(b, -1).argmax(1)
    kk, rest = flat // (a * w), flat % (a * w)
    ia, ib = rest // w, rest % w
    position = torch.hypot(ia.float() - label_ab[:, 0], ib.float() - label_ab[:, 1])
    heading = (kk.float() * (360.0 / k) - heading_deg + 180.0) % 360.0 - 180.0
    return position.numpy(), heading.abs().numpy()


def crop_cells(model: PoseNet, spec: PoseTrainSpec) -> int:
    return model.config.grid.size_cells + spec.search_cells


def evaluate_crops(model: PoseNet, worlds: list[PoseWorld], spec: PoseTrainSpec, samples: int, seed: int
                   ) -> dict[str, float]:
    """Arg-max errors on random crops of held-out worlds (no prior: the whole +-16 m crop is searched)."""
    rng = np.random.default_rng(seed)
    model.eval()
    headings = headings_deg(spec.eval_headings)
    errors, heading_errors = [], []
    with torch.inference_mode():
        for start in range(0, samples, spec.batch):
            batch = sample_crops(worlds, min(spec.batch, samples - start), rng, crop_cells(model, spec),
                                 model.config.grid.size_cells)
            pos, head = volume_errors(forward_batch(model, batch, headings), batch["label_ab"], batch["heading"])
            errors.append(pos)
            heading_errors.append(head)
    model.train()
    e, h = np.concatenate(errors) * model.config.grid.cell_m, np.concatenate(heading_errors)
    return {"median_m": float(np.median(e)), "within_1m": float((e <= 1).mean()),
            "within_3m": float((e <= 3).mean()), "within_5m": float((e <= 5).mean()),
            "heading_median_deg": float(np.median(h)), "heading_within_5deg": float((h <= 5).mean())}


def train_pose(model: PoseNet, worlds: list[PoseWorld], spec: PoseTrainSpec,
               val_worlds: list[PoseWorld] | None = None,
               report: Callable[[dict], None] | None = None,
               more_worlds: Callable[[], list[PoseWorld]] | None = None) -> dict:
    """Train the heads in place; returns a summary (loss curve, evaluations, seconds). `more_worlds` is
    polled every 25 steps for worlds generated meanwhile."""
    torch.manual_seed(spec.seed)
    rng = np.random.default_rng(spec.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(params, lr=spec.lr, weight_decay=spec.weight_decay)

    budget_s = spec.budget_minutes * 60.0 if spec.budget_minutes else None

    def progress_at(step: int) -> float:
        if budget_s is not None:
            return min(1.0, (time.perf_counter() - start) / budget_s)
        return (step - spec.warmup_steps) / max(1, spec.steps - spec.warmup_steps)

    def lr_at(step: int) -> float:
        if step < spec.warmup_steps:
            return (step + 1) / spec.warmup_steps
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress_at(step)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, lr_at)
    model.train()
    curve, evaluations = [], []
    start, running = time.perf_counter(), None
    worlds = list(worlds)
    step = 0
    for step in range(spec.steps):
        if budget_s is not None and time.perf_counter() - start >= budget_s:
            break
        batch = sample_crops(worlds, spec.batch, rng, crop_cells(model, spec), model.config.grid.size_cells)
        headings = truth_aligned_headings(batch["heading"], spec.train_headings)
        loss = pose_nll(forward_batch(model, batch, headings), batch["label_ab"])
        if not torch.isfinite(loss):
            raise FloatingPointError(f"pose training loss is {loss.item()} at step {step}")
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        optimiser.step()
        scheduler.step()
        running = loss.item() if running is None else 0.95 * running + 0.05 * loss.item()
        if step % 25 == 0 or step == spec.steps - 1:
            curve.append({"step": step, "loss": round(running, 4), "seconds": round(time.perf_counter() - start, 1)})
            log.info("pose step %d loss %.3f (%.1f s)", step, running, time.perf_counter() - start)
            if report:
                report(curve[-1])
        if more_worlds is not None and step % 25 == 0:
            worlds.extend(more_worlds())
        if val_worlds and ((step + 1) % spec.eval_every == 0 or step == spec.steps - 1):
            result = {"step": step + 1, **evaluate_crops(model, val_worlds, spec, spec.eval_samples, seed=1)}
            evaluations.append(result)
            log.info("pose eval %s", result)
            if report:
                report(result)
    if val_worlds and (not evaluations or evaluations[-1]["step"] != step + 1):
        evaluations.append({"step": step + 1, **evaluate_crops(model, val_worlds, spec, spec.eval_samples, seed=1)})
        log.info("pose eval %s", evaluations[-1])
    model.eval()
    return {"spec": asdict(spec), "curve": curve, "evaluations": evaluations,
            "steps": step + 1, "seconds": round(time.perf_counter() - start, 1), "worlds": len(worlds),
            "photos": int(sum(w.fov_deg.shape[0] for w in worlds))}
