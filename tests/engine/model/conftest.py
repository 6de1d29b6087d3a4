"""Small, fast model configurations: the default architecture at reduced widths and input sizes."""
from __future__ import annotations

import pytest
import torch

from engine.model import CrossViewNet, ModelConfig


def small_config(**overrides) -> ModelConfig:
    settings = {"backbone_weights": None, "ground_hw": (96, 160), "satellite_hw": (128, 128),
                "pyramid_dim": 32, "descriptor_head_channels": 64, "descriptor_dim": 48, "fine_dim": 32,
                "fine_heads": 2, "fine_grid": 4}
    settings.update(overrides)
    return ModelConfig(**settings)


def small_model(seed: int = 0, **overrides) -> CrossViewNet:
    torch.manual_seed(seed)
    return CrossViewNet(small_config(**overrides))


def random_images(batch: int, hw: tuple[int, int], seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, *hw, generator=generator)


@pytest.fixture(autouse=True)
def _deterministic_threads():
    # CI machines have 2 cores; more threads than cores only slows the tests down
    previous = torch.get_num_threads()
    torch.set_num_threads(min(previous, 2))
    yield
    torch.set_num_threads(previous)
