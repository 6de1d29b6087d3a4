"""PoseNet: frozen trunks that behave alike in train and eval mode, heads without batch statistics, weight
files that hold only what was learned, and a training step that learns."""
import numpy as np
import pytest
import timm
import torch

from engine.model.backbone import imagenet_lite0_state_dict
from engine.model.checkpoint import CheckpointError
from engine.model.pose_geometry import headings_deg
from engine.model.pose_net import PoseNet
from engine.train.pose_data import PoseDataSpec, make_world, sample_crops
from engine.train.pose_trainer import PoseTrainSpec, forward_batch, pose_nll, train_pose, truth_aligned_headings


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return PoseNet()


def test_frozen_trunks_are_imagenet_features_in_train_and_eval_mode(model):
    images = torch.rand(2, 3, 64, 96)
    reference = timm.create_model("efficientnet_lite0", pretrained=False, features_only=True, out_indices=(2, 3),
                                  pad_type="same", bn_eps=1e-3)
    state = imagenet_lite0_state_dict({"pad_type": "same", "bn_eps": 1e-3})
    reference.load_state_dict({k: state[k] for k in reference.state_dict()})
    expected = reference.eval()((images - 0.5) / 0.5)
    fresh = model.ground_trunk_features(images)
    model.train()
    trained_mode = model.ground_trunk_features(images)
    model.eval()
    for a, b, c in zip(fresh, trained_mode, expected):
        torch.testing.assert_close(a, c)
        torch.testing.assert_close(b, c)
    assert not any(p.requires_grad for p in model.ground_trunk.parameters())


def _batch(rng, n=3):
    f8, f16 = torch.randn(n, 40, 24, 36), torch.randn(n, 112, 12, 18)
    f2, f4 = torch.randn(n, 16, 112, 112), torch.randn(n, 24, 56, 56)     # 96-cell BEV: 17 x 17
    return {"f8": f8, "f16": f16, "f2": f2, "f4": f4, "fov": torch.tensor([45.0, 80.0, 110.0][:n]),
            "wh": torch.tensor([[384.0, 256.0]] * n)}


def test_score_volume_is_the_same_in_train_and_eval_mode(model):
    batch = _batch(np.random.default_rng(0))
    with torch.no_grad():
        model.train()
        a = forward_batch(model, batch, headings_deg(8))
        model.eval()
        b = forward_batch(model, batch, headings_deg(8))
    assert a.shape == (3, 8, 17, 17)
    torch.testing.assert_close(a, b)


def test_weight_file_holds_only_learned_weights_and_round_trips(model, tmp_path):
    path = model.save(tmp_path / "pose.safetensors")
    assert path.stat().st_size < 2_000_000          # the trunks come from the installed package
    loaded = PoseNet.load(path)
    batch = _batch(np.random.default_rng(1))
    with torch.no_grad():
        torch.testing.assert_close(forward_batch(loaded, batch, headings_deg(8)),
                                   forward_batch(model.eval(), batch, headings_deg(8)))


def test_a_crossview_checkpoint_is_not_a_pose_model(tmp_path):
    from engine.model.checkpoint import write_checkpoint
    path = write_checkpoint(tmp_path / "other.safetensors", {"w": torch.zeros(1)}, {"architecture": "CrossViewNet"})
    with pytest.raises(CheckpointError, match="other.safetensors"):
        PoseNet.load(path)


@pytest.mark.slow     # about 15 s of training
def test_a_few_training_steps_lower_the_pose_nll_on_held_crops():
    torch.manual_seed(0)
    model = PoseNet()
    spec = PoseDataSpec(worlds=1, first_seed=123, photos_per_world=12, size_m=200.0)
    world = make_world(spec, 0, model)
    assert world.ground_f8.shape == (12, 40, 24, 36) and world.map_f2.shape[-1] == 200
    rng = np.random.default_rng(5)
    held = sample_crops([world], 12, rng, model.config.grid.size_cells + 32, model.config.grid.size_cells)
    headings = truth_aligned_headings(held["heading"], 32)

    def nll() -> float:
        with torch.no_grad():
            return pose_nll(forward_batch(model.eval(), held, headings), held["label_ab"]).item()

    before = nll()
    train_pose(model, [world], PoseTrainSpec(steps=40, batch=4, lr=3e-3, warmup_steps=5, eval_every=1000))
    after = nll()
    assert before > 9.0                  # about chance: log(32 headings x 33 x 33 placements) = 10.5
    assert after < before - 1.0
