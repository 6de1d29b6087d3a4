"""Ground-plane geometry of the pose volume: camera model, BEV sampling, rotation and FFT correlation."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.model.pose_geometry import (
    BevGrid,
    correlate,
    focal_lengths,
    ground_depth_per_row,
    headings_deg,
    polar_to_bev_grid,
    rotate_templates,
    rotation_grids,
)


def test_ground_depth_follows_the_pinhole_model():
    fov, hw = torch.tensor([90.0]), (200, 300)
    depth = ground_depth_per_row(fov, hw, 20, torch.tensor([1.5]))[0]
    fy = 150.0                                           # 90 degrees over 300 px: f = 150 px
    for row in (10, 14, 19):
        below = math.atan(((row + 0.5) * 10 - 100) / fy)
        assert depth[row].item() == pytest.approx(1.5 / math.tan(below), rel=1e-5)
    assert torch.isinf(depth[:10]).all()                 # at and above the horizon: no ground


def test_vertical_focal_length_keeps_the_photo_s_own_aspect():
    # a 4:3 photo (400 x 300) squeezed into a 3:2 input (300 x 200): fy = fx * (200/300) / (300/400)
    fx, fy = focal_lengths(torch.tensor([60.0]), (200, 300), torch.tensor([[400.0, 300.0]]))
    assert fx.item() == pytest.approx(150.0 / math.tan(math.radians(30.0)))
    assert fy.item() == pytest.approx(fx.item() * (200 / 300) / (300 / 400))


def test_bev_cells_sample_the_column_of_their_bearing_and_the_wedge_has_the_sector_area():
    grid = BevGrid(cell_m=1.0, size_cells=64, depth_bins=16, depth_min_m=1.0, depth_max_m=32.0)
    fov, hw = torch.tensor([60.0]), (192, 288)
    sample, visible = polar_to_bev_grid(fov, hw, grid)
    fx = 144.0 / math.tan(math.radians(30.0))
    i, j = 32 - 10 - 1, 32 + 3                            # forward 10.5 m, lateral 3.5 m
    x_image = 144.0 + fx * 3.5 / 10.5
    assert sample[0, i, j, 0].item() == pytest.approx(2 * x_image / 288 - 1, abs=1e-5)
    assert visible[0, 0, i, j] == 1 and visible[0, 0, 40, 32] == 0       # behind the camera: unseen
    sector = math.pi * 32 ** 2 * 60 / 360 - math.pi * 1.0 ** 2 * 60 / 360
    assert visible.sum().item() == pytest.approx(sector, rel=0.05)


@pytest.mark.parametrize("heading", [0.0, 33.75, 90.0, 213.75])
def test_a_template_cut_from_the_map_is_found_at_its_pose(heading):
    torch.manual_seed(0)
    features = F.avg_pool2d(torch.randn(1, 4, 164, 164), 3, 1, 1)      # smooth random map features
    s, (row, col) = 32, (70, 58)                                         # camera at map point (col, row)
    c = torch.arange(s) + 0.5 - s / 2
    forward, lateral = -c[:, None].expand(s, s), c[None, :].expand(s, s)
    h = math.radians(heading)
    east = lateral * math.cos(h) + forward * math.sin(h)
    north = -lateral * math.sin(h) + forward * math.cos(h)
    g = torch.stack([2 * (col + east) / 164 - 1, 2 * (row - north) / 164 - 1], -1)[None]
    template = F.grid_sample(features, g, align_corners=False) * ((forward > 0) & (forward.abs() > lateral.abs()))
    window = features[:, :, row - s // 2 - 20: row - s // 2 - 20 + 80, col - s // 2 - 9: col - s // 2 - 9 + 80]
    headings = headings_deg(32)
    volume = correlate(window, rotate_templates(template, rotation_grids(headings, s)))[0]
    k, a, b = np.unravel_index(int(volume.argmax()), volume.shape)
    assert headings[k].item() == pytest.approx(heading)
    assert (a, b) == (20, 9)


def test_correlate_matches_a_direct_sum():
    torch.manual_seed(1)
    m, t = torch.randn(2, 3, 20, 24), torch.randn(2, 5, 3, 8, 8)
    out = correlate(m, t)
    assert out.shape == (2, 5, 13, 17)
    direct = (t[1, 2] * m[1, :, 4:12, 6:14]).sum()
    assert out[1, 2, 4, 6].item() == pytest.approx(direct.item(), rel=1e-4, abs=1e-4)


def test_per_photo_headings_rotate_each_template_by_its_own_angles():
    torch.manual_seed(0)
    templates = torch.rand(2, 3, 16, 16)
    own = torch.tensor([[0.0, 90.0], [45.0, 200.0]])
    rotated = rotate_templates(templates, rotation_grids(own, 16))
    assert rotated.shape == (2, 2, 3, 16, 16)
    for b in range(2):
        shared = rotate_templates(templates[b:b + 1], rotation_grids(own[b], 16))[0]
        torch.testing.assert_close(rotated[b], shared)
