"""PoseNet: ground-plane pose estimation (OrienterNet-style), small enough to train on a 2-core CPU.

1. A frozen ImageNet trunk (EfficientNet-Lite0 stages to stride 16 for the photo, stride 4 for the map)
   gives appearance features that are cached during training.
2. Ground head: per-pixel matching features and a distribution over depth bins. The flat-ground depth of each
   row (camera model: FoV, eye height) enters as a prior on those logits and as input channels, so only what
   geometry cannot give (facades, trees, occlusion) is learned. A "void" bin absorbs sky.
3. Lifting: every column's features are spread along its ray by the depth distribution (polar map), then
   resampled by the camera model into a metric BEV with a learned confidence.
4. Map head: features of the same width on the map's 1 m grid.
5. Matching: the BEV is rotated to K headings and correlated with the map (FFT) -> score volume.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import timm
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn

from engine.model.backbone import imagenet_lite0_state_dict
from engine.model.checkpoint import CheckpointError, read_checkpoint, write_checkpoint
from engine.model.config import dataclass_from_dict
from engine.model.pose_geometry import (
    BevGrid,
    correlate,
    depth_prior_logits,
    ground_depth_per_row,
    polar_to_bev_grid,
    rotate_templates,
    rotation_grids,
    row_elevation,
)

POSE_ARCHITECTURE = "PoseNet"
_TRUNKS = ("ground_trunk.", "map_trunk.")
_TF_PORT = {"pad_type": "same", "bn_eps": 1e-3}


@dataclass
class PoseConfig:
    """Architecture and input geometry of a PoseNet. Sizes are (height, width)."""

    ground_hw: tuple[int, int] = (192, 288)
    map_metres_per_pixel: float = 0.5        # map input resolution; features come out at 2x this (the BEV cell)
    grid: BevGrid = field(default_factory=BevGrid)
    feature_dim: int = 8
    hidden: int = 64
    eye_height_m: float = 1.7                # assumed when the photo says nothing (phone at eye level)
    depth_prior_log_sigma: float = 0.35

    def __post_init__(self) -> None:
        self.ground_hw = tuple(int(v) for v in self.ground_hw)  # type: ignore[assignment]
        if isinstance(self.grid, dict):
            self.grid = BevGrid(**self.grid)
        if abs(self.grid.cell_m - 2 * self.map_metres_per_pixel) > 1e-9:
            raise ValueError("the BEV cell must be twice the map's input pixel (map features are at stride 2)")
        if self.ground_hw[0] % 16 or self.ground_hw[1] % 16:
            raise ValueError(f"ground_hw must be multiples of 16, got {self.ground_hw}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ground_hw"] = list(self.ground_hw)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PoseConfig:
        return dataclass_from_dict(cls, data, "PoseConfig")


def photo_tensor(rgb: np.ndarray, ground_hw: tuple[int, int]) -> torch.Tensor:
    """(3, H, W) uint8 photo resized to the model's ground input (aspect not kept: the camera model knows)."""
    height, width = ground_hw
    image = Image.fromarray(rgb).resize((width, height), Image.Resampling.BILINEAR, reducing_gap=3.0)
    return torch.from_numpy(np.array(image)).permute(2, 0, 1)


def _trunk(out_indices: tuple[int, ...], blocks: int) -> nn.Module:
    """EfficientNet-Lite0 features, cut after the last block they need (timm builds and runs all seven)."""
    trunk = timm.create_model("efficientnet_lite0", pretrained=False, features_only=True,
                              out_indices=out_indices, **_TF_PORT)
    trunk.blocks = trunk.blocks[:blocks]
    return trunk


def _conv(cin: int, cout: int, k: int = 3) -> nn.Sequential:
    # GroupNorm, not BatchNorm: training and inference normalise alike whatever the batch holds
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2), nn.GroupNorm(8, cout), nn.ReLU(inplace=True))


@dataclass
class GroundBev:
    """A batch of photos on the ground plane (camera frame, forward = up)."""

    features: Tensor      # (B, C, S, S) unit vectors times confidence, zero outside the view
    confidence: Tensor    # (B, 1, S, S) in [0, 1]
    visible: Tensor       # (B, 1, S, S) the camera model's view mask


class PoseNet(nn.Module):
    def __init__(self, config: PoseConfig | None = None, *, load_trunk_weights: bool = True) -> None:
        super().__init__()
        self.config = config = config or PoseConfig()
        c, h = config.feature_dim, config.hidden
        d = config.grid.depth_bins
        self.ground_trunk = _trunk((2, 3), 5)       # stride 8 (40 ch) and 16 (112 ch)
        self.map_trunk = _trunk((0, 1), 2)          # stride 2 (16 ch) and 4 (24 ch)
        self.ground_head = nn.Sequential(_conv(40 + 112 + 3, h), _conv(h, h), nn.Conv2d(h, c + d + 1, 1))
        self.bev_head = nn.Sequential(_conv(c + 1, 16), nn.Conv2d(16, c + 1, 3, padding=1))
        self.map_head = nn.Sequential(_conv(16 + 24, h), _conv(h, h), nn.Conv2d(h, c, 1))
        self.depth_prior_scale = nn.Parameter(torch.tensor(1.0))
        self.log_score_scale = nn.Parameter(torch.tensor(math.log(4.0)))
        self.metadata: dict[str, Any] = {}
        if load_trunk_weights:
            state = imagenet_lite0_state_dict(_TF_PORT)
            for trunk in (self.ground_trunk, self.map_trunk):
                own = trunk.state_dict()
                trunk.load_state_dict({key: state[key] for key in own}, strict=True)
        for trunk in (self.ground_trunk, self.map_trunk):
            trunk.requires_grad_(False)
            trunk.eval()     # a fresh module is in training mode: BatchNorm would use batch statistics
        self.register_buffer("mean_std", torch.tensor([0.5, 0.5]), persistent=False)

    def train(self, mode: bool = True) -> PoseNet:
        super().train(mode)
        self.ground_trunk.eval()     # frozen: its BatchNorm statistics stay ImageNet's
        self.map_trunk.eval()
        return self

    @property
    def device(self) -> torch.device:
        return self.depth_prior_scale.device

    def _normalise(self, images: Tensor) -> Tensor:
        images = images.to(self.device)
        if images.dtype == torch.uint8:
            images = images.float() / 255.0
        return (images - 0.5) / 0.5

    # ------------------------------------------------------------ frozen stages (cached in training)
    def ground_trunk_features(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """(B, 3, H, W) photos at config.ground_hw -> stride-8 and stride-16 frozen features."""
        with torch.no_grad():
            f8, f16 = self.ground_trunk(self._normalise(images))
        return f8, f16

    def map_trunk_features(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """(B, 3, H, W) map at config.map_metres_per_pixel -> stride-2 and stride-4 frozen features."""
        with torch.no_grad():
            f2, f4 = self.map_trunk(self._normalise(images))
        return f2, f4

    # ------------------------------------------------------------ learned stages
    def ground_bev(self, f8: Tensor, f16: Tensor, fov_deg: Tensor, original_wh: Tensor | None = None,
                   eye_height_m: Tensor | None = None) -> GroundBev:
        cfg, grid = self.config, self.config.grid
        b, _, rows, cols = f8.shape
        fov_deg = fov_deg.to(f8.device, torch.float32)
        if eye_height_m is None:
            eye_height_m = torch.full((b,), cfg.eye_height_m, device=f8.device)
        if original_wh is not None:
            original_wh = original_wh.to(f8.device, torch.float32)
        ground = ground_depth_per_row(fov_deg, cfg.ground_hw, rows, eye_height_m, original_wh)
        elevation = row_elevation(fov_deg, cfg.ground_hw, rows, original_wh)
        finite = torch.isfinite(ground)
        log_ground = torch.where(finite, torch.log(ground.clamp(min=1e-3)) / 3.0, torch.zeros_like(ground))
        geo = torch.stack([elevation, log_ground, finite.float()], 1)[..., None].expand(b, 3, rows, cols)
        up = F.interpolate(f16.float(), size=(rows, cols), mode="bilinear", align_corners=False)
        out = self.ground_head(torch.cat([f8.float(), up, geo], 1))
        c, d = cfg.feature_dim, grid.depth_bins
        features = F.normalize(out[:, :c], dim=1)
        prior = depth_prior_logits(ground, grid, cfg.depth_prior_log_sigma)            # (B, D, rows)
        depth_logits = out[:, c:c + d] + self.depth_prior_scale * prior[..., None]
        logits = torch.cat([depth_logits, out[:, c + d:]], 1)                         # + void bin
        depth = torch.softmax(logits, dim=1)[:, :d]                                     # (B, D, rows, cols)
        polar = torch.einsum("bdvu,bcvu->bcdu", depth, features)
        weight = depth.sum(dim=2, keepdim=False)[:, None]                                # (B, 1, D, cols)
        sample_grid, visible = polar_to_bev_grid(fov_deg, cfg.ground_hw, grid)
        sampled = F.grid_sample(torch.cat([polar, weight], 1), sample_grid, mode="bilinear",
                                padding_mode="zeros", align_corners=False)
        refined = self.bev_head(sampled) + sampled
        bev = F.normalize(refined[:, :c], dim=1)
        confidence = torch.sigmoid(refined[:, c:]) * visible
        return GroundBev(bev * confidence, confidence, visible)

    def map_features(self, f2: Tensor, f4: Tensor) -> Tensor:
        """Frozen map features -> (B, C, H, W) unit matching features on the BEV grid."""
        up = F.interpolate(f4.float(), size=f2.shape[-2:], mode="bilinear", align_corners=False)
        return F.normalize(self.map_head(torch.cat([f2.float(), up], 1)), dim=1)

    def score_volume(self, bev: GroundBev, map_features: Tensor, headings: Tensor) -> Tensor:
        """(B, K, N-S+1, M-S+1) log-score of every (heading, placement); see pose_geometry.correlate.
        headings: (K,) for the whole batch or (B, K), each photo its own."""
        templates = rotate_templates(bev.features, rotation_grids(headings, self.config.grid.size_cells))
        scores = correlate(map_features, templates)
        norm = bev.confidence.flatten(1).sum(1).clamp(min=1.0).sqrt()
        return scores * (self.log_score_scale.exp() / norm)[:, None, None, None]

    # ------------------------------------------------------------ files
    def trainable_state(self) -> dict[str, Tensor]:
        return {k: v for k, v in self.state_dict().items() if not k.startswith(_TRUNKS)}

    def describe(self) -> dict[str, Any]:
        return {"architecture": POSE_ARCHITECTURE, "config": self.config.to_dict(),
                "parameters": sum(p.numel() for p in self.parameters()),
                "trainable_parameters": sum(p.numel() for p in self.parameters() if p.requires_grad),
                "software": {"torch": torch.__version__, "timm": timm.__version__},
                **{k: v for k, v in self.metadata.items() if k in ("training", "calibration", "benchmark")}}

    def save(self, path: str | Path) -> Path:
        """The learned weights only: the frozen trunks are the installed package's ImageNet weights."""
        return write_checkpoint(path, self.trainable_state(), self.describe())

    @classmethod
    def load(cls, path: str | Path, device: torch.device | str = "cpu") -> PoseNet:
        tensors, metadata = read_checkpoint(path)
        if metadata.get("architecture") != POSE_ARCHITECTURE:
            raise CheckpointError(f"{path}: architecture {metadata.get('architecture')!r} is not "
                                  f"{POSE_ARCHITECTURE}")
        try:
            model = cls(PoseConfig.from_dict(metadata["config"]), load_trunk_weights=True)
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{path}: pose model configuration is invalid ({exc})") from exc
        expected = model.trainable_state()
        learned = {k: v for k, v in tensors.items() if not k.startswith(_TRUNKS)}
        if set(expected) != set(learned) or any(expected[k].shape != learned[k].shape for k in expected):
            raise CheckpointError(f"{path}: weights do not match the PoseNet architecture in its metadata")
        model.load_state_dict(learned, strict=False)
        model.metadata = metadata
        return model.to(device).eval()
