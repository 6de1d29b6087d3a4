"""From a score volume over (heading, placement) to what an analyst reads: the pose, its spread, a calibrated
confidence, the 95 % credible region and the probability surface. Priors multiply in here.

A placement grid is north-up with `cell_m` cells; placement (row a, col b) puts the camera at map point
(x0 + b * cell, y0 - a * cell), where (x0, y0) is the map position of placement (0, 0).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from affine import Affine
from rasterio.features import shapes
from shapely.geometry import shape
from shapely.ops import unary_union

#: Confidence is P(error <= this radius), read off the posterior.
CONFIDENCE_RADIUS_M = 5.0
CREDIBLE_LEVEL = 0.95


@dataclass
class PlacementGrid:
    x0: float           # map x of placement column 0
    y0: float           # map y of placement row 0
    cell_m: float
    rows: int
    cols: int

    def xy(self, row: float, col: float) -> tuple[float, float]:
        return self.x0 + col * self.cell_m, self.y0 - row * self.cell_m

    def cell_transform(self) -> Affine:
        """Pixel -> map transform of a raster whose cell (a, b) is centred on placement (a, b)."""
        half = self.cell_m / 2.0
        return Affine(self.cell_m, 0.0, self.x0 - half, 0.0, -self.cell_m, self.y0 + half)

    def coordinates(self) -> tuple[np.ndarray, np.ndarray]:
        cols = self.x0 + np.arange(self.cols) * self.cell_m
        rows = self.y0 - np.arange(self.rows) * self.cell_m
        return np.meshgrid(cols, rows)


@dataclass
class PosePosterior:
    """Normalised posterior: log P(heading k, placement a, b) = log_xy[a, b] + log P(k | a, b)."""

    log_xy: np.ndarray              # (A, B) log marginal over headings, logsumexp = 0
    best_heading: np.ndarray        # (A, B) index of the most likely heading at each placement
    heading_marginal: np.ndarray    # (K,) P(k), sums to 1
    headings_deg: np.ndarray        # (K,)
    grid: PlacementGrid


def gaussian_position_log_prior(grid: PlacementGrid, centre: tuple[float, float], sigma_m: float) -> np.ndarray:
    x, y = grid.coordinates()
    return -0.5 * ((x - centre[0]) ** 2 + (y - centre[1]) ** 2) / sigma_m ** 2


def heading_log_prior(headings_deg: np.ndarray, centre_deg: float, sigma_deg: float) -> np.ndarray:
    """Wrapped-Gaussian (von Mises) log prior over compass headings."""
    kappa = 1.0 / math.radians(sigma_deg) ** 2
    return kappa * (np.cos(np.radians(headings_deg - centre_deg)) - 1.0)


def posterior_from_scores(scores: torch.Tensor, grid: PlacementGrid, headings_deg: np.ndarray,
                          temperature: float = 1.0, position_log_prior: np.ndarray | None = None,
                          heading_log_prior_k: np.ndarray | None = None) -> PosePosterior:
    """(K, A, B) raw scores -> PosePosterior with the priors multiplied in."""
    logits = scores.double() / temperature
    if heading_log_prior_k is not None:
        logits = logits + torch.from_numpy(heading_log_prior_k)[:, None, None]
    if position_log_prior is not None:
        logits = logits + torch.from_numpy(position_log_prior)[None]
    total = torch.logsumexp(logits.flatten(), 0)
    log_p = logits - total
    log_xy = torch.logsumexp(log_p, 0)
    heading = torch.logsumexp(log_p.flatten(1), 1).exp()
    return PosePosterior(log_xy.numpy(), log_p.argmax(0).numpy(), heading.numpy(), headings_deg, grid)


@dataclass
class PoseSummary:
    x: float
    y: float
    heading_deg: float
    heading_sigma_deg: float
    covariance_m2: list[list[float]]
    confidence: float
    credible_region: object          # shapely geometry, map CRS
    surface: np.ndarray              # (A, B) float32 probabilities
    surface_transform: Affine


def summarise(posterior: PosePosterior, heading_profile: np.ndarray | None = None,
              refine_radius: int = 2) -> PoseSummary:
    """Arg-max refined by the local expectation; covariance, heading spread, confidence and credible region
    from the probability mass. heading_profile: P(k | best placement), if the caller computed it."""
    grid, p = posterior.grid, np.exp(posterior.log_xy)
    a, b = np.unravel_index(int(np.argmax(p)), p.shape)
    a0, a1 = max(0, a - refine_radius), min(p.shape[0], a + refine_radius + 1)
    b0, b1 = max(0, b - refine_radius), min(p.shape[1], b + refine_radius + 1)
    local = p[a0:a1, b0:b1]
    rows, cols = np.mgrid[a0:a1, b0:b1]
    row = float((local * rows).sum() / local.sum())
    col = float((local * cols).sum() / local.sum())
    x, y = grid.xy(row, col)

    gx, gy = grid.coordinates()
    mean_x, mean_y = float((p * gx).sum()), float((p * gy).sum())
    dx, dy = gx - mean_x, gy - mean_y
    cov = [[float((p * dx * dx).sum()), float((p * dx * dy).sum())],
           [float((p * dx * dy).sum()), float((p * dy * dy).sum())]]
    confidence = float(p[np.hypot(gx - x, gy - y) <= CONFIDENCE_RADIUS_M].sum())

    headings = posterior.headings_deg
    if heading_profile is None:
        heading_profile = np.zeros(len(headings))
        heading_profile[posterior.best_heading[a, b]] = 1.0
    heading_deg, _ = _circular_mean(headings, heading_profile, around=int(np.argmax(heading_profile)))
    _, heading_sigma = _circular_mean(headings, posterior.heading_marginal)
    return PoseSummary(x, y, heading_deg, heading_sigma, cov, confidence, credible_region(p, grid),
                       p.astype(np.float32), grid.cell_transform())


def _circular_mean(headings_deg: np.ndarray, weights: np.ndarray, around: int | None = None
                   ) -> tuple[float, float]:
    """Weighted circular mean (of the +-3 bins around `around` when given) and the circular std, degrees."""
    w = np.asarray(weights, dtype=np.float64).copy()
    if around is not None:
        k = len(w)
        keep = np.zeros(k, bool)
        keep[[(around + d) % k for d in range(-3, 4)]] = True
        w[~keep] = 0.0
    w = w / max(w.sum(), 1e-300)
    rad = np.radians(headings_deg)
    s, c = float((w * np.sin(rad)).sum()), float((w * np.cos(rad)).sum())
    length = min(1.0, math.hypot(s, c))
    sigma = math.degrees(math.sqrt(max(0.0, -2.0 * math.log(max(length, 1e-12)))))
    return math.degrees(math.atan2(s, c)) % 360.0, min(sigma, 180.0)


def credible_region(p: np.ndarray, grid: PlacementGrid, level: float = CREDIBLE_LEVEL):
    """The smallest set of placement cells holding `level` of the mass, as one (multi)polygon."""
    order = np.argsort(p, axis=None)[::-1]
    cumulative = np.cumsum(p.flat[order])
    count = int(np.searchsorted(cumulative, level) + 1)
    mask = np.zeros(p.size, dtype=np.uint8)
    mask[order[:count]] = 1
    mask = mask.reshape(p.shape)
    polygons = [shape(geom) for geom, value in shapes(mask, mask=mask.astype(bool),
                                                        transform=grid.cell_transform()) if value == 1]
    return unary_union(polygons)
