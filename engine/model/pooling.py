"""Global descriptor: GeM pooling with a learnable exponent, projection, L2 normalisation."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class GeM(nn.Module):
    """Generalised mean pooling over H, W: (mean x^p)^(1/p) with learnable p (3 -> between mean and max)."""

    def __init__(self, p_init: float = 3.0, eps: float = 1e-6) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.tensor(float(p_init)))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        # powers of small activations underflow in half precision, so pool in float32
        with torch.autocast(device_type=x.device.type, enabled=False):
            p = self.p.float()
            pooled = x.float().clamp(min=self.eps).pow(p).mean(dim=(-2, -1))
            return pooled.pow(1.0 / p)


class DescriptorHead(nn.Module):
    """Stride-32 features -> 1x1 conv + BN + ReLU6 -> GeM -> linear -> unit-length descriptor.

    The conv + BN has the shape of EfficientNet's ImageNet `conv_head`/`bn2`, so it can start pretrained.
    """

    def __init__(self, in_channels: int, head_channels: int, descriptor_dim: int,
                 p_init: float = 3.0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, head_channels, kernel_size=1, bias=False)
        self.norm = nn.BatchNorm2d(head_channels)
        self.pool = GeM(p_init)
        self.project = nn.Linear(head_channels, descriptor_dim)

    def forward(self, features: Tensor) -> Tensor:
        pooled = self.pool(F.relu6(self.norm(self.conv(features))))
        return F.normalize(self.project(pooled).float(), dim=-1)
