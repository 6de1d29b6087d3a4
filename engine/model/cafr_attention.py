"""CAFR multi-scale cross-attention and coordinate-weighted regression (CWR).

One query per pair: the unit ground descriptor. Keys: satellite cells of each level projected to the
descriptor space, plus a learned position code (separate row and column tables per level), L2-normalised.
Scores are cosine similarities divided by a temperature; a softmax over all cells gives the attention map,
and its weighted mean of cell centres is the CWR point: where on the tile the photo's content lies.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engine.model.encoder import ViewEmbedding

#: Strides the backbone pyramid provides; coarser attention levels average-pool the stride-32 map.
_PYRAMID_TOP_STRIDE = 32


@dataclass
class AttentionResult:
    """CAFR attention of each ground query over its satellite tile, finest level first.

    maps: per level (B, h_l, w_l) softmax attention, each map sums to 1.
    points_cells: (B, L, 2) CWR points (x, y) in each level's cell units (cell centres at +0.5).
    points_px: (B, L, 2) the same points in satellite-tile pixels (x right, y down).
    cell_size_px: (L, 2) tile pixels per cell (x, y); equals the stride when the tile divides evenly.
    """

    maps: list[Tensor]
    points_cells: Tensor
    points_px: Tensor
    cell_size_px: Tensor
    strides: tuple[int, ...]


def weighted_cell_centres(attention: Tensor) -> Tensor:
    """Attention (B, h, w) -> attention-weighted mean of cell centres (B, 2) as (x, y) in cell units."""
    _, rows, cols = attention.shape
    y = torch.arange(rows, device=attention.device, dtype=attention.dtype) + 0.5
    x = torch.arange(cols, device=attention.device, dtype=attention.dtype) + 0.5
    return torch.stack(((attention.sum(dim=1) * x).sum(dim=1), (attention.sum(dim=2) * y).sum(dim=1)), dim=-1)


class CafrAttention(nn.Module):
    def __init__(self, pyramid_dim: int, descriptor_dim: int, strides: Sequence[int],
                 satellite_hw: tuple[int, int], temperature: float, learn_temperature: bool) -> None:
        super().__init__()
        self.strides = tuple(strides)
        self.cell_projections = nn.ModuleList(nn.Linear(pyramid_dim, descriptor_dim) for _ in self.strides)
        self.row_tables = nn.ParameterList()
        self.col_tables = nn.ParameterList()
        for stride in self.strides:
            rows, cols = (math.ceil(size / stride) for size in satellite_hw)
            self.row_tables.append(nn.Parameter(torch.randn(2 * (rows // 2) + 1, descriptor_dim) * 0.02))
            self.col_tables.append(nn.Parameter(torch.randn(2 * (cols // 2) + 1, descriptor_dim) * 0.02))
        log_temperature = torch.tensor(math.log(temperature))
        if learn_temperature:
            self.log_temperature = nn.Parameter(log_temperature)
        else:
            self.register_buffer("log_temperature", log_temperature)

    @property
    def temperature(self) -> Tensor:
        return self.log_temperature.exp()

    def level_maps(self, satellite: ViewEmbedding) -> list[Tensor]:
        """Satellite feature maps of every attention level, finest first."""
        maps = []
        for stride in self.strides:
            if stride <= _PYRAMID_TOP_STRIDE:
                maps.append(satellite.level(stride))
            else:
                top = satellite.level(_PYRAMID_TOP_STRIDE)
                factor = stride // _PYRAMID_TOP_STRIDE
                size = (math.ceil(top.shape[-2] / factor), math.ceil(top.shape[-1] / factor))
                maps.append(F.adaptive_avg_pool2d(top, size))
        return maps

    def position_code(self, level: int, rows: int, cols: int, device: torch.device) -> Tensor:
        """(rows * cols, D): row code + column code, offsets from the map centre clamped to the table."""
        row_table, col_table = self.row_tables[level], self.col_tables[level]
        row_radius, col_radius = row_table.shape[0] // 2, col_table.shape[0] // 2
        rows_from_centre = torch.arange(rows, device=device) - rows // 2
        cols_from_centre = torch.arange(cols, device=device) - cols // 2
        row_index = rows_from_centre.clamp(-row_radius, row_radius) + row_radius
        col_index = cols_from_centre.clamp(-col_radius, col_radius) + col_radius
        return (row_table[row_index][:, None, :] + col_table[col_index][None, :, :]).reshape(rows * cols, -1)

    def forward(self, ground_descriptor: Tensor, satellite: ViewEmbedding) -> AttentionResult:
        """ground_descriptor (B, D) or (1, D) (broadcast over the satellite batch) -> AttentionResult."""
        tile_h, tile_w = satellite.image_hw
        satellite_batch = satellite.descriptor.shape[0]
        if ground_descriptor.dim() != 2 or ground_descriptor.shape[0] not in (1, satellite_batch):
            raise ValueError(f"ground descriptor {tuple(ground_descriptor.shape)} does not pair with "
                             f"{satellite_batch} satellite tiles")
        maps, points, sizes = [], [], []
        for level, cells in enumerate(self.level_maps(satellite)):
            batch, _, rows, cols = cells.shape
            # cosines / 0.005 reach +-200: bf16 rounding would be worth ~1 logit, so project and score in
            # float32 (a few MFLOPs per tile)
            with torch.autocast(device_type=cells.device.type, enabled=False):
                keys = self.cell_projections[level](cells.float().flatten(2).transpose(1, 2))
                keys = keys + self.position_code(level, rows, cols, cells.device).float()
                keys = F.normalize(keys, dim=-1)
                query = F.normalize(ground_descriptor.float(), dim=-1).expand(batch, -1)
                scores = torch.einsum("bd,bnd->bn", query, keys) / self.temperature.float()
                attention = scores.softmax(dim=-1).view(batch, rows, cols)
            maps.append(attention)
            points.append(weighted_cell_centres(attention))
            sizes.append((tile_w / cols, tile_h / rows))
        points_cells = torch.stack(points, dim=1)
        cell_size = torch.tensor(sizes, dtype=points_cells.dtype, device=points_cells.device)
        return AttentionResult(maps, points_cells, points_cells * cell_size, cell_size, self.strides)
