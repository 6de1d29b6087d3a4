"""Which model the engine runs: a given CrossViewNet, a checkpoint file, or the shipped default.

The shipped default is resources/models/viewfinder-default.safetensors; without it the engine falls back to
the untrained CrossViewNet() (ImageNet backbone, randomly initialised heads). Its random parts are drawn from
a fixed seed so that every run builds the same weights (and reuses the same gallery cache).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from engine.index.cache import model_fingerprint
from engine.model import CrossViewNet

log = logging.getLogger(__name__)

RESOURCES = Path(__file__).resolve().parents[2] / "resources"
DEFAULT_MODEL_PATH = RESOURCES / "models" / "viewfinder-default.safetensors"
UNTRAINED_SEED = 0
DEFAULT_MODEL_NAME = DEFAULT_MODEL_PATH.relative_to(RESOURCES.parent).as_posix()    # for reports: no machine path


@dataclass
class LoadedModel:
    model: CrossViewNet
    model_id: str          # model_fingerprint: sha256 of config + weights
    description: str       # for logs and reports: where the weights came from

    @property
    def short_id(self) -> str:
        return self.model_id[:16]


def untrained_default_model() -> CrossViewNet:
    """CrossViewNet() with ImageNet backbone weights and seeded random heads (the same in every run)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(UNTRAINED_SEED)
        return CrossViewNet()


def load_model(source: LoadedModel | CrossViewNet | str | os.PathLike | None = None,
               device: torch.device | str | None = None) -> LoadedModel:
    """Resolve `source` (a model, a checkpoint path, or None for the default) and prepare it for inference.
    A LoadedModel is already prepared and is returned as it is (the warm server shares one between Localizers
    of different settings; `device` is then the one it was prepared for)."""
    if isinstance(source, LoadedModel):
        return source
    if isinstance(source, CrossViewNet):
        model, description = source, "in-memory CrossViewNet"
    elif source is not None:
        model, description = CrossViewNet.load(source), f"checkpoint {source}"
    elif DEFAULT_MODEL_PATH.is_file():
        model, description = CrossViewNet.load(DEFAULT_MODEL_PATH), f"shipped default model {DEFAULT_MODEL_NAME}"
    else:
        model = untrained_default_model()
        description = ("untrained CrossViewNet (ImageNet backbone, random heads; no trained model at "
                       f"{DEFAULT_MODEL_NAME})")
    model.prepare_for_inference(device)
    loaded = LoadedModel(model, model_fingerprint(model, model.config.to_dict()), description)
    log.info("model: %s (id %s)", description, loaded.short_id)
    return loaded
