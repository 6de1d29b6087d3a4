"""Learning-rate schedule values and the training-state file (no pickle) round trip."""
from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch

from engine.train.schedule import CosineWarmupSchedule, cosine_warmup_lr
from engine.train.state import (
    TrainingStateError,
    read_training_state,
    rng_states,
    set_rng_states,
    write_training_state,
)


def test_warmup_then_cosine():
    rates = [cosine_warmup_lr(step, 100, 10, 1e-3, 0.1) for step in range(100)]
    assert rates[:10] == pytest.approx([1e-3 * (k + 1) / 10 for k in range(10)])
    assert rates[10] == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(rates[10:], rates[11:]))              # decays monotonically
    halfway = cosine_warmup_lr(55, 100, 10, 1e-3, 0.1)
    assert halfway == pytest.approx(1e-4 + 0.9e-3 * 0.5)                    # cosine midpoint
    assert rates[-1] > 1e-4 and cosine_warmup_lr(100, 100, 10, 1e-3, 0.1) == pytest.approx(1e-4)
    assert cosine_warmup_lr(0, 5, 0, 2.0) == pytest.approx(2.0)             # no warm-up: starts at the peak


def test_schedule_sets_group_rates_and_resumes():
    parameter = torch.nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.SGD([{"params": [parameter]}, {"params": [], "lr_scale": 0.1}], lr=1.0)
    schedule = CosineWarmupSchedule(optimizer, 1.0, total_steps=20, warmup_steps=4)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.25)
    for _ in range(7):
        schedule.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(cosine_warmup_lr(7, 20, 4, 1.0))
    assert optimizer.param_groups[1]["lr"] == pytest.approx(0.1 * cosine_warmup_lr(7, 20, 4, 1.0))
    other = torch.optim.SGD([parameter], lr=1.0)
    resumed = CosineWarmupSchedule(other, 1.0, total_steps=20, warmup_steps=4)
    resumed.load_state_dict(schedule.state_dict())
    assert other.param_groups[0]["lr"] == optimizer.param_groups[0]["lr"]


def test_state_file_round_trip(tmp_path):
    state = {"epoch": 3, "nested": {1: torch.arange(4), 2: {"step": torch.tensor(5.0)}},
             "pair": (0.9, 0.999), "array": np.arange(6, dtype=np.int64).reshape(2, 3), "nan": math.nan,
             "none": None, "list": [torch.ones(2, 2), "text", True], "empty": {}}
    path = write_training_state(tmp_path / "run.state.safetensors", state)
    back = read_training_state(path)
    assert back["epoch"] == 3 and back["pair"] == (0.9, 0.999) and back["none"] is None and back["empty"] == {}
    assert torch.equal(back["nested"][1], torch.arange(4)) and float(back["nested"][2]["step"]) == 5.0
    assert np.array_equal(back["array"], state["array"]) and math.isnan(back["nan"])
    assert torch.equal(back["list"][0], torch.ones(2, 2)) and back["list"][1:] == ["text", True]
    assert not path.read_bytes().startswith(b"\x80")      # not a pickle


def test_optimizer_state_survives_the_file(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1, betas=(0.8, 0.9))
    for _ in range(3):
        optimizer.zero_grad()
        model(torch.randn(5, 4)).square().sum().backward()
        optimizer.step()
    write_training_state(tmp_path / "s.safetensors", {"optimizer": optimizer.state_dict()})
    twin = torch.nn.Linear(4, 3)
    twin.load_state_dict(model.state_dict())
    twin_optimizer = torch.optim.AdamW(twin.parameters(), lr=0.5)
    twin_optimizer.load_state_dict(read_training_state(tmp_path / "s.safetensors")["optimizer"])
    assert twin_optimizer.param_groups[0]["betas"] == (0.8, 0.9)
    batch = torch.randn(5, 4)
    for net, opt in ((model, optimizer), (twin, twin_optimizer)):
        opt.zero_grad()
        net(batch).square().sum().backward()
        opt.step()
    assert torch.equal(model.weight, twin.weight) and torch.equal(model.bias, twin.bias)


def test_rng_states_round_trip(tmp_path):
    torch.manual_seed(1)
    np.random.seed(2)
    random.seed(3)
    write_training_state(tmp_path / "rng.safetensors", {"rng": rng_states()})
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(9)
    np.random.seed(9)
    random.seed(9)
    set_rng_states(read_training_state(tmp_path / "rng.safetensors")["rng"])
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1]) and random.random() == expected[2]


def test_bad_state_files_are_named(tmp_path):
    with pytest.raises(TrainingStateError, match="absent.safetensors: no such"):
        read_training_state(tmp_path / "absent.safetensors")
    path = write_training_state(tmp_path / "good.safetensors", {"x": torch.zeros(3)})
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(path.read_bytes()[:40])
    with pytest.raises(TrainingStateError, match="broken.safetensors: corrupt"):
        read_training_state(broken)
    from safetensors.torch import save_file
    save_file({"x": torch.zeros(1)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(TrainingStateError, match="plain.safetensors: not a Viewfinder training-state"):
        read_training_state(tmp_path / "plain.safetensors")
