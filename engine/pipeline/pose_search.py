"""Pose search on a map: score every (x, y, heading) hypothesis in the search windows with a ground-plane
matcher, multiply in the priors, and summarise the posterior as a PoseEstimate.

Placements lie on one lattice of the map CRS (multiples of the BEV cell), so windows from a GPS prior, from
retrieved tiles or from an exhaustive sweep share cells and one posterior covers them all.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch
from affine import Affine
from shapely.geometry import box
from shapely.ops import unary_union

from engine.geo.raster import MapRaster
from engine.model.pose_geometry import headings_deg as evenly_spaced_headings
from engine.pipeline.pose_matchers import PhotoInput, bev_picture
from engine.pipeline.pose_volume import (
    CREDIBLE_LEVEL,
    PlacementGrid,
    PosePosterior,
    PoseSummary,
    gaussian_position_log_prior,
    heading_log_prior,
    summarise,
)

#: Windows of at most this many placements per side keep one FFT volume in a few hundred MB.
MAX_WINDOW_PLACEMENTS = 256
FEATURE_CACHE_WINDOWS = 32


@dataclass(frozen=True)
class PositionPriorXY:
    x: float
    y: float
    sigma_m: float


@dataclass(frozen=True)
class HeadingPriorDeg:
    heading_deg: float
    sigma_deg: float


@dataclass
class ScoredWindow:
    window: PlacementGrid
    r0: int                      # offset of the window in the region's grid
    c0: int
    scores: torch.Tensor         # (K, A, B) raw matcher scores
    on_map: np.ndarray           # (A, B) camera point on valid map


@dataclass
class ScoredRegion:
    photo: PhotoInput
    grid: PlacementGrid
    pieces: list[ScoredWindow]
    region: object               # shapely union of the searched extents


@dataclass
class PoseSearchResult:
    summary: PoseSummary
    posterior: PosePosterior
    bev_rgba: np.ndarray
    bev_transform: Affine
    search_region: object
    method: str


def window_bounds_around(x: float, y: float, radius_m: float) -> tuple[float, float, float, float]:
    return (x - radius_m, y - radius_m, x + radius_m, y + radius_m)


def split_region(bounds: tuple[float, float, float, float], cell_m: float
                 ) -> list[tuple[float, float, float, float]]:
    """Placement bounds (left, bottom, right, top) cut into windows of at most MAX_WINDOW_PLACEMENTS."""
    left, bottom, right, top = bounds
    span = MAX_WINDOW_PLACEMENTS * cell_m
    windows = []
    y = top
    while y > bottom + 1e-9:
        x = left
        while x < right - 1e-9:
            windows.append((x, max(bottom, y - span + cell_m), min(right, x + span - cell_m), y))
            x += span
        y -= span
    return windows


class PoseSearch:
    """Scores pose hypotheses of one photo on one map with a matcher (LearnedMatcher or ColourMatcher)."""

    def __init__(self, matcher, headings: int = 64) -> None:
        self.matcher = matcher
        self.headings = evenly_spaced_headings(headings)
        self._cache: OrderedDict = OrderedDict()

    @property
    def cell_m(self) -> float:
        return self.matcher.grid.cell_m

    def lattice(self, bounds: tuple[float, float, float, float]) -> PlacementGrid:
        """The placement grid covering `bounds`, snapped to multiples of the cell in map coordinates."""
        c = self.cell_m
        left, bottom, right, top = bounds
        x0, y0 = math.floor(left / c) * c, math.ceil(top / c) * c
        cols = int(math.floor((right - x0) / c)) + 1
        rows = int(math.floor((y0 - bottom) / c)) + 1
        return PlacementGrid(x0, y0, c, max(rows, 1), max(cols, 1))

    def _window_scores(self, raster: MapRaster, template, window: PlacementGrid
                       ) -> tuple[torch.Tensor, np.ndarray]:
        """Raw (K, A, B) scores of a window's placements and whether each camera point is on the map."""
        m = self.matcher
        half = m.grid.size_cells / 2.0 * self.cell_m
        px = m.config.map_metres_per_pixel
        left, top = window.x0 - half, window.y0 + half
        right = window.x0 + (window.cols - 1) * self.cell_m + half
        bottom = window.y0 - (window.rows - 1) * self.cell_m - half
        size = (round((right - left) / px), round((top - bottom) / px))
        features, valid = self._map_features(raster, (left, bottom, right, top), size)
        with torch.inference_mode():
            scores = m.scores(template, features, self.headings)
        factor = round(self.cell_m / px)
        offset = round(half / px)
        on_map = valid[offset::factor, offset::factor][: window.rows, : window.cols]
        return scores[:, : window.rows, : window.cols], on_map

    def _map_features(self, raster: MapRaster, bounds: tuple[float, float, float, float], size: tuple[int, int]
                      ) -> tuple[torch.Tensor, np.ndarray]:
        """Map features of a window, cached: an exhaustive sweep revisits the same windows for every photo."""
        key = (str(raster.path), tuple(round(v, 6) for v in bounds), size)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        rgb, valid = raster.read_bounds(bounds, size)
        with torch.inference_mode():
            features = self.matcher.map_features(rgb)
        self._cache[key] = (features, valid)
        while len(self._cache) > FEATURE_CACHE_WINDOWS:
            self._cache.popitem(last=False)
        return features, valid

    def score(self, raster: MapRaster, photo: PhotoInput, region_bounds: list[tuple[float, float, float, float]]
              ) -> ScoredRegion:
        """Raw scores of every hypothesis in the union of `region_bounds` (placement extents, map CRS)."""
        with torch.inference_mode():
            template = self.matcher.template(photo)
        windows = [w for bounds in region_bounds for w in split_region(bounds, self.cell_m)]
        union = (min(w[0] for w in windows), min(w[1] for w in windows), max(w[2] for w in windows),
                 max(w[3] for w in windows))
        grid = self.lattice(union)
        pieces = []
        for bounds in windows:
            window = self.lattice(bounds)
            scores, on_map = self._window_scores(raster, template, window)
            r0 = round((grid.y0 - window.y0) / self.cell_m)
            c0 = round((window.x0 - grid.x0) / self.cell_m)
            pieces.append(ScoredWindow(window, r0, c0, scores, on_map))
        return ScoredRegion(photo, grid, pieces, unary_union([box(*w) for w in region_bounds]))

    def posterior(self, scored: ScoredRegion, position_prior: PositionPriorXY | None = None,
                  heading_prior: HeadingPriorDeg | None = None, temperature: float | None = None
                  ) -> tuple[PosePosterior, np.ndarray | None]:
        """The normalised posterior over the scored hypotheses with the priors multiplied in, and
        P(heading | best placement)."""
        temperature = temperature or self.matcher.temperature
        grid = scored.grid
        headings = self.headings.numpy().astype(np.float64)
        heading_prior_k = torch.from_numpy(
            heading_log_prior(headings, heading_prior.heading_deg, heading_prior.sigma_deg)
            if heading_prior is not None else np.zeros(len(headings)))
        log_xy = np.full((grid.rows, grid.cols), -np.inf)
        best_k = np.zeros((grid.rows, grid.cols), dtype=np.int64)
        heading_lse = np.full(len(headings), -np.inf)
        for piece in scored.pieces:
            window = piece.window
            logits = piece.scores.double() / temperature + heading_prior_k[:, None, None]
            if position_prior is not None:
                logits = logits + torch.from_numpy(gaussian_position_log_prior(
                    window, (position_prior.x, position_prior.y), position_prior.sigma_m))[None]
            logits[:, ~torch.from_numpy(piece.on_map)] = -math.inf
            lse = torch.logsumexp(logits, 0).numpy()
            target = log_xy[piece.r0:piece.r0 + window.rows, piece.c0:piece.c0 + window.cols]
            take = lse > target
            target[take] = lse[take]
            best_k[piece.r0:piece.r0 + window.rows, piece.c0:piece.c0 + window.cols][take] = \
                logits.argmax(0).numpy()[take]
            heading_lse = np.logaddexp(heading_lse, torch.logsumexp(logits.flatten(1), 1).numpy())
        finite = np.isfinite(log_xy)
        total = np.logaddexp.reduce(log_xy[finite]) if finite.any() else 0.0
        posterior = PosePosterior(log_xy - total, best_k, np.exp(heading_lse - total), headings, grid)
        a, b = np.unravel_index(int(np.argmax(log_xy)), log_xy.shape)
        profile = None
        for piece in scored.pieces:       # P(heading | best placement): the position prior is a constant there
            if piece.r0 <= a < piece.r0 + piece.window.rows and piece.c0 <= b < piece.c0 + piece.window.cols:
                column = piece.scores[:, a - piece.r0, b - piece.c0].double() / temperature + heading_prior_k
                profile = torch.softmax(column, 0).numpy()
                break
        return posterior, profile

    def search(self, raster: MapRaster, photo: PhotoInput, region_bounds: list[tuple[float, float, float, float]],
               position_prior: PositionPriorXY | None = None, heading_prior: HeadingPriorDeg | None = None
               ) -> PoseSearchResult:
        """Search the union of `region_bounds` (placement extents in the map CRS) for the photo's pose."""
        scored = self.score(raster, photo, region_bounds)
        return self.result(scored, *self.posterior(scored, position_prior, heading_prior))

    def result(self, scored: ScoredRegion, posterior: PosePosterior, profile: np.ndarray | None
               ) -> PoseSearchResult:
        m = self.matcher
        summary = summarise(posterior, profile)
        picture = bev_picture(scored.photo, summary.heading_deg, m.grid, m.config.ground_hw)
        half = m.grid.size_cells / 2.0 * self.cell_m
        transform = Affine(self.cell_m, 0.0, summary.x - half, 0.0, -self.cell_m, summary.y + half)
        return PoseSearchResult(summary, posterior, picture, transform, scored.region, m.method)


def prior_window(position_prior: PositionPriorXY, sigmas: float = 3.0) -> tuple[float, float, float, float]:
    return window_bounds_around(position_prior.x, position_prior.y, sigmas * position_prior.sigma_m)


__all__ = ["CREDIBLE_LEVEL", "HeadingPriorDeg", "PhotoInput", "PoseSearch", "PoseSearchResult",
           "PositionPriorXY", "prior_window", "split_region"]
