"""Warm start: a trained PoseNet's heads continued on another BEV grid.

Every learned layer is independent of the template's size except the ground head's last convolution, whose
outputs are the matching features, one logit per depth bin and the void bin. A new grid's depth bin takes
the weights of the old bin nearest to it in log depth (bins beyond the old reach copy the farthest one,
so far ground starts as the old model saw its farthest ground); features and void carry over unchanged.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from engine.model.pose_geometry import BevGrid
from engine.model.pose_net import PoseNet


def nearest_depth_bins(old: BevGrid, new: BevGrid) -> torch.Tensor:
    """(new.depth_bins,) index of the old bin nearest in log depth to each new bin."""
    distance = (torch.log(new.depths())[:, None] - torch.log(old.depths())[None, :]).abs()
    return distance.argmin(dim=1)


def warm_started(path: str | Path, grid: BevGrid) -> PoseNet:
    """The PoseNet at `path`, its heads carried onto `grid` (the same model when the grid is its own)."""
    trained = PoseNet.load(path)
    old_grid = trained.config.grid
    if old_grid == grid:
        return trained.train()
    if old_grid.cell_m != grid.cell_m:
        raise ValueError(f"{path}: BEV cell {old_grid.cell_m} m cannot warm-start a grid of {grid.cell_m} m "
                         "cells (the map head's resolution would change)")
    model = PoseNet(replace(trained.config, grid=grid))
    state = trained.trainable_state()
    c, old_d = trained.config.feature_dim, old_grid.depth_bins
    rows = torch.cat([torch.arange(c), c + nearest_depth_bins(old_grid, grid), torch.tensor([c + old_d])])
    last = _last_conv_prefix(model)
    for name in (f"{last}.weight", f"{last}.bias"):
        state[name] = state[name][rows].clone()
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or any(not key.startswith(("ground_trunk.", "map_trunk.")) for key in missing):
        raise ValueError(f"{path}: heads do not fit the PoseNet on the new grid ({unexpected or missing})")
    model.metadata = trained.metadata
    return model.train()


def _last_conv_prefix(model: PoseNet) -> str:
    return f"ground_head.{len(model.ground_head) - 1}"
