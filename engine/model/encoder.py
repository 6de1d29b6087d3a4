"""One view branch: normalise RGB -> backbone pyramid -> global descriptor (+ projected pyramid maps)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from engine.model.backbone import PyramidBackbone, head_state_from
from engine.model.pooling import DescriptorHead
from engine.model.pyramid import PyramidProjection


@dataclass
class ViewEmbedding:
    """What a branch produces for a batch of images.

    descriptor: (B, descriptor_dim) float32, unit length; retrieval is a dot product of these.
    pyramid: projected maps (B, pyramid_dim, H/s, W/s) for `strides`, finest first; None when not requested.
    image_hw: (height, width) of the input images in pixels.
    """

    descriptor: Tensor
    pyramid: tuple[Tensor, ...] | None
    strides: tuple[int, ...]
    image_hw: tuple[int, int]

    def level(self, stride: int) -> Tensor:
        if self.pyramid is None or stride not in self.strides:
            raise ValueError(f"this embedding has no stride-{stride} map (pyramid strides: {self.strides})")
        return self.pyramid[self.strides.index(stride)]


class ViewEncoder(nn.Module):
    def __init__(self, backbone_name: str, backbone_kwargs: dict, pyramid_dim: int, finest_stride: int,
                 head_channels: int, descriptor_dim: int, gem_p_init: float, mean: tuple[float, ...],
                 std: tuple[float, ...]) -> None:
        super().__init__()
        self.backbone = PyramidBackbone(backbone_name, backbone_kwargs)
        self.pyramid = PyramidProjection(self.backbone.channels, self.backbone.strides, pyramid_dim,
                                         finest_stride)
        self.head = DescriptorHead(self.backbone.channels[-1], head_channels, descriptor_dim, gem_p_init)
        # normalisation constants come from the config; not saved as weights
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def load_pretrained(self, state: dict[str, Tensor], source: str) -> bool:
        """Backbone weights (required) and, when the file has a fitting one, the descriptor conv head.

        Returns whether the head was initialised from the file.
        """
        self.backbone.load_pretrained(state, source)
        head = head_state_from(state, self.head.conv.in_channels, self.head.conv.out_channels)
        if head:
            self.head.load_state_dict(head, strict=False)
        return bool(head)

    def forward(self, images: Tensor, finest_stride: int | None) -> ViewEmbedding:
        """RGB images in [0, 1] (or uint8) -> descriptor, and pyramid maps down to `finest_stride` if set."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"expected RGB images shaped (B, 3, H, W), got {tuple(images.shape)}")
        if not images.is_floating_point():
            images = images.float() / 255.0
        x = (images.to(self.mean.dtype) - self.mean) / self.std
        # channels_last: faster convolutions on CUDA, and ~1.5x on CPU for inference (CPU backward is slower)
        if x.is_cuda or not self.training:
            x = x.contiguous(memory_format=torch.channels_last)
        features = self.backbone(x)
        descriptor = self.head(features[-1])
        pyramid, strides = self.pyramid(features, finest_stride) if finest_stride else (None, ())
        return ViewEmbedding(descriptor, pyramid, strides, (int(images.shape[-2]), int(images.shape[-1])))
