"""Backbone: offline ImageNet weights mapped onto timm, other backbones from local files, pyramid shapes."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from skimage import data

from engine.model import CheckpointError, CrossViewNet, ModelConfig
from engine.model.backbone import PyramidBackbone, create_timm_classifier, imagenet_lite0_state_dict
from tests.engine.model.conftest import small_config

TABBY, TIGER_CAT, PERSIAN, SIAMESE, EGYPTIAN = 281, 282, 283, 284, 285
ESPRESSO = 967


@pytest.fixture(scope="module")
def imagenet_model() -> CrossViewNet:
    return CrossViewNet().eval()


@pytest.fixture(scope="module")
def imagenet_state() -> dict[str, torch.Tensor]:
    return imagenet_lite0_state_dict(ModelConfig().resolved_backbone_kwargs())


def center_crop_224(image: np.ndarray) -> torch.Tensor:
    """timm's eval transform for efficientnet_lite0: shorter side to 224 / 0.875, bicubic, centre crop 224."""
    x = torch.from_numpy(image).permute(2, 0, 1).float()[None] / 255.0
    height, width = x.shape[-2:]
    scale = 256 / min(height, width)
    x = F.interpolate(x, size=(round(height * scale), round(width * scale)), mode="bicubic", antialias=True)
    top, left = (x.shape[-2] - 224) // 2, (x.shape[-1] - 224) // 2
    return x[..., top:top + 224, left:left + 224].clamp(0, 1)


def classify(model: CrossViewNet, state: dict[str, torch.Tensor], image: np.ndarray) -> torch.Tensor:
    """ImageNet class probabilities computed through the model's own backbone and descriptor conv head.

    Only the final linear classifier comes from the mapped state dict, so a wrong mapping of any backbone
    tensor, or a head not initialised from conv_head/bn2, would break the prediction.
    """
    encoder = model.satellite_encoder
    x = (center_crop_224(image) - encoder.mean) / encoder.std
    with torch.inference_mode():
        top = encoder.backbone(x)[-1]
        pooled = F.relu6(encoder.head.norm(encoder.head.conv(top))).mean(dim=(-2, -1))
        logits = F.linear(pooled, state["classifier.weight"], state["classifier.bias"])
    return logits.softmax(dim=-1)[0]


def test_package_tensors_map_in_order_onto_timm_names(imagenet_state):
    kwargs = ModelConfig().resolved_backbone_kwargs()
    reference = create_timm_classifier("efficientnet_lite0", kwargs).state_dict()
    assert list(imagenet_state) == list(reference)
    assert len(imagenet_state) == 296
    for key, tensor in reference.items():
        assert imagenet_state[key].shape == tensor.shape


def test_imagenet_weights_recognise_a_cat(imagenet_model, imagenet_state):
    probabilities = classify(imagenet_model, imagenet_state, data.chelsea())
    top = int(probabilities.argmax())
    assert top in (TABBY, TIGER_CAT, PERSIAN, SIAMESE, EGYPTIAN)
    assert float(probabilities[TABBY:EGYPTIAN + 1].sum()) > 0.8


def test_imagenet_weights_recognise_espresso(imagenet_model, imagenet_state):
    probabilities = classify(imagenet_model, imagenet_state, data.coffee())
    assert int(probabilities.argmax()) == ESPRESSO
    assert float(probabilities[ESPRESSO]) > 0.5


def test_default_model_loads_backbone_and_head_from_the_package(imagenet_model, imagenet_state):
    assert imagenet_model.pretrained_head
    body = imagenet_model.satellite_encoder.backbone.body.state_dict()
    for key, tensor in body.items():
        assert torch.equal(tensor, imagenet_state[key]), key
    assert torch.equal(imagenet_model.satellite_encoder.head.conv.weight, imagenet_state["conv_head.weight"])


def test_random_init_differs_from_imagenet(imagenet_state):
    model = CrossViewNet(small_config())
    conv = model.satellite_encoder.backbone.body.state_dict()["conv_stem.weight"]
    assert not torch.equal(conv, imagenet_state["conv_stem.weight"])
    assert not model.pretrained_head


def test_other_timm_backbone_from_a_local_safetensors_file(tmp_path):
    source = create_timm_classifier("mobilenetv3_small_050")
    path = tmp_path / "mnv3.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))
    model = CrossViewNet(small_config(backbone="mobilenetv3_small_050", backbone_weights=str(path)))
    body = model.satellite_encoder.backbone.body.state_dict()
    assert body  # not empty
    for key, tensor in body.items():
        assert torch.equal(tensor, source.state_dict()[key]), key
    embedding = model.eval().embed_satellite(torch.rand(1, 3, 128, 128))
    assert embedding.descriptor.shape == (1, 48)


def test_local_pth_file_is_read_weights_only(tmp_path):
    source = create_timm_classifier("mobilenetv3_small_050")
    good = tmp_path / "weights.pth"
    torch.save({"state_dict": source.state_dict()}, good)
    model = CrossViewNet(small_config(backbone="mobilenetv3_small_050", backbone_weights=str(good)))
    stem = model.satellite_encoder.backbone.body.state_dict()["conv_stem.weight"]
    assert torch.equal(stem, source.state_dict()["conv_stem.weight"])

    pickled = tmp_path / "pickled.pth"
    torch.save({"conv_stem.weight": torch.zeros(1), "payload": ArbitraryObject()}, pickled)
    with pytest.raises(CheckpointError, match="pickled.pth"):
        CrossViewNet(small_config(backbone="mobilenetv3_small_050", backbone_weights=str(pickled)))


class ArbitraryObject:
    """A class torch.load(weights_only=True) must refuse to rebuild."""


def test_weights_of_another_architecture_are_rejected_by_name(tmp_path):
    path = tmp_path / "resnet.safetensors"
    resnet = create_timm_classifier("resnet10t").state_dict()
    save_file({k: v.contiguous() for k, v in resnet.items()}, str(path))
    with pytest.raises(CheckpointError, match="resnet.safetensors.*missing"):
        CrossViewNet(small_config(backbone_weights=str(path)))


def test_shape_mismatch_is_reported(tmp_path):
    state = create_timm_classifier("efficientnet_lite0").state_dict()
    state["conv_stem.weight"] = torch.zeros(16, 3, 3, 3)
    backbone = PyramidBackbone("efficientnet_lite0")
    with pytest.raises(CheckpointError, match=r"conv_stem.weight has shape \(16, 3, 3, 3\)"):
        backbone.load_pretrained(state, "edited-weights")


def test_missing_weights_file_is_named(tmp_path):
    with pytest.raises(CheckpointError, match="nowhere.safetensors: no such file"):
        CrossViewNet(small_config(backbone_weights=str(tmp_path / "nowhere.safetensors")))


def test_imagenet_package_weights_only_for_lite0():
    with pytest.raises(ValueError, match="only available offline for efficientnet_lite0"):
        ModelConfig(backbone="resnet18")


def test_backbone_without_a_pyramid_is_refused():
    with pytest.raises(ValueError, match="needs strides"):
        PyramidBackbone("vit_tiny_patch16_224")


@pytest.mark.parametrize("hw", [(128, 128), (96, 160), (200, 136)])
def test_pyramid_strides_and_channels(hw):
    backbone = PyramidBackbone("efficientnet_lite0", ModelConfig().resolved_backbone_kwargs()).eval()
    with torch.inference_mode():
        features = backbone(torch.rand(2, 3, *hw))
    assert backbone.channels == (40, 112, 320)
    for feature, stride, channels in zip(features, (8, 16, 32), backbone.channels):
        assert feature.shape == (2, channels, -(-hw[0] // stride), -(-hw[1] // stride))
