"""CrossViewNet, the model the engine uses: retrieval descriptors, CAFR attention, fine localisation."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import timm
import torch
from torch import Tensor, nn

from engine.model.backbone import PYRAMID_STRIDES, load_backbone_state_dict
from engine.model.cafr_attention import AttentionResult, CafrAttention
from engine.model.checkpoint import (
    CheckpointError,
    read_checkpoint,
    read_checkpoint_metadata,
    write_checkpoint,
)
from engine.model.config import ModelConfig
from engine.model.device import best_device, inference_autocast
from engine.model.encoder import ViewEmbedding, ViewEncoder
from engine.model.fine_head import FineLocalization, FineLocalizationHead

ARCHITECTURE = "CrossViewNet"


@dataclass
class CrossViewOutput:
    """Everything a training step needs for a batch of matched pairs (row i of each view belongs together)."""

    ground: ViewEmbedding
    satellite: ViewEmbedding
    attention: AttentionResult
    fine: FineLocalization
    logit_scale: Tensor


class CrossViewNet(nn.Module):
    """Ground photo and satellite tile encoders with CAFR attention and a fine-localisation head.

    Images enter as RGB float tensors in [0, 1] shaped (B, 3, H, W) (uint8 is accepted and scaled); the
    model normalises them itself. Default sizes: ModelConfig.ground_hw / satellite_hw; other sizes work.
    The public inference methods follow the caller's grad mode (wrap them in torch.inference_mode()) and
    use autocast on CUDA.
    """

    def __init__(self, config: ModelConfig | None = None, *, load_backbone_weights: bool = True) -> None:
        super().__init__()
        self.config = config = config or ModelConfig()
        mean, std = config.resolved_mean_std()
        self._satellite_finest = min(min(config.attention_strides), config.fine_satellite_stride)
        self._ground_finest = config.fine_ground_stride
        if min(config.attention_strides) not in PYRAMID_STRIDES:
            raise ValueError(f"the finest attention stride must be one of {PYRAMID_STRIDES}")

        def make_encoder(finest: int) -> ViewEncoder:
            return ViewEncoder(config.backbone, config.resolved_backbone_kwargs(), config.pyramid_dim, finest,
                               config.descriptor_head_channels, config.descriptor_dim, config.gem_p_init,
                               mean, std)

        if config.shared_backbone:
            self.encoders = nn.ModuleList([make_encoder(min(self._satellite_finest, self._ground_finest))])
        else:
            self.encoders = nn.ModuleList([make_encoder(self._ground_finest),
                                           make_encoder(self._satellite_finest)])
        self.attention = CafrAttention(config.pyramid_dim, config.descriptor_dim, config.attention_strides,
                                       config.satellite_hw, config.attention_temperature,
                                       config.learn_attention_temperature)
        self.fine_head = FineLocalizationHead(config.pyramid_dim, config.fine_dim, config.fine_heads,
                                              config.fine_grid, config.fine_cell_subdivisions)
        self.log_logit_scale = nn.Parameter(torch.tensor(math.log(config.logit_scale_init)))
        #: metadata of the checkpoint this model was loaded from (training summary, ...); {} when fresh
        self.metadata: dict[str, Any] = {}
        self.pretrained_head = False
        if load_backbone_weights:
            state = load_backbone_state_dict(config)
            if state is not None:
                for encoder in self.encoders:
                    self.pretrained_head = encoder.load_pretrained(state, str(config.backbone_weights))

    # ------------------------------------------------------------ parts
    @property
    def ground_encoder(self) -> ViewEncoder:
        return self.encoders[0]

    @property
    def satellite_encoder(self) -> ViewEncoder:
        return self.encoders[-1]

    @property
    def device(self) -> torch.device:
        return self.log_logit_scale.device

    def logit_scale(self) -> Tensor:
        """InfoNCE logit scale exp(s), clamped at logit_scale_max so the logits cannot blow up."""
        return self.log_logit_scale.exp().clamp(max=self.config.logit_scale_max)

    # ------------------------------------------------------------ inference API
    def embed_ground(self, images: Tensor, with_pyramid: bool = True) -> ViewEmbedding:
        """Ground photos (B, 3, H, W) -> unit descriptors (B, D), plus the map the fine head needs."""
        with inference_autocast(self.device):
            return self.ground_encoder(images.to(self.device), self._ground_finest if with_pyramid else None)

    def embed_satellite(self, images: Tensor, with_pyramid: bool = True) -> ViewEmbedding:
        """Satellite tiles (B, 3, H, W) -> unit descriptors (B, D), plus the pyramid for attend/localize_fine.

        Gallery indexing only needs the descriptor: with_pyramid=False skips the pyramid projection.
        """
        with inference_autocast(self.device):
            return self.satellite_encoder(images.to(self.device),
                                          self._satellite_finest if with_pyramid else None)

    def attend(self, ground: ViewEmbedding, satellite: ViewEmbedding) -> AttentionResult:
        """CAFR attention of each ground descriptor over its tile (ground batch B or 1, broadcast)."""
        with inference_autocast(self.device):
            return self.attention(ground.descriptor, satellite)

    def localize_fine(self, ground: ViewEmbedding, satellite: ViewEmbedding) -> FineLocalization:
        """Camera position (tile pixels), grid probabilities and heading for each (ground, tile) pair."""
        with inference_autocast(self.device):
            return self.fine_head(ground.level(self.config.fine_ground_stride),
                                  satellite.level(self.config.fine_satellite_stride), satellite.image_hw)

    # ------------------------------------------------------------ training
    def forward(self, ground_images: Tensor, satellite_images: Tensor) -> CrossViewOutput:
        """Matched batches (row i of each belongs together) -> all outputs the losses need. No autocast here:
        the trainer owns mixed precision."""
        ground = self.ground_encoder(ground_images, self._ground_finest)
        satellite = self.satellite_encoder(satellite_images, self._satellite_finest)
        attention = self.attention(ground.descriptor, satellite)
        fine = self.fine_head(ground.level(self.config.fine_ground_stride),
                              satellite.level(self.config.fine_satellite_stride), satellite.image_hw)
        return CrossViewOutput(ground, satellite, attention, fine, self.logit_scale())

    def train(self, mode: bool = True) -> CrossViewNet:
        super().train(mode)
        if mode and self.config.freeze_batchnorm:
            for module in self.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self

    def prepare_for_inference(self, device: torch.device | str | None = None) -> CrossViewNet:
        """Move to `device` (default: CUDA when present), eval mode, channels_last on CUDA."""
        device = torch.device(device) if device is not None else best_device()
        self.to(device).eval()
        if device.type == "cuda":
            self.to(memory_format=torch.channels_last)
        return self

    def parameter_count(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    # ------------------------------------------------------------ files
    def describe(self, training_summary: dict[str, Any] | None = None) -> dict[str, Any]:
        """The JSON metadata stored with the weights."""
        mean, std = self.config.resolved_mean_std()
        training = training_summary if training_summary is not None else self.metadata.get("training", {})
        return {
            "architecture": ARCHITECTURE,
            "config": self.config.to_dict(),
            "ground_input_hw": list(self.config.ground_hw),
            "satellite_input_hw": list(self.config.satellite_hw),
            "metres_per_pixel": self.config.metres_per_pixel,
            "descriptor_dim": self.config.descriptor_dim,
            "input": {"channels": "RGB", "range": [0.0, 1.0], "mean": list(mean), "std": list(std)},
            "parameters": self.parameter_count(),
            "training": training,
            "software": {"torch": torch.__version__, "timm": timm.__version__},
            # measured accuracy the engine uses to weigh the model against priors (set when shipped)
            **({"calibration": self.metadata["calibration"]} if "calibration" in self.metadata else {}),
        }

    def save(self, path: str | Path, training_summary: dict[str, Any] | None = None) -> Path:
        """Write safetensors weights + JSON metadata atomically; returns the path."""
        return write_checkpoint(path, self.state_dict(), self.describe(training_summary))

    @staticmethod
    def read_metadata(path: str | Path) -> dict[str, Any]:
        """Metadata of a saved model (sizes, metres per pixel, training summary) without loading weights."""
        return read_checkpoint_metadata(path)

    @classmethod
    def load(cls, path: str | Path, device: torch.device | str = "cpu") -> CrossViewNet:
        """A model saved by `save`; CheckpointError (naming the file) if it is corrupt or does not fit."""
        tensors, metadata = read_checkpoint(path)
        if metadata.get("architecture") != ARCHITECTURE:
            raise CheckpointError(
                f"{path}: architecture {metadata.get('architecture')!r} is not {ARCHITECTURE}")
        try:
            config = ModelConfig.from_dict(metadata["config"])
            model = cls(config, load_backbone_weights=False)
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{path}: model configuration in the metadata is invalid ({exc})") from exc
        expected = model.state_dict()
        missing = sorted(set(expected) - set(tensors))
        unexpected = sorted(set(tensors) - set(expected))
        if missing or unexpected:
            raise CheckpointError(
                f"{path}: weights do not match the architecture in its metadata "
                f"({len(missing)} missing, e.g. {missing[:3]}; "
                f"{len(unexpected)} unexpected, e.g. {unexpected[:3]})")
        for key, tensor in expected.items():
            if tensor.shape != tensors[key].shape:
                raise CheckpointError(f"{path}: tensor {key} has shape {tuple(tensors[key].shape)}, the "
                                      f"architecture expects {tuple(tensor.shape)}")
        model.load_state_dict(tensors, strict=True)
        model.metadata = metadata
        return model.to(device).eval()
