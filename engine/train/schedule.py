"""Learning-rate schedule: linear warm-up, then cosine decay, evaluated per optimiser step.

The rate is a pure function of the step, so the schedule's whole state is one integer and a resumed run
continues on the same curve.
"""
from __future__ import annotations

import math

import torch


def cosine_warmup_lr(step: int, total_steps: int, warmup_steps: int, base_lr: float,
                     min_lr_ratio: float = 0.0) -> float:
    """Rate for optimiser step `step` (0-based): (step + 1) / warmup of base_lr during warm-up, then a
    half cosine from base_lr towards base_lr * min_lr_ratio, which it reaches at step total_steps."""
    if warmup_steps > 0 and step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    # the last step still learns: progress reaches 1 one step after the end
    decay_steps = max(1, total_steps - warmup_steps)
    progress = min(1.0, max(0.0, (step - warmup_steps) / decay_steps))
    floor = base_lr * min_lr_ratio
    return floor + (base_lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


class CosineWarmupSchedule:
    """Sets every parameter group's lr (times its `lr_scale`, default 1) before each optimiser step."""

    def __init__(self, optimizer: torch.optim.Optimizer, base_lr: float, total_steps: int, warmup_steps: int,
                 min_lr_ratio: float = 0.0) -> None:
        self.optimizer = optimizer
        self.base_lr = float(base_lr)
        self.total_steps = max(1, int(total_steps))
        self.warmup_steps = max(0, int(warmup_steps))
        self.min_lr_ratio = float(min_lr_ratio)
        self.step_count = 0
        self.apply()

    def lr(self, step: int | None = None) -> float:
        step = self.step_count if step is None else step
        return cosine_warmup_lr(step, self.total_steps, self.warmup_steps, self.base_lr, self.min_lr_ratio)

    def apply(self) -> float:
        rate = self.lr()
        for group in self.optimizer.param_groups:
            group["lr"] = rate * group.get("lr_scale", 1.0)
        return rate

    def step(self) -> float:
        """Advance one optimiser step; returns the rate the next step uses."""
        self.step_count += 1
        return self.apply()

    def state_dict(self) -> dict:
        return {"step_count": self.step_count, "total_steps": self.total_steps,
                "warmup_steps": self.warmup_steps}

    def load_state_dict(self, state: dict) -> None:
        self.step_count = int(state["step_count"])
        self.apply()
