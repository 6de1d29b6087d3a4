"""Warm start onto a longer BEV: the heads carry over, depth bins matched by depth."""
import pytest
import torch

from engine.model.pose_geometry import BevGrid
from engine.model.pose_net import PoseConfig, PoseNet
from engine.train.pose_warm_start import nearest_depth_bins, warm_started

SHORT = BevGrid.reaching(64)      # the grid of the models shipped before


def test_the_longer_grid_keeps_the_short_grids_bins_and_adds_farther_ones():
    long_grid = BevGrid()
    assert SHORT == BevGrid(size_cells=64, depth_bins=32, depth_max_m=32.0) and long_grid == BevGrid.reaching(96)
    assert long_grid.radius_m == 48.0 and long_grid.depth_max_m <= long_grid.radius_m
    torch.testing.assert_close(long_grid.depths()[:32], SHORT.depths(), rtol=2e-3, atol=0.0)
    assert nearest_depth_bins(SHORT, long_grid).tolist() == [*range(32), 31, 31, 31, 31]


def test_a_short_grid_model_continues_on_the_long_grid(tmp_path):
    torch.manual_seed(0)
    short = PoseNet(PoseConfig(grid=SHORT))
    with torch.no_grad():
        short.depth_prior_scale.fill_(3.0)
    path = short.save(tmp_path / "short.safetensors")
    wide = warm_started(path, BevGrid())
    assert wide.config.grid == BevGrid() and wide.training
    assert wide.depth_prior_scale.item() == 3.0
    old_last, new_last = short.ground_head[-1], wide.ground_head[-1]
    c = short.config.feature_dim
    assert new_last.weight.shape[0] == c + 36 + 1
    torch.testing.assert_close(new_last.weight[:c + 32], old_last.weight[:c + 32])       # features, 32 bins
    for far in range(c + 32, c + 36):
        torch.testing.assert_close(new_last.bias[far], old_last.bias[c + 31])          # the farthest old bin
    torch.testing.assert_close(new_last.bias[-1], old_last.bias[-1])                   # void
    torch.testing.assert_close(wide.map_head[0][0].weight, short.map_head[0][0].weight)


def test_a_grid_of_other_cells_cannot_be_warm_started(tmp_path):
    path = PoseNet(PoseConfig(grid=SHORT)).save(tmp_path / "short.safetensors")
    with pytest.raises(ValueError, match="short.safetensors"):
        warm_started(path, BevGrid(cell_m=2.0))
