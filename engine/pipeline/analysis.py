"""Turning model outputs for one (photo, tile) pair into map geometry, and merging candidates.

Confidence of a candidate = P(tile) x P(cell):
- P(tile): softmax of the top-k retrieval cosines times the model's logit scale (the InfoNCE temperature the
  descriptors were trained with), i.e. the model's own probability that this tile is the match among the
  retrieved ones.
- P(cell): the fine head's probability of the chosen grid cell, multiplied by the prior weights of that
  cell (position prior: exp(-d^2 / 2 (s^2 + sigma^2)) of the cell's predicted position from the prior point,
  s the spread of the head's position within a cell, sigma the prior's; heading prior:
  exp(kappa (cos(dh) - 1)), kappa = 1 / tolerance^2 in radians). Both weights are 1 at the prior's mode and
  without priors, so the confidence never exceeds the model's own probability.
With a position prior the camera is the inverse-variance fusion of the chosen cell's position and the prior
point (two Gaussian estimates of one position), so a vague prior barely moves the model's answer and a sharp
one (survey-grade GPS) dominates it.
Both factors grow with the evidence, so the confidence is monotonic in each, lies in [0, 1], and the
confidences of one photo's candidates sum to at most 1.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from affine import Affine
from rasterio import features
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from engine.data.geometry import TileFrame, heading_difference, map_to_lonlat
from engine.pipeline.results import Candidate, Position, RankedPosition


def retrieval_probabilities(scores: np.ndarray, logit_scale: float) -> np.ndarray:
    """Softmax over the candidates' cosine scores at the model's logit scale."""
    logits = logit_scale * np.asarray(scores, dtype=np.float64)
    logits -= logits.max()
    weights = np.exp(logits)
    return weights / weights.sum()


def position_in(crs, x: float, y: float) -> Position:
    lon, lat = map_to_lonlat(crs, x, y)
    return Position(float(x), float(y), float(lon), float(lat))


@dataclass
class FineChoice:
    """The fine head's answer for one tile after the priors."""

    position_px: tuple[float, float]    # camera (x, y) in tile pixels
    heading_deg: float
    cell_probability: float             # model probability of the chosen cell
    prior_weight: float                 # prior weight of the chosen cell (1 without priors)

    @property
    def certainty(self) -> float:
        return self.cell_probability * self.prior_weight


def choose_cell(probabilities: np.ndarray, offsets: np.ndarray, heading_vectors: np.ndarray,
                cell_size_px: tuple[float, float], tile: TileFrame,
                prior_xy: tuple[float, float, float] | None = None,
                prior_heading: tuple[float, float] | None = None, cell_sigma_px: float | None = None
                ) -> FineChoice:
    """Pick the grid cell maximising probability x prior weight; fuse its position with a position prior.

    probabilities (N*N,), offsets (N*N, 2) in [0, 1], heading_vectors (N*N, 2) as (sin, cos);
    prior_xy = (x, y, sigma_m) in map CRS; prior_heading = (heading_deg, tolerance_deg); cell_sigma_px: the
    1-sigma spread of the head's position inside its cell (default half a cell).
    Without priors this is the head's own arg-max, the position the model itself decodes.
    """
    cells = probabilities.size
    grid = int(round(np.sqrt(cells)))
    rows, cols = np.divmod(np.arange(cells), grid)
    px = (cols + offsets[:, 0]) * cell_size_px[0]
    py = (rows + offsets[:, 1]) * cell_size_px[1]
    headings = np.rad2deg(np.arctan2(heading_vectors[:, 0], heading_vectors[:, 1])) % 360.0
    weights = np.ones(cells, dtype=np.float64)
    if cell_sigma_px is None:
        cell_sigma_px = 0.5 * float(np.mean(cell_size_px))
    model_var = (cell_sigma_px * tile.metres_per_px) ** 2
    if prior_xy is not None:
        x, y = tile.tile_to_map(px, py)
        distance2 = (x - prior_xy[0]) ** 2 + (y - prior_xy[1]) ** 2
        weights *= np.exp(-0.5 * distance2 / (model_var + prior_xy[2] ** 2))
    if prior_heading is not None:
        kappa = 1.0 / np.deg2rad(prior_heading[1]) ** 2
        weights *= np.exp(kappa * (np.cos(np.deg2rad(heading_difference(headings, prior_heading[0]))) - 1.0))
    best = int(np.argmax(probabilities * weights))
    position = (float(px[best]), float(py[best]))
    if prior_xy is not None:
        share = model_var / (model_var + prior_xy[2] ** 2)      # how far the prior pulls the cell's position
        fused_x = x[best] + share * (prior_xy[0] - x[best])
        fused_y = y[best] + share * (prior_xy[1] - y[best])
        position = tuple(float(v) for v in tile.map_to_tile(fused_x, fused_y))
    return FineChoice(position, float(headings[best]), float(probabilities[best]), float(weights[best]))


def overlap_region(attention: np.ndarray, grid_transform: Affine, threshold: float,
                   simplify_m: float) -> BaseGeometry | None:
    """Cells whose attention exceeds `threshold` x its maximum, polygonised in map CRS and simplified."""
    peak = float(attention.max())
    if not np.isfinite(peak) or peak <= 0:
        return None
    mask = (attention / peak > threshold).astype(np.uint8)
    shapes = [shape(geometry) for geometry, value in features.shapes(mask, mask=mask.astype(bool),
                                                                      transform=grid_transform) if value == 1]
    if not shapes:
        return None
    region = shapely.union_all(shapes)
    if simplify_m > 0:
        region = region.simplify(simplify_m, preserve_topology=True)
    return None if region.is_empty else region


def merge_candidates(candidates: Sequence[Candidate], radius_m: float, crs) -> list[RankedPosition]:
    """Cluster candidate positions closer than `radius_m` (greedy, most confident first).

    A cluster's position is the confidence-weighted mean of its members, its heading their weighted
    circular mean, its confidence the sum of theirs (at most 1: see the module note), its score the best
    member's retrieval cosine. Ranked by confidence.
    """
    clusters: list[list[Candidate]] = []
    for candidate in sorted(candidates, key=lambda c: (-c.confidence, c.rank)):
        anchor = candidate.position
        for cluster in clusters:
            lead = cluster[0].position
            if np.hypot(anchor.x - lead.x, anchor.y - lead.y) <= radius_m:
                cluster.append(candidate)
                break
        else:
            clusters.append([candidate])
    merged = []
    for members in clusters:
        confidence = np.array([m.confidence for m in members], dtype=np.float64)
        weights = confidence / confidence.sum() if confidence.sum() > 0 else np.full(len(members), 1 / len(members))
        x = float(sum(w * m.position.x for w, m in zip(weights, members)))
        y = float(sum(w * m.position.y for w, m in zip(weights, members)))
        angles = np.deg2rad([m.heading_deg for m in members])
        heading = float(np.rad2deg(np.arctan2((weights * np.sin(angles)).sum(), (weights * np.cos(angles)).sum())))
        merged.append(RankedPosition(0, position_in(crs, x, y), float(max(m.score for m in members)),
                                     float(min(1.0, confidence.sum())), heading % 360.0,
                                     sorted(m.rank for m in members)))
    merged.sort(key=lambda p: (-p.confidence, -p.score))
    for rank, position in enumerate(merged, start=1):
        position.rank = rank
    return merged
