"""A tiny synthetic CVNAF-layout dataset and tiny training configurations (seconds per epoch on CPU)."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from engine.train import TrainConfig

TINY_MODEL = {"backbone": "mobilenetv3_small_050", "backbone_weights": "none", "ground_hw": [64, 96],
              "satellite_hw": [64, 64], "metres_per_pixel": 1.0, "pyramid_dim": 16,
              "descriptor_head_channels": 32, "descriptor_dim": 32, "fine_dim": 16, "fine_heads": 2,
              "fine_grid": 4, "fine_cell_subdivisions": 1}


def make_tiny_dataset(root: Path, photos: int = 14, seed: int = 5) -> Path:
    """Two small worlds (urban, rural), 96 px chips at 1 m/px: a 64 px model tile has room to move."""
    from engine.synth.export import export_cvnaf
    from engine.synth.generate import generate_world
    from engine.synth.photos import PhotoSpec

    worlds = [generate_world("urban", seed, size_m=260.0), generate_world("rural", seed + 1, size_m=260.0)]
    return export_cvnaf(worlds, PhotoSpec(photos, (40.0, 110.0), (96, 64)), seed, root, chip_px=96,
                        chip_metres_per_px=1.0, eval_fraction=0.3)


def tiny_config_dict(root: Path, out: Path, **tables) -> dict:
    raw = {
        "data": {"kind": "synthetic-cvnaf", "root": str(root)},
        "model": dict(TINY_MODEL),
        "loss": {"cafr_start_epoch": 1},
        "pairs": {"mask_source": "exact"},
        "optim": {"lr": 1e-3, "warmup_epochs": 0.5},
        "sampler": {"pool": 16},
        "eval": {"batch_size": 16},
        "train": {"epochs": 2, "batch_size": 6, "num_workers": 0, "device": "cpu", "out": str(out),
                  "seed": 3, "threads": 1},
    }
    for table, values in tables.items():
        raw.setdefault(table, {}).update(values)
    return copy.deepcopy(raw)


def tiny_config(root: Path, out: Path, **tables) -> TrainConfig:
    return TrainConfig.from_dict(tiny_config_dict(root, out, **tables))


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    return make_tiny_dataset(tmp_path_factory.mktemp("data") / "tiny-cvnaf")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # tiny tensors: on a busy 2-core CI machine a 2-thread OpenMP team mostly waits for its second thread
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
