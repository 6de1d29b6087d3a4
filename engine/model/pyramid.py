"""Project backbone features at strides 8, 16, 32 to one width, with a top-down pass (FPN style).

The top-down sum gives the fine stride-8 map the semantics of the deeper layers, which the CAFR attention
needs: it compares every cell with a global descriptor. 1x1 convolutions only, to stay cheap on a CPU.
Levels nobody asks for are neither built nor computed (the ground branch only needs its coarse map).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn


class PyramidProjection(nn.Module):
    def __init__(self, in_channels: Sequence[int], strides: Sequence[int], width: int,
                 finest_stride: int) -> None:
        super().__init__()
        if finest_stride not in strides:
            raise ValueError(f"finest_stride {finest_stride} is not a pyramid stride {list(strides)}")
        self.strides = tuple(strides)
        self.first = self.strides.index(finest_stride)
        self.laterals = nn.ModuleList(nn.Conv2d(c, width, kernel_size=1) for c in in_channels[self.first:])
        self.width = width

    def forward(self, features: Sequence[Tensor],
                finest_stride: int) -> tuple[tuple[Tensor, ...], tuple[int, ...]]:
        """Backbone features (finest first) -> (maps, strides) from `finest_stride` to the coarsest."""
        first = self.strides.index(finest_stride)
        if first < self.first:
            raise ValueError(f"this pyramid was built down to stride {self.strides[self.first]}, "
                             f"not {finest_stride}")
        outputs: list[Tensor] = [self.laterals[-1](features[-1])]
        for index in range(len(self.strides) - 2, first - 1, -1):
            feature = features[index]
            coarser = F.interpolate(outputs[0], size=feature.shape[-2:], mode="nearest")
            outputs.insert(0, self.laterals[index - self.first](feature) + coarser)
        return tuple(outputs), self.strides[first:]
