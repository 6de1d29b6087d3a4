"""The non-learned baseline: the photo's colours put on the flat ground by the camera model, matched to the
orthophoto by masked normalised cross-correlation over every (heading, position). No weights at all, so it is
the yardstick the learned PoseNet must beat, and it draws the BEV picture the app lays on the map."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from engine.model.pose_geometry import (
    BevGrid,
    correlate,
    depth_prior_logits,
    ground_depth_per_row,
    polar_to_bev_grid,
    rotate_templates,
    rotation_grids,
)

#: Sharp flat-ground depth: each ground pixel lands where its ray meets the ground.
_GEOMETRIC_LOG_SIGMA = 0.08
_COLOUR_STRIDE = 4


def colour_bev(images: Tensor, fov_deg: Tensor, grid: BevGrid, eye_height_m: Tensor,
               original_wh: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """(B, 3, H, W) photos in [0, 1] -> camera-frame ground-plane colours (B, 3, S, S) and the weight of
    evidence per cell (B, 1, S, S); rows at or above the horizon contribute nothing."""
    b, _, height, width = images.shape
    pooled = F.avg_pool2d(images.float(), _COLOUR_STRIDE)
    rows = pooled.shape[-2]
    ground = ground_depth_per_row(fov_deg.float(), (height, width), rows, eye_height_m.float(), original_wh)
    prior = depth_prior_logits(ground, grid, _GEOMETRIC_LOG_SIGMA)                     # (B, D, rows)
    sees_ground = torch.isfinite(ground)[:, None, :]
    depth = torch.where(sees_ground, torch.softmax(prior, dim=1), torch.zeros_like(prior))
    polar = torch.einsum("bdv,bcvu->bcdu", depth, pooled)
    weight = depth.sum(dim=2)[:, None, :, None].expand(b, 1, grid.depth_bins, pooled.shape[-1])
    sample_grid, visible = polar_to_bev_grid(fov_deg.float(), (height, width), grid)
    sampled = F.grid_sample(torch.cat([polar, weight], 1), sample_grid, mode="bilinear", padding_mode="zeros",
                            align_corners=False)
    weight = sampled[:, 3:] * visible
    colours = sampled[:, :3] / sampled[:, 3:].clamp(min=1e-6)
    return colours * (weight > 1e-3), (weight > 1e-3).float()


def colour_score_volume(bev_rgb: Tensor, bev_mask: Tensor, map_rgb: Tensor, headings: Tensor) -> Tensor:
    """Masked normalised cross-correlation of the ground-plane colours with the map (both on the BEV grid)
    for every heading and placement: (B, K, N-S+1, M-S+1) in [-1, 1], averaged over the three channels."""
    size = bev_rgb.shape[-1]
    grids = rotation_grids(headings, size)
    mask = rotate_templates(bev_mask, grids)                                          # (B, K, 1, S, S)
    colours = rotate_templates(bev_rgb, grids)                                        # (B, K, 3, S, S)
    mask = (mask > 0.5).float()
    count = mask.flatten(2).sum(-1).clamp(min=1.0)[..., None, None]                   # (B, K, 1, 1)
    mean = (colours * mask).flatten(3).sum(-1) / count[..., 0]                        # (B, K, 3)
    centred = (colours - mean[..., None, None]) * mask
    template_norm = centred.flatten(3).pow(2).sum(-1).clamp(min=1e-8).sqrt()          # (B, K, 3)
    scores = []
    for channel in range(map_rgb.shape[1]):
        m = map_rgb[:, channel:channel + 1]
        numerator = correlate(m, centred[:, :, channel:channel + 1])
        local_sum = correlate(m, mask)
        local_sq = correlate(m * m, mask)
        local_var = (local_sq - local_sum ** 2 / count).clamp(min=1e-6)
        scores.append(numerator / (template_norm[..., channel, None, None] * local_var.sqrt()))
    return torch.stack(scores, 0).mean(0)
