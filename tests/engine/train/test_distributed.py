"""DDP under torchrun: 2 CPU processes with the gloo backend train the tiny config; both end with identical
weights, each trains on its own half of every epoch's batches, and only rank 0 writes checkpoints."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from safetensors.torch import load_file

from engine.model.checkpoint import read_checkpoint
from tests.engine.train.conftest import tiny_config_dict

ROOT = Path(__file__).resolve().parents[3]
WORKER = Path(__file__).with_name("ddp_worker.py")


@pytest.mark.slow     # about 10 s: two gloo processes
@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="needs torch.distributed gloo")
def test_two_gloo_processes_train_one_model(tiny_dataset, tmp_path):
    config = tiny_config_dict(tiny_dataset, tmp_path / "run", train={"batch_size": 4})
    (tmp_path / "config.json").write_text(json.dumps(config))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(WORKER),
         str(tmp_path / "config.json"), str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]

    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    # 20 pairs in batches of 4: 5 batches an epoch, 4 of them shared out, 2 steps per process per epoch
    assert [r["global_step"] for r in ranks] == [4, 4]
    assert len(ranks[0]["losses"]) == 4 and ranks[1]["losses"] == []     # callbacks run on rank 0 only
    assert all(torch.isfinite(torch.tensor(ranks[0]["losses"])))

    first, second = load_file(str(tmp_path / "rank0.safetensors")), load_file(str(tmp_path / "rank1.safetensors"))
    assert [key for key in first if not torch.equal(first[key], second[key])] == []
    saved, _ = read_checkpoint(tmp_path / "run" / "last.safetensors")
    assert all(torch.equal(saved[key], first[key]) for key in first)

    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [h["pairs"] for h in history] == [16, 16] and [h["steps"] for h in history] == [2, 2]
    assert history[1]["neighbours"] == "visual"
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "best.safetensors", "config.json", "history.json", "last.safetensors", "last.state.safetensors"]
