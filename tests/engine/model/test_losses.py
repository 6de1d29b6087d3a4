"""Losses: InfoNCE by hand, CWR, exact vectorised SRS against a naive loop, fine-head loss, the total."""
from __future__ import annotations

import math

import pytest
import torch

from engine.model import CafrLoss, CafrTargets, LossConfig
from engine.model.fine_head import FineLocalizationHead
from engine.model.losses import cwr_loss, fine_cell_targets, fine_losses, info_nce, level_masks, srs_loss
from tests.engine.model.conftest import random_images, small_model


# ---------------------------------------------------------------- InfoNCE
def smoothed_cross_entropy(logits: list[float], label: int, smoothing: float) -> float:
    log_total = math.log(sum(math.exp(v) for v in logits))
    log_p = [v - log_total for v in logits]
    return -(1 - smoothing) * log_p[label] - smoothing / len(logits) * sum(log_p)


def test_info_nce_matches_a_hand_computation():
    ground = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    satellite = torch.tensor([[0.6, 0.8], [0.0, 1.0]])
    # logits = 10 * ground @ satellite.T = [[6, 0], [8, 10]]
    ground_to_sat = smoothed_cross_entropy([6, 0], 0, 0.1) + smoothed_cross_entropy([8, 10], 1, 0.1)
    sat_to_ground = smoothed_cross_entropy([6, 8], 0, 0.1) + smoothed_cross_entropy([0, 10], 1, 0.1)
    expected = 0.5 * (ground_to_sat / 2 + sat_to_ground / 2)
    assert float(info_nce(ground, satellite, 10.0, 0.1)) == pytest.approx(expected, rel=1e-6)


def test_info_nce_is_symmetric():
    generator = torch.Generator().manual_seed(3)
    ground = torch.nn.functional.normalize(torch.randn(7, 16, generator=generator), dim=-1)
    satellite = torch.nn.functional.normalize(torch.randn(7, 16, generator=generator), dim=-1)
    forward = info_nce(ground, satellite, 14.3, 0.1)
    backward = info_nce(satellite, ground, 14.3, 0.1)
    torch.testing.assert_close(forward, backward)
    # and it rewards matching pairs: identical descriptors give a lower loss than random ones
    assert float(info_nce(ground, ground, 14.3, 0.1)) < float(forward)


def test_logit_scale_is_clamped_at_100():
    model = small_model()
    assert float(model.logit_scale().detach()) == pytest.approx(1 / 0.07)
    with torch.no_grad():
        model.log_logit_scale.fill_(math.log(1000.0))
    assert float(model.logit_scale().detach()) == 100.0


# ---------------------------------------------------------------- CWR
def test_cwr_is_per_level_rmse_of_targets_scaled_by_cell_size():
    points = torch.tensor([[[1.0, 2.0], [0.5, 0.5]], [[3.0, 1.0], [1.5, 0.5]]])  # (B=2, L=2, 2) cells
    target_px = torch.tensor([[16.0, 16.0], [24.0, 8.0]])
    cell_size = torch.tensor([[8.0, 8.0], [16.0, 16.0]])
    # level 0 targets in cells: (2, 2), (3, 1) -> diffs (-1, 0), (0, 0)
    # level 1 targets in cells: (1, 1), (1.5, 0.5) -> diffs (-0.5, -0.5), (0, 0)
    expected = torch.tensor([math.sqrt(1 / 4), math.sqrt(0.5 / 4)])
    torch.testing.assert_close(cwr_loss(points, target_px, cell_size), expected)


# ---------------------------------------------------------------- SRS
def naive_srs(attention: torch.Tensor, positives: torch.Tensor, margin: float) -> torch.Tensor:
    """The per-sample double loop of the public code, as the reference."""
    losses = []
    for scores, mask in zip(attention.flatten(1), positives.flatten(1)):
        scores = scores / scores.max()
        inside = [scores[i] for i in range(len(scores)) if mask[i]]
        outside = [scores[i] for i in range(len(scores)) if not mask[i]]
        if not inside or not outside:
            continue
        total = sum(torch.relu(margin - (p - n)) for p in inside for n in outside)
        losses.append(total / (len(inside) * len(outside)))
    return sum(losses) / len(losses) if losses else torch.zeros(())


def test_srs_is_zero_when_inside_beats_outside_by_the_margin():
    attention = torch.full((2, 4, 4), 0.4)
    positives = torch.zeros(2, 4, 4, dtype=torch.bool)
    positives[:, :2] = True
    attention[positives] = 1.0
    assert float(srs_loss(attention, positives, 0.5)) == 0.0
    attention[~positives] = 0.5  # exactly the margin
    assert float(srs_loss(attention, positives, 0.5)) == 0.0


def test_srs_is_positive_when_the_gap_is_below_the_margin():
    attention = torch.full((1, 4, 4), 0.6)
    positives = torch.zeros(1, 4, 4, dtype=torch.bool)
    positives[0, 0] = True
    attention[positives] = 1.0
    assert float(srs_loss(attention, positives, 0.5)) == pytest.approx(0.1)
    attention[~positives] = 2.0  # outside brighter than inside: after max-normalisation 0.5 vs 1
    assert float(srs_loss(attention, positives, 0.5)) == pytest.approx(1.0)


def test_srs_skips_samples_without_inside_or_outside_cells():
    attention = torch.rand(3, 3, 3, generator=torch.Generator().manual_seed(0))
    positives = torch.zeros(3, 3, 3, dtype=torch.bool)
    positives[0, 1, 1] = True
    positives[1] = True  # no negatives
    # sample 2 has no positives
    only_first = srs_loss(attention[:1], positives[:1], 0.5)
    torch.testing.assert_close(srs_loss(attention, positives, 0.5), only_first)
    none_valid = attention[1:].clone().requires_grad_(True)
    value = srs_loss(none_valid, positives[1:], 0.5)
    value.backward()
    assert float(value.detach()) == 0.0 and none_valid.grad is not None


@pytest.mark.parametrize("seed,shape,quantise",
                         [(0, (5, 6, 6), False), (1, (4, 4, 7), True), (2, (3, 1, 9), False)])
def test_vectorised_srs_equals_the_naive_loop_in_value_and_gradient(seed, shape, quantise):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(*shape, generator=generator) * 2
    if quantise:  # ties between inside and outside values, and pairs exactly at the margin
        logits = (logits * 2).round() / 2
    positives = torch.rand(*shape, generator=generator) < torch.rand(shape[0], 1, 1, generator=generator)
    positives[0] = False
    positives[0, 0, 0] = True
    attention = logits.flatten(1).softmax(-1).view(shape)

    fast_input = attention.clone().requires_grad_(True)
    slow_input = attention.clone().requires_grad_(True)
    fast = srs_loss(fast_input, positives, 0.5)
    slow = naive_srs(slow_input, positives, 0.5)
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-6)
    fast.backward()
    slow.backward()
    torch.testing.assert_close(fast_input.grad, slow_input.grad, rtol=1e-4, atol=1e-6)


def test_vectorised_srs_at_full_size_matches_a_pairwise_reference():
    """Batch 64 of 32 x 32 maps (the stride-8 level): checked against an explicit P x N matrix per sample."""
    generator = torch.Generator().manual_seed(7)
    attention = (torch.randn(64, 32 * 32, generator=generator) * 3).softmax(-1).view(64, 32, 32)
    positives = torch.rand(64, 32, 32, generator=generator) < 0.3
    expected = []
    for scores, mask in zip(attention.flatten(1), positives.flatten(1)):
        scores = scores / scores.max()
        pairs = torch.relu(0.5 - (scores[mask][:, None] - scores[~mask][None, :]))
        expected.append(pairs.mean())
    torch.testing.assert_close(srs_loss(attention, positives, 0.5), torch.stack(expected).mean())


def test_level_masks_threshold_the_cell_area_at_one_half():
    mask = torch.zeros(1, 64, 64)
    mask[0, :, :40] = 1.0  # 62.5 % of the width
    cells = level_masks(mask, 4, 4)  # 16-px cells: columns 0, 1 full, column 2 half (8 of 16 px) -> no
    assert cells[0, 0].tolist() == [True, True, False, False]
    cells = level_masks(mask, 2, 2)  # 32-px cells: column 1 covers 8 of 32 px inside -> no
    assert cells[0, 0].tolist() == [True, False]


# ---------------------------------------------------------------- fine head
def test_fine_cell_targets():
    camera = torch.tensor([[70.0, 20.0], [128.0, 128.0], [0.0, 127.0]])
    cells, offsets = fine_cell_targets(camera, 4, (32.0, 32.0))
    assert cells.tolist() == [0 * 4 + 2, 3 * 4 + 3, 3 * 4 + 0]
    torch.testing.assert_close(offsets, torch.tensor([[6 / 32, 20 / 32], [1.0, 1.0], [0.0, 31 / 32]]))


def test_fine_heading_loss_is_one_minus_cosine_and_ignores_unknown_headings():
    head = FineLocalizationHead(8, 16, 2, 2, 1)
    with torch.no_grad():
        fine = head(torch.randn(3, 8, 2, 2), torch.randn(3, 8, 4, 4), (64, 64))
    camera = torch.tensor([[10.0, 10.0], [40.0, 10.0], [10.0, 40.0]])
    label, _ = fine_cell_targets(camera, 2, fine.cell_size_px)
    predicted = fine.heading_vectors[torch.arange(3), label]
    heading = torch.rad2deg(torch.atan2(predicted[:, 0], predicted[:, 1]))
    assert float(fine_losses(fine, camera, heading)["fine_heading"]) == pytest.approx(0.0, abs=1e-5)
    opposite = heading + 180.0
    assert float(fine_losses(fine, camera, opposite)["fine_heading"]) == pytest.approx(2.0, abs=1e-5)
    mixed = torch.stack((heading[0], opposite[1], torch.tensor(float("nan"))))
    assert float(fine_losses(fine, camera, mixed)["fine_heading"]) == pytest.approx(1.0, abs=1e-5)


def test_fine_head_learns_to_find_a_marked_place_its_offset_and_heading():
    """A toy the design must solve: the ground view shows a marker that sits at one spot of the tile, and
    encodes the heading. Cell, offset inside the cell and heading all have to come through cross-attention."""
    torch.manual_seed(0)
    channels = 16
    head = FineLocalizationHead(channels, 32, 2, grid=4, cell_subdivisions=2)
    marker, east, north = torch.randn(3, channels)

    def sample(batch: int):
        satellite = torch.randn(batch, channels, 8, 8)
        rows, cols = torch.randint(0, 8, (batch,)), torch.randint(0, 8, (batch,))
        satellite[torch.arange(batch), :, rows, cols] = 2 * marker
        heading = torch.rand(batch) * 360
        radians = torch.deg2rad(heading)[:, None, None, None]
        ground = 2 * (marker[:, None, None] + radians.sin() * east[:, None, None]
                      + radians.cos() * north[:, None, None]) + 0.3 * torch.randn(batch, channels, 2, 3)
        camera = torch.stack(((cols + 0.5) * 16.0, (rows + 0.5) * 16.0), dim=-1)
        return ground, satellite, camera, heading

    optimiser = torch.optim.Adam(head.parameters(), lr=3e-3)
    for _ in range(150):
        ground, satellite, camera, heading = sample(32)
        terms = fine_losses(head(ground, satellite, (128, 128)), camera, heading)
        loss = terms["fine_cell"] + terms["fine_offset"] + terms["fine_heading"]
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    head.eval()
    with torch.no_grad():
        ground, satellite, camera, heading = sample(256)
        fine = head(ground, satellite, (128, 128))
    error_px = (fine.position_px - camera).norm(dim=-1)
    heading_error = ((fine.heading_deg - heading + 180) % 360 - 180).abs()
    assert float(error_px.median()) < 4.0  # the marked sub-cell is 16 px wide, the grid cell 32 px
    assert float((error_px < 16).float().mean()) > 0.9
    assert float(heading_error.median()) < 15.0


# ---------------------------------------------------------------- total loss
def batch_targets(batch: int, tile: int = 128) -> CafrTargets:
    generator = torch.Generator().manual_seed(11)
    mask = torch.zeros(batch, tile, tile)
    mask[:, : tile // 2] = 1.0
    return CafrTargets(overlap_centre_px=torch.rand(batch, 2, generator=generator) * tile,
                       overlap_mask=mask,
                       camera_px=torch.rand(batch, 2, generator=generator) * tile,
                       heading_deg=torch.rand(batch, generator=generator) * 360)


@pytest.mark.parametrize("shared", [True, False])
def test_every_trainable_parameter_gets_a_gradient_from_the_total_loss(shared):
    model = small_model(shared_backbone=shared, learn_attention_temperature=True,
                        attention_temperature=0.05).train()
    output = model(random_images(4, (96, 160)), random_images(4, (128, 128), seed=1))
    terms = CafrLoss()(output, batch_targets(4), epoch=5)
    terms["total"].backward()
    without = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not without
    zero = [name for name, p in model.named_parameters()
            if p.requires_grad and not bool(p.grad.abs().sum() > 0)]
    assert not zero


def test_cafr_terms_switch_on_at_the_warm_up_epoch():
    model = small_model().train()
    output = model(random_images(4, (96, 160)), random_images(4, (128, 128), seed=1))
    targets = batch_targets(4)
    config = LossConfig(cafr_weight=0.05, cafr_start_epoch=3, fine_weight=0.7)
    loss = CafrLoss(config)
    before, after = loss(output, targets, epoch=2), loss(output, targets, epoch=3)
    torch.testing.assert_close(before["total"], before["infonce"] + 0.7 * before["fine"])
    torch.testing.assert_close(
        after["total"], after["infonce"] + 0.05 * (after["cwr"] + after["srs"]) + 0.7 * after["fine"])
    weights = config.srs_level_weights
    weighted = sum(w * after[f"srs_s{s}"] for w, s in zip(weights, (8, 16, 32, 64)))
    torch.testing.assert_close(after["srs"], weighted)
    torch.testing.assert_close(after["cwr"], sum(after[f"cwr_s{s}"] for s in (8, 16, 32, 64)))
    # switched-off terms still reach the attention parameters (with zero gradient): DDP sees them used
    before["total"].backward()
    grads = [p.grad for p in model.attention.parameters()]
    assert all(g is not None for g in grads) and all(float(g.abs().sum()) == 0 for g in grads)


def test_missing_targets_leave_only_infonce():
    model = small_model().train()
    output = model(random_images(2, (96, 160)), random_images(2, (128, 128), seed=1))
    terms = CafrLoss()(output, CafrTargets(), epoch=10)
    torch.testing.assert_close(terms["total"], terms["infonce"])
    terms["total"].backward()
    assert all(p.grad is not None for p in model.parameters())
