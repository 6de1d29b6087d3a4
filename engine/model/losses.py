"""Training losses: symmetric InfoNCE, CAFR's CWR and SRS, and the fine-localisation head's loss."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engine.model.cafr_attention import AttentionResult
from engine.model.config import LossConfig
from engine.model.fine_head import FineLocalization


@dataclass
class CafrTargets:
    """Ground truth of a batch of matched pairs (row i of the ground batch pairs with row i of the satellite).

    overlap_centre_px: (B, 2) CWR target (x, y) in satellite-tile pixels (centre of the overlap region).
    overlap_mask: (B, H, W) the photo's footprint on the tile (inside 1, outside ~0), any resolution;
        it is area-averaged onto every attention level and thresholded at 0.5.
    camera_px: (B, 2) camera position (x, y) in tile pixels, for the fine head; None skips it.
    heading_deg: (B,) compass heading of the photo; NaN where unknown; None skips the heading loss.
    same_place: (B, B) bool, True where two different pairs were taken within the InfoNCE exclusion radius of
        each other: those are not negatives of each other and are left out of the softmax; None keeps all.
    """

    overlap_centre_px: Tensor | None = None
    overlap_mask: Tensor | None = None
    camera_px: Tensor | None = None
    heading_deg: Tensor | None = None
    same_place: Tensor | None = None


# ---------------------------------------------------------------- retrieval
def info_nce(ground: Tensor, satellite: Tensor, logit_scale: Tensor | float,
             label_smoothing: float = 0.1, same_place: Tensor | None = None) -> Tensor:
    """Symmetric InfoNCE over a batch of matched unit descriptors: mean of ground->sat and sat->ground CE.
    `same_place` (B, B) masks off-diagonal pairs that are not true negatives (cameras a few metres apart)."""
    logits = logit_scale * ground.float() @ satellite.float().t()
    if same_place is not None:
        eye = torch.eye(logits.shape[0], dtype=torch.bool, device=logits.device)
        logits = logits.masked_fill(same_place.to(logits.device) & ~eye, -1e4)
    labels = torch.arange(logits.shape[0], device=logits.device)
    return 0.5 * (F.cross_entropy(logits, labels, label_smoothing=label_smoothing)
                  + F.cross_entropy(logits.t(), labels, label_smoothing=label_smoothing))


# ---------------------------------------------------------------- CAFR
def cwr_loss(points_cells: Tensor, target_px: Tensor, cell_size_px: Tensor) -> Tensor:
    """Per-level RMSE (L,) of CWR points (B, L, 2) in cell units against targets (B, 2) in px / cell size."""
    target_cells = target_px.float()[:, None, :] / cell_size_px.float()[None, :, :]
    mse = (points_cells.float() - target_cells).pow(2).mean(dim=(0, 2))
    return torch.sqrt(mse + 1e-12)  # eps: the gradient of sqrt is infinite at an exact hit


def level_masks(mask: Tensor, rows: int, cols: int) -> Tensor:
    """Overlap mask (B, H, W) -> boolean positives (B, rows, cols): cells whose area is mostly inside."""
    return F.adaptive_avg_pool2d(mask.float()[:, None], (rows, cols))[:, 0] > 0.5


def srs_loss(attention: Tensor, positives: Tensor, margin: float = 0.5) -> Tensor:
    """Salient region separation, exact and vectorised.

    Per sample: a = attention / max(attention); P = positive cells, N = the rest;
    loss = mean over all (p, n) in P x N of relu(margin - (a_p - a_n)); samples with empty P or N are skipped
    and the result is the mean over the remaining samples (0 when none remain).

    For one positive, sum_n relu(m - a_p + a_n) = sum over a_n > a_p - m of (m - a_p + a_n)
    = count * (m - a_p) + (sum of those a_n): with the negatives sorted, searchsorted finds the count and a
    cumulative sum the sum, so the cost is O(L log L) per sample and memory O(B L), not the O(|P| |N|) loop.
    """
    batch = attention.shape[0]
    scores = attention.float().reshape(batch, -1)
    scores = scores / scores.amax(dim=1, keepdim=True).clamp_min(1e-30)
    positive = positives.reshape(batch, -1).to(torch.bool)
    n_pos = positive.sum(dim=1)
    n_neg = positive.shape[1] - n_pos
    valid = (n_pos > 0) & (n_neg > 0)

    # positives become -inf so they sort first and never exceed a threshold a_p - m (finite)
    negatives = scores.masked_fill(positive, float("-inf"))
    sorted_neg, _ = negatives.sort(dim=1)
    prefix = F.pad(sorted_neg.masked_fill(torch.isinf(sorted_neg), 0.0).cumsum(dim=1), (1, 0))
    threshold = (scores - margin).contiguous()
    below = torch.searchsorted(sorted_neg.detach().contiguous(), threshold.detach(), right=True)
    count_above = scores.shape[1] - below
    sum_above = prefix[:, -1:] - prefix.gather(1, below)
    per_positive = count_above * (margin - scores) + sum_above
    pair_sum = (per_positive * positive).sum(dim=1)
    per_sample = pair_sum / (n_pos * n_neg).clamp_min(1)
    if not bool(valid.any()):
        return (scores * 0.0).sum()  # keeps the graph connected (DDP), contributes nothing
    return (per_sample * valid).sum() / valid.sum()


# ---------------------------------------------------------------- fine head
def fine_cell_targets(camera_px: Tensor, grid: int,
                      cell_size_px: tuple[float, float]) -> tuple[Tensor, Tensor]:
    """(row-major cell index (B,), offset (x, y) inside that cell in [0, 1] (B, 2)) of camera positions."""
    scaled = camera_px.float() / camera_px.new_tensor(cell_size_px, dtype=torch.float32)
    cell = scaled.floor().clamp(0, grid - 1)
    offset = (scaled - cell).clamp(0.0, 1.0)
    return (cell[:, 1] * grid + cell[:, 0]).long(), offset


def fine_losses(fine: FineLocalization, camera_px: Tensor, heading_deg: Tensor | None) -> dict[str, Tensor]:
    """Cross-entropy on the camera's cell, smooth-L1 on the offset inside it, 1 - cos on the heading there."""
    label, offset_target = fine_cell_targets(camera_px, fine.grid, fine.cell_size_px)
    index = torch.arange(label.shape[0], device=label.device)
    cell = F.cross_entropy(fine.cell_logits, label)
    offset = F.smooth_l1_loss(fine.offsets[index, label], offset_target, beta=0.1)
    heading = fine.heading_vectors.sum() * 0.0
    if heading_deg is not None:
        known = torch.isfinite(heading_deg)
        if bool(known.any()):
            radians = torch.deg2rad(torch.where(known, heading_deg.float(), 0.0))
            target = torch.stack((radians.sin(), radians.cos()), dim=-1)
            cosine = (fine.heading_vectors[index, label] * target).sum(dim=-1)
            heading = ((1.0 - cosine) * known).sum() / known.sum()
    return {"fine_cell": cell, "fine_offset": offset, "fine_heading": heading}


# ---------------------------------------------------------------- total
class CafrLoss(nn.Module):
    """InfoNCE + cafr_weight * (sum CWR + weighted sum SRS) once warm + fine_weight * fine-head loss.

    Terms that are switched off (before their start epoch) or lack targets are still computed or tied in with
    weight 0 when possible, so every parameter receives a (zero) gradient: DDP needs no unused-parameter scan.
    """

    def __init__(self, config: LossConfig | None = None) -> None:
        super().__init__()
        self.config = config or LossConfig()

    def forward(self, output, targets: CafrTargets, epoch: int) -> dict[str, Tensor]:
        """output: CrossViewOutput of CrossViewNet.forward. Returns named scalar terms, "total" included."""
        cfg = self.config
        terms: dict[str, Tensor] = {
            "infonce": info_nce(output.ground.descriptor, output.satellite.descriptor, output.logit_scale,
                                cfg.label_smoothing, targets.same_place)}
        cafr = self._cafr_terms(output.attention, targets, terms)
        fine = self._fine_terms(output.fine, targets, terms)
        cafr_on = float(epoch >= cfg.cafr_start_epoch)
        fine_on = float(epoch >= cfg.fine_start_epoch)
        terms["total"] = (terms["infonce"] + cafr_on * cfg.cafr_weight * cafr
                          + fine_on * cfg.fine_weight * fine)
        return terms

    def _cafr_terms(self, attention: AttentionResult, targets: CafrTargets,
                    terms: dict[str, Tensor]) -> Tensor:
        cfg = self.config
        tie = sum(m.sum() for m in attention.maps) * 0.0 + attention.points_cells.sum() * 0.0
        cafr = tie
        if targets.overlap_centre_px is not None:
            levels = cwr_loss(attention.points_cells, targets.overlap_centre_px, attention.cell_size_px)
            for stride, value in zip(attention.strides, levels, strict=True):
                terms[f"cwr_s{stride}"] = value.detach()
            terms["cwr"] = levels.sum()
            cafr = cafr + terms["cwr"]
        if targets.overlap_mask is not None:
            if len(cfg.srs_level_weights) != len(attention.maps):
                raise ValueError(f"srs_level_weights has {len(cfg.srs_level_weights)} entries for "
                                 f"{len(attention.maps)} attention levels")
            weighted = attention.maps[0].new_zeros(())
            levels = zip(attention.strides, cfg.srs_level_weights, attention.maps, strict=True)
            for stride, weight, attention_map in levels:
                rows, cols = attention_map.shape[-2:]
                value = srs_loss(attention_map, level_masks(targets.overlap_mask, rows, cols), cfg.srs_margin)
                terms[f"srs_s{stride}"] = value.detach()
                weighted = weighted + weight * value
            terms["srs"] = weighted
            cafr = cafr + weighted
        return cafr

    def _fine_terms(self, fine: FineLocalization, targets: CafrTargets, terms: dict[str, Tensor]) -> Tensor:
        cfg = self.config
        tie = fine.cell_logits.sum() * 0.0 + fine.offsets.sum() * 0.0 + fine.heading_vectors.sum() * 0.0
        if targets.camera_px is None:
            return tie
        parts = fine_losses(fine, targets.camera_px, targets.heading_deg)
        terms.update(parts)
        terms["fine"] = (parts["fine_cell"] + cfg.fine_offset_weight * parts["fine_offset"]
                         + cfg.fine_heading_weight * parts["fine_heading"])
        return tie + terms["fine"]

