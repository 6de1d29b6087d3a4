"""Retrieval training fixes: BatchNorm that normalises alike in train and eval mode (one encoder sees two
domains), and InfoNCE that does not push apart photos taken a few metres from each other."""
import torch

from engine.model.losses import info_nce
from tests.engine.model.conftest import random_images, small_model


def _descriptors(model, ground, satellite):
    with torch.no_grad():
        return model.embed_ground(ground).descriptor, model.embed_satellite(satellite).descriptor


def test_train_mode_and_eval_mode_retrieval_agree_with_frozen_batchnorm():
    model = small_model(seed=3)
    # a few training-mode passes, one view at a time (as training does), so running statistics would drift
    ground, satellite = random_images(6, (96, 160), 1), random_images(6, (128, 128), 2) * 0.3 + 0.6
    model.train()
    train_g, train_s = _descriptors(model, ground, satellite)
    model.eval()
    eval_g, eval_s = _descriptors(model, ground, satellite)
    torch.testing.assert_close(train_g, eval_g)
    torch.testing.assert_close(train_s, eval_s)
    assert (train_g @ train_s.t()).argmax(1).tolist() == (eval_g @ eval_s.t()).argmax(1).tolist()


def test_without_the_fix_the_two_modes_disagree():
    model = small_model(seed=3, freeze_batchnorm=False)
    ground, satellite = random_images(6, (96, 160), 1), random_images(6, (128, 128), 2) * 0.3 + 0.6
    model.train()
    train_g, _ = _descriptors(model, ground, satellite)
    model.eval()
    eval_g, _ = _descriptors(model, ground, satellite)
    assert (train_g - eval_g).abs().max() > 1e-2


def test_infonce_leaves_same_place_pairs_out_of_the_negatives():
    torch.manual_seed(0)
    ground = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
    satellite = ground.clone()
    satellite[1] = ground[0]            # pair 1 was taken where pair 0 was: its tile looks the same
    plain = info_nce(ground, satellite, 20.0, 0.0)
    same = torch.zeros(4, 4, dtype=torch.bool)
    same[0, 1] = same[1, 0] = True
    masked = info_nce(ground, satellite, 20.0, 0.0, same)
    assert masked < plain - 0.3
    # the mask never removes a positive: masking the diagonal changes nothing
    assert info_nce(ground, satellite, 20.0, 0.0, torch.eye(4, dtype=torch.bool)) == plain
