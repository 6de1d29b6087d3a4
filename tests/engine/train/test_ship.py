"""Shipping a trained checkpoint as the default model: weights, JSON sidecar and model card."""
from __future__ import annotations

import json

import pytest
import torch

from engine.model import CrossViewNet
from engine.model.checkpoint import read_checkpoint
from engine.train import Trainer
from engine.train.ship import ShipError, main, portable, ship_model
from tests.engine.train.conftest import tiny_config


@pytest.fixture(scope="module")
def trained(tiny_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("ship-run")
    config = tiny_config(tiny_dataset, out, train={"epochs": 1, "max_steps_per_epoch": 1, "validate_every": 0})
    return Trainer(config).run().last_checkpoint


def test_ship_writes_weights_sidecar_and_card(trained, tmp_path):
    bench = tmp_path / "accuracy.json"
    bench.write_text(json.dumps({"command": "python -m tests.bench.run_all accuracy", "date": "2026-01-01",
                                 "machine": {"cpu": "test cpu"},
                                 "sections": [{"section": "Accuracy: per biome", "rows": [{"arm": "c", "R@1": 12.5}],
                                               "notes": "a note"},
                                              {"section": "fine", "rows": [{"arm": "(b) x", "fine median m": 30.0},
                                                                           {"arm": "(c) y", "fine median m": 7.5}]}]}))
    paths = ship_model(trained, tmp_path / "models", benchmark_json=bench)
    shipped, metadata = read_checkpoint(paths["weights"])
    original, _ = read_checkpoint(trained)
    assert all(torch.equal(shipped[key], original[key]) for key in original)
    assert metadata["training"]["trainer"] == "engine.train"
    sidecar = json.loads(paths["metadata"].read_text())
    assert sidecar["bytes"] == paths["weights"].stat().st_size and len(sidecar["sha256"]) == 64
    card = paths["card"].read_text()
    for needle in ("## Training", "Command:", "Time and hardware:", "CPU", "| arm | R@1 |", "| c | 12.5 |",
                   "synthetic-cvnaf", "Limitations"):
        assert needle in card, needle
    assert CrossViewNet.load(paths["weights"]).config == CrossViewNet.load(trained).config
    # the measured fine error of arm (c) travels with the weights, for weighing positions against priors
    assert metadata["calibration"]["fine_median_error_m"] == 7.5 and sidecar["calibration"] == metadata["calibration"]
    assert "7.5 m" in card
    assert "calibration" not in read_checkpoint(ship_model(trained, tmp_path / "bare")["weights"])[1]


def test_shipped_files_carry_no_paths_of_this_machine(trained, tiny_dataset, tmp_path):
    paths = ship_model(trained, tmp_path / "models")
    _, metadata = read_checkpoint(paths["weights"])
    for text in (json.dumps(metadata), paths["metadata"].read_text(), paths["card"].read_text()):
        assert str(tiny_dataset) not in text and str(tmp_path) not in text
    assert metadata["training"]["config"]["data"]["root"] == tiny_dataset.name


def test_portable_makes_repository_paths_relative_and_drops_other_folders(tmp_path):
    root = tmp_path / "repo"
    raw = {"command": f"{root}/tests/bench/run_all.py accuracy", "roots": [f"{root}/out/data", "/data/x/cvusa"],
           "steps": 3, "lr": 0.1, "name": "a b"}
    assert portable(raw, root) == {"command": "tests/bench/run_all.py accuracy", "roots": ["out/data", "cvusa"],
                                   "steps": 3, "lr": 0.1, "name": "a b"}


def test_ship_refuses_oversized_and_untrained_models(trained, tmp_path):
    with pytest.raises(ShipError, match="MB allowed"):
        ship_model(trained, tmp_path / "small", max_bytes=1000)
    assert not (tmp_path / "small" / "viewfinder-default.safetensors").exists()
    untrained = CrossViewNet.load(trained)
    untrained.metadata = {}
    plain = untrained.save(tmp_path / "plain.safetensors", {})
    with pytest.raises(ShipError, match="not a checkpoint written by the trainer"):
        ship_model(plain, tmp_path / "models")
    assert main([str(tmp_path / "absent.safetensors"), "--out", str(tmp_path / "m")]) == 2
