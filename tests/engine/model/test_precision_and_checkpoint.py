"""Mixed precision (CPU bf16 autocast, CUDA when present) and checkpoint save/load."""
from __future__ import annotations

import json
import os

import pytest
import torch
from safetensors.torch import save_file

from engine.model import CafrLoss, CafrTargets, CheckpointError, CrossViewNet
from engine.model import checkpoint as checkpoint_module
from tests.engine.model.conftest import random_images, small_model


def all_outputs(model: CrossViewNet, ground: torch.Tensor,
                satellite: torch.Tensor) -> dict[str, torch.Tensor]:
    with torch.inference_mode():
        g, s = model.embed_ground(ground), model.embed_satellite(satellite)
        attention = model.attend(g, s)
        fine = model.localize_fine(g, s)
    out = {"ground": g.descriptor, "satellite": s.descriptor, "points": attention.points_px,
           "position": fine.position_px, "probabilities": fine.probabilities, "heading": fine.heading_deg}
    out.update({f"attention{i}": m for i, m in enumerate(attention.maps)})
    return out


# ---------------------------------------------------------------- precision
def test_model_runs_under_cpu_bf16_autocast():
    model = small_model().eval()
    ground, satellite = random_images(3, (96, 160)), random_images(3, (128, 128), seed=1)
    reference = all_outputs(model, ground, satellite)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = all_outputs(model, ground, satellite)
    for key in ("ground", "satellite"):
        assert mixed[key].dtype == torch.float32
        cosine = (mixed[key] * reference[key]).sum(-1)
        assert bool((cosine > 0.98).all()), key
    for key, value in mixed.items():
        assert bool(torch.isfinite(value).all()), key
    torch.testing.assert_close(mixed["probabilities"].sum(dim=(1, 2)), torch.ones(3))


def test_training_step_under_cpu_bf16_autocast():
    model = small_model().train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output = model(random_images(4, (96, 160)), random_images(4, (128, 128), seed=1))
        mask = torch.zeros(4, 128, 128)
        mask[:, 64:] = 1
        targets = CafrTargets(torch.full((4, 2), 64.0), mask, torch.full((4, 2), 30.0), torch.zeros(4))
        terms = CafrLoss()(output, targets, epoch=5)
    assert bool(torch.isfinite(terms["total"]))
    terms["total"].backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and bool(torch.isfinite(g).all()) for g in grads)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_inference_matches_cpu():
    model = small_model().eval()
    ground, satellite = random_images(2, (96, 160)), random_images(2, (128, 128), seed=1)
    reference = all_outputs(model, ground, satellite)
    model.prepare_for_inference("cuda")
    on_gpu = all_outputs(model, ground, satellite)
    for key in ("ground", "satellite"):
        cosine = (on_gpu[key].cpu() * reference[key]).sum(-1)
        assert bool((cosine > 0.98).all()), key


# ---------------------------------------------------------------- checkpoint
def test_save_then_load_gives_identical_outputs_and_metadata(tmp_path):
    model = small_model(seed=4).eval()
    with torch.no_grad():  # make the state differ from a fresh build
        model.log_logit_scale.add_(0.5)
        model.satellite_encoder.head.pool.p.fill_(3.7)
    path = model.save(tmp_path / "model.safetensors", training_summary={"epochs": 2, "recall@1": 0.42})
    loaded = CrossViewNet.load(path)
    ground, satellite = random_images(2, (96, 160)), random_images(2, (128, 128), seed=1)
    before, after = all_outputs(model, ground, satellite), all_outputs(loaded, ground, satellite)
    for key in before:
        assert torch.equal(before[key], after[key]), key
    assert loaded.config == model.config
    assert float(loaded.logit_scale().detach()) == pytest.approx(float(model.logit_scale().detach()))

    metadata = CrossViewNet.read_metadata(path)
    assert metadata["training"] == {"epochs": 2, "recall@1": 0.42}
    assert metadata["metres_per_pixel"] == 0.6
    assert metadata["satellite_input_hw"] == [128, 128] and metadata["ground_input_hw"] == [96, 160]
    assert metadata["descriptor_dim"] == 48
    assert metadata["parameters"] == model.parameter_count()
    assert loaded.metadata["training"]["epochs"] == 2
    # saving a loaded model keeps its training summary unless a new one is given
    again = CrossViewNet.read_metadata(loaded.save(tmp_path / "again.safetensors"))
    assert again["training"] == metadata["training"]


def test_truncated_checkpoint_fails_with_the_file_named(tmp_path):
    path = small_model().save(tmp_path / "model.safetensors")
    data = path.read_bytes()
    for keep in (len(data) // 2, 100, 5):
        broken = tmp_path / f"truncated-{keep}.safetensors"
        broken.write_bytes(data[:keep])
        with pytest.raises(CheckpointError, match=f"truncated-{keep}.safetensors"):
            CrossViewNet.load(broken)


def test_checkpoint_of_a_different_architecture_is_refused(tmp_path):
    path = small_model().save(tmp_path / "model.safetensors")
    tensors, metadata = checkpoint_module.read_checkpoint(path)
    metadata["config"]["descriptor_dim"] = 64  # weights say 48
    edited = tmp_path / "edited.safetensors"
    checkpoint_module.write_checkpoint(edited, tensors, metadata)
    with pytest.raises(CheckpointError, match="edited.safetensors: tensor .* has shape"):
        CrossViewNet.load(edited)

    del tensors["log_logit_scale"]
    metadata["config"]["descriptor_dim"] = 48
    checkpoint_module.write_checkpoint(edited, tensors, metadata)
    with pytest.raises(CheckpointError, match="edited.safetensors: weights do not match.*log_logit_scale"):
        CrossViewNet.load(edited)


def test_files_that_are_not_viewfinder_checkpoints_are_refused(tmp_path):
    plain = tmp_path / "plain.safetensors"
    save_file({"x": torch.zeros(2)}, str(plain))
    with pytest.raises(CheckpointError, match="plain.safetensors: safetensors file without Viewfinder"):
        CrossViewNet.load(plain)
    text = tmp_path / "notes.safetensors"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match="notes.safetensors"):
        CrossViewNet.load(text)
    with pytest.raises(CheckpointError, match="absent.safetensors: no such file"):
        CrossViewNet.load(tmp_path / "absent.safetensors")
    newer = tmp_path / "newer.safetensors"
    save_file({"x": torch.zeros(2)}, str(newer),
              metadata={"format": "viewfinder.crossview", "viewfinder": json.dumps({"format_version": 99})})
    with pytest.raises(CheckpointError, match="newer.safetensors: checkpoint format version 99"):
        CrossViewNet.load(newer)


def test_a_failed_save_leaves_the_previous_file_intact(tmp_path, monkeypatch):
    model = small_model()
    path = model.save(tmp_path / "model.safetensors")
    original = path.read_bytes()

    def failing_save(tensors, filename, metadata=None):
        with open(filename, "wb") as handle:
            handle.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_module, "save_file", failing_save)
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    assert path.read_bytes() == original
    assert os.listdir(tmp_path) == ["model.safetensors"]
