"""Fine-grained camera localisation inside a matched satellite tile (seed 002, extended with heading).

1. Fusion (the seed): ground tokens are queries, satellite tokens keys and values; softmax(Q K^T) V mixes the
   satellite content (and, through the values, its positions) into every ground token.
2. Scoring: the camera position is a place on the tile, so each of the N x N grid cells is a query token
   (its k x k satellite sub-cells side by side + the cell's position) that reads the fused ground tokens.
   One shared small head then scores every cell (classification), regresses the offset inside the cell
   (the sub-cell layout tells where inside), and the heading.
   Sharing the head over cells keeps the grid translation-equivariant: no cell has its own output weights
   that only the training samples landing there would teach.
Positions use 2-D sine-cosine codes of tile-normalised coordinates, so satellite tokens and grid cells of
different resolutions share one coordinate frame.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass
class FineLocalization:
    """Camera position inside each satellite tile.

    position_px: (B, 2) camera (x, y) in tile pixels: (argmax cell + offset) * cell size.
    probabilities: (B, N, N) probability of each grid cell (row = y) holding the camera.
    cell_logits: (B, N*N) raw scores, row-major.
    offsets: (B, N*N, 2) position (x, y) inside each cell in [0, 1].
    heading_vectors: (B, N*N, 2) unit (sin, cos) of the compass heading predicted at each cell.
    heading_deg: (B,) compass heading (clockwise from north, [0, 360)) at the chosen cell.
    cell_size_px: (x, y) tile pixels per grid cell.
    """

    position_px: Tensor
    probabilities: Tensor
    cell_logits: Tensor
    offsets: Tensor
    heading_vectors: Tensor
    heading_deg: Tensor
    cell_size_px: tuple[float, float]
    grid: int


def sincos_position_code(rows: int, cols: int, dim: int, device: torch.device) -> Tensor:
    """(rows * cols, dim) sine-cosine code of cell centres in [0, 1] x [0, 1]; half the channels per axis."""
    quarter = dim // 4
    # 0.5 to 64 cycles across the image: coarse codes tell halves apart, fine ones neighbouring tokens
    frequencies = 2.0 * math.pi * torch.logspace(-1.0, 6.0, quarter, base=2.0, device=device)
    y = (torch.arange(rows, device=device, dtype=torch.float32) + 0.5) / rows
    x = (torch.arange(cols, device=device, dtype=torch.float32) + 0.5) / cols
    y_angles = (y[:, None] * frequencies)[:, None, :].expand(rows, cols, quarter)
    x_angles = (x[:, None] * frequencies)[None, :, :].expand(rows, cols, quarter)
    code = torch.cat((x_angles.sin(), x_angles.cos(), y_angles.sin(), y_angles.cos()), dim=-1)
    return F.pad(code, (0, dim - 4 * quarter)).reshape(rows * cols, dim)


class _FeedForward(nn.Sequential):
    def __init__(self, dim: int, ratio: int = 2) -> None:
        super().__init__(nn.LayerNorm(dim), nn.Linear(dim, dim * ratio), nn.GELU(),
                         nn.Linear(dim * ratio, dim))


class FineLocalizationHead(nn.Module):
    def __init__(self, in_channels: int, dim: int, heads: int, grid: int, cell_subdivisions: int = 2) -> None:
        super().__init__()
        self.grid = grid
        self.subdivisions = cell_subdivisions
        self.ground_in = nn.Sequential(nn.Linear(in_channels, dim), nn.LayerNorm(dim))
        self.satellite_in = nn.Sequential(nn.Linear(in_channels, dim), nn.LayerNorm(dim))
        self.cell_in = nn.Sequential(nn.Linear(in_channels * cell_subdivisions ** 2, dim), nn.LayerNorm(dim))
        self.fusion = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.fusion_ffn = _FeedForward(dim)
        self.cell_norm = nn.LayerNorm(dim)
        self.cell_attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.cell_ffn = _FeedForward(dim)
        self.out_norm = nn.LayerNorm(dim)
        self.cell_score = nn.Linear(dim, 1, bias=False)  # a bias shared by all cells cancels in the softmax
        self.cell_offset = nn.Linear(dim, 2)
        self.cell_heading = nn.Linear(dim, 2)

    def forward(self, ground_map: Tensor, satellite_map: Tensor,
                tile_hw: tuple[int, int]) -> FineLocalization:
        """ground_map (B or 1, C, hg, wg), satellite_map (B, C, hs, ws); tile_hw: satellite input (H, W)."""
        batch = satellite_map.shape[0]
        if ground_map.shape[0] not in (1, batch):
            raise ValueError(f"ground batch {ground_map.shape[0]} does not match satellite batch {batch}")
        ground = self._tokens(self.ground_in, ground_map).expand(batch, -1, -1)
        satellite = self._tokens(self.satellite_in, satellite_map)
        fused = ground + self.fusion(ground, satellite, satellite, need_weights=False)[0]
        fused = fused + self.fusion_ffn(fused)

        cells = self._tokens(self.cell_in, self._cell_features(satellite_map))
        query = self.cell_norm(cells)
        cells = cells + self.cell_attention(query, fused, fused, need_weights=False)[0]
        cells = self.out_norm(cells + self.cell_ffn(cells))

        logits = self.cell_score(cells).squeeze(-1).float()
        offsets = torch.sigmoid(self.cell_offset(cells).float())
        heading_vectors = F.normalize(self.cell_heading(cells).float(), dim=-1, eps=1e-6)
        return self._decode(logits, offsets, heading_vectors, tile_hw)

    def _cell_features(self, satellite_map: Tensor) -> Tensor:
        """(B, C * k * k, N, N): each grid cell keeps its k x k sub-cells side by side instead of averaging
        them, so the cell token knows where inside the cell things are (the offset regression needs that)."""
        k = self.subdivisions
        return F.pixel_unshuffle(F.adaptive_avg_pool2d(satellite_map, self.grid * k), k)

    def _tokens(self, project: nn.Module, feature_map: Tensor) -> Tensor:
        _, _, rows, cols = feature_map.shape
        tokens = project(feature_map.flatten(2).transpose(1, 2))
        return tokens + sincos_position_code(rows, cols, tokens.shape[-1], tokens.device).to(tokens.dtype)

    def _decode(self, logits: Tensor, offsets: Tensor, heading_vectors: Tensor,
                tile_hw: tuple[int, int]) -> FineLocalization:
        batch, grid = logits.shape[0], self.grid
        cell_w, cell_h = tile_hw[1] / grid, tile_hw[0] / grid
        best = logits.argmax(dim=-1)
        rows, cols = best // grid, best % grid
        index = torch.arange(batch, device=logits.device)
        best_offset = offsets[index, best]
        position = torch.stack(((cols + best_offset[:, 0]) * cell_w, (rows + best_offset[:, 1]) * cell_h), -1)
        sin, cos = heading_vectors[index, best].unbind(-1)
        heading = torch.rad2deg(torch.atan2(sin, cos)).remainder(360.0)
        heading = torch.where(heading >= 360.0, heading - 360.0, heading)  # -tiny % 360 rounds to 360
        return FineLocalization(position, logits.softmax(dim=-1).view(batch, grid, grid), logits, offsets,
                                heading_vectors, heading, (cell_w, cell_h), grid)
