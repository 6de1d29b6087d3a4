"""Camera-model geometry of ground-plane (BEV) pose estimation: computed, never learned.

Frames and conventions
- Ground feature map: (rows, cols) at `stride` image pixels; pixel centres at +0.5. The principal point is the
  image centre; fx comes from the horizontal FoV, fy from fx and the photo's own pixel aspect (square pixels in
  the original, whatever size the photo was resized to).
- Depth bins: forward horizontal distance z along the optical axis, log-spaced in [depth_min_m, depth_max_m].
- BEV template: S x S cells of `cell_m`, camera at the centre point, looking up (towards row 0). Cell (i, j) has
  forward z = (S/2 - i - 0.5) * cell and lateral x = (j + 0.5 - S/2) * cell (x to the right of the camera).
- Map frame: north-up rows (y down = south), columns east. A template rotated to compass heading h puts the
  camera's forward direction at h degrees clockwise from north.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class BevGrid:
    """Size and resolution of the bird's-eye view and its depth bins."""

    cell_m: float = 1.0
    size_cells: int = 96                # template side; the camera sits at its centre
    depth_bins: int = 36
    depth_min_m: float = 1.5
    #: 48 m reach: open fields leave the hedges and tree lines that place a photo beyond 32 m. 36 bins keep the
    #: log step of the earlier 32 bins over 1.5-32 m, so a model trained on those widens bin for bin.
    depth_max_m: float = 47.5

    @classmethod
    def reaching(cls, size_cells: int, cell_m: float = 1.0) -> BevGrid:
        """A grid of `size_cells` whose depth bins keep the log step of 32 bins over 1.5-32 m and reach as far
        as the template does (64 cells: those 32 bins; 96 cells: 36 bins to 47.5 m)."""
        step = math.log(32.0 / 1.5) / 31
        bins = 1 + math.floor(math.log(size_cells * cell_m / 2.0 / 1.5) / step + 1e-9)
        return cls(cell_m=cell_m, size_cells=size_cells, depth_bins=bins,
                   depth_max_m=round(1.5 * math.exp(step * (bins - 1)), 1))

    @property
    def radius_m(self) -> float:
        return self.size_cells * self.cell_m / 2.0

    def depths(self) -> Tensor:
        """(D,) bin centres in metres, log-spaced."""
        return torch.logspace(math.log10(self.depth_min_m), math.log10(self.depth_max_m), self.depth_bins)

    def to_dict(self) -> dict:
        return asdict(self)


def focal_lengths(fov_deg: Tensor, image_hw: tuple[int, int], original_wh: Tensor | None = None
                  ) -> tuple[Tensor, Tensor]:
    """(fx, fy) in pixels of the resized image, per photo. original_wh (B, 2): the photo's own size, so a
    4:3 photo squeezed into a 3:2 input keeps its true vertical focal length."""
    height, width = image_hw
    fx = (width / 2.0) / torch.tan(torch.deg2rad(fov_deg) / 2.0)
    if original_wh is None:
        return fx, fx
    sx = width / original_wh[:, 0].to(fx)
    sy = height / original_wh[:, 1].to(fx)
    return fx, fx * sy / sx


def ground_depth_per_row(fov_deg: Tensor, image_hw: tuple[int, int], feature_rows: int, eye_height_m: Tensor,
                         original_wh: Tensor | None = None, pitch_deg: Tensor | None = None) -> Tensor:
    """(B, rows) forward distance at which each feature row's ray meets flat ground; inf at or above the
    horizon. pitch_deg > 0 tilts the camera up."""
    height, _ = image_hw
    _, fy = focal_lengths(fov_deg, image_hw, original_wh)
    stride = height / feature_rows
    y = (torch.arange(feature_rows, dtype=fy.dtype) + 0.5) * stride - height / 2.0     # below the centre
    below = torch.atan2(y[None, :], fy[:, None])
    if pitch_deg is not None:
        below = below - torch.deg2rad(pitch_deg)[:, None]
    depth = eye_height_m[:, None] / torch.tan(below.clamp(min=1e-6))
    return torch.where(below > 1e-4, depth, torch.full_like(depth, math.inf))


def row_elevation(fov_deg: Tensor, image_hw: tuple[int, int], feature_rows: int,
                  original_wh: Tensor | None = None) -> Tensor:
    """(B, rows) angle of each feature row's ray below the optical axis, radians (negative above it)."""
    height, _ = image_hw
    _, fy = focal_lengths(fov_deg, image_hw, original_wh)
    y = (torch.arange(feature_rows, dtype=fy.dtype) + 0.5) * (height / feature_rows) - height / 2.0
    return torch.atan2(y[None, :], fy[:, None])


def depth_prior_logits(ground_depth: Tensor, grid: BevGrid, log_sigma: float = 0.35) -> Tensor:
    """(B, D, rows) log-Gaussian prior over depth bins from the flat-ground depth of each row; 0 for rows that
    see no ground (the network decides there)."""
    log_bins = torch.log(grid.depths().to(ground_depth))                    # (D,)
    finite = torch.isfinite(ground_depth)
    log_ground = torch.log(torch.where(finite, ground_depth, torch.ones_like(ground_depth)))
    prior = -0.5 * ((log_bins[None, :, None] - log_ground[:, None, :]) / log_sigma) ** 2
    return torch.where(finite[:, None, :], prior, torch.zeros_like(prior))


def polar_to_bev_grid(fov_deg: Tensor, image_hw: tuple[int, int], grid: BevGrid) -> tuple[Tensor, Tensor]:
    """Sampling grid (B, S, S, 2) into a polar map (B, C, D, cols) for F.grid_sample(align_corners=False),
    and the (B, 1, S, S) mask of cells inside the camera's view (FoV wedge, depth range, radius)."""
    _, width = image_hw
    fx, _ = focal_lengths(fov_deg, image_hw)
    s, cell = grid.size_cells, grid.cell_m
    centres = (torch.arange(s, dtype=fx.dtype) + 0.5 - s / 2.0) * cell
    forward = (-centres)[:, None].expand(s, s)          # row i: z = (S/2 - i - 0.5) * cell
    lateral = centres[None, :].expand(s, s)
    z = forward.clamp(min=1e-3)
    x_image = width / 2.0 + fx[:, None, None] * lateral[None] / z[None]              # (B, S, S) pixels
    log_min, log_max = math.log(grid.depth_min_m), math.log(grid.depth_max_m)
    bin_index = (torch.log(z) - log_min) / (log_max - log_min) * (grid.depth_bins - 1)   # bin centres
    gx = 2.0 * x_image / width - 1.0
    gy = (2.0 * (bin_index + 0.5) / grid.depth_bins - 1.0).expand_as(gx)
    inside = ((x_image >= 0) & (x_image <= width) & (forward[None] >= grid.depth_min_m)
              & (forward[None] <= grid.depth_max_m)
              & (torch.hypot(forward, lateral)[None] <= grid.radius_m))
    return torch.stack([gx, gy], dim=-1), inside[:, None].to(fx.dtype)


def headings_deg(count: int) -> Tensor:
    """(K,) evenly spaced compass headings starting at north."""
    return torch.arange(count, dtype=torch.float32) * (360.0 / count)


def rotation_grids(headings: Tensor, size: int) -> Tensor:
    """(K, S, S, 2) grids (or (B, K, S, S, 2) for (B, K) headings) that turn a camera-frame template
    (forward = up) into the north-up map frame at each compass heading: output offset (east e, north n)
    samples the template at forward = e sin h + n cos h, lateral = e cos h - n sin h."""
    if headings.dim() == 2:
        return rotation_grids(headings.flatten(), size).unflatten(0, headings.shape)
    theta = torch.deg2rad(headings.float())
    cos, sin = torch.cos(theta), torch.sin(theta)
    zeros = torch.zeros_like(cos)
    matrices = torch.stack([torch.stack([cos, sin, zeros], -1), torch.stack([-sin, cos, zeros], -1)], 1)
    return F.affine_grid(matrices, [len(headings), 1, size, size], align_corners=False)


def rotate_templates(template: Tensor, grids: Tensor) -> Tensor:
    """(B, C, S, S) camera-frame templates -> (B, K, C, S, S) north-up templates at each heading. grids:
    (K, S, S, 2) shared by the batch, or (B, K, S, S, 2) with headings of each photo's own."""
    b, c, s, _ = template.shape
    k = grids.shape[-4]
    grids = grids.to(template)
    grids = grids.repeat(b, 1, 1, 1) if grids.dim() == 4 else grids.reshape(b * k, s, s, 2)
    tiled = template[:, None].expand(b, k, c, s, s).reshape(b * k, c, s, s)
    rotated = F.grid_sample(tiled, grids, mode="bilinear", padding_mode="zeros", align_corners=False)
    return rotated.reshape(b, k, c, s, s)


def correlate(map_features: Tensor, templates: Tensor) -> Tensor:
    """Score of every (heading, placement): (B, C, N, M) map x (B, K, C, S, S) templates -> (B, K, N-S+1,
    M-S+1), where out[k, a, b] = sum T_k[c, i, j] * map[c, a + i, b + j]. The camera of placement (a, b) sits
    at map point (col b + S/2, row a + S/2). Computed with FFTs (sum over channels in the frequency domain)."""
    _, _, n, m = map_features.shape
    s = templates.shape[-1]
    spectrum = torch.fft.rfft2(map_features.float(), s=(n, m))                     # (B, C, N, M/2+1)
    kernel = torch.fft.rfft2(templates.float(), s=(n, m))                           # (B, K, C, N, M/2+1)
    product = torch.einsum("bcuv,bkcuv->bkuv", spectrum, kernel.conj())
    full = torch.fft.irfft2(product, s=(n, m))
    return full[..., : n - s + 1, : m - s + 1]
