"""Calibrating a pose matcher: the temperature that turns its scores into honest probabilities.

Fitted on calibration worlds (seeds never used for training or for the benchmark) by minimising the negative
log-likelihood of the true camera cell under the posterior with a GPS prior, so the confidence (posterior mass
within 5 m) and the 95 % credible region mean what they say.
"""
from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from shapely.geometry import Point

from engine.geo.photo import load_photo
from engine.geo.priors import PriorOverrides, resolve_priors
from engine.geo.raster import MapRaster
from engine.pipeline.pose_matchers import PhotoInput
from engine.pipeline.pose_search import PoseSearch, PositionPriorXY, ScoredRegion, prior_window
from engine.pipeline.pose_volume import summarise
from engine.progress import ProgressCallback

CALIBRATION_FIRST_SEED = 80_000
CALIBRATION_SIGMA_M = 10.0


@dataclass
class CalibrationSample:
    scored: ScoredRegion
    prior: PositionPriorXY
    truth_xy: tuple[float, float]


def calibration_samples(search: PoseSearch, worlds_per_biome: int = 1, photos: int = 16, size_m: float = 320.0,
                        progress: ProgressCallback | None = None) -> list[CalibrationSample]:
    """Score photos of fresh calibration worlds of every biome inside a noisy GPS prior's window."""
    from engine.synth.biomes.registry import biome_names
    from engine.synth.export import export_scene
    from engine.synth.export.scene import SCENE_PHOTOS
    from engine.synth.generate import generate_world
    from engine.synth.photos import PhotoSpec

    rng = np.random.default_rng(CALIBRATION_FIRST_SEED)
    samples: list[CalibrationSample] = []
    eye = search.matcher.config.eye_height_m
    with tempfile.TemporaryDirectory(prefix="vf-pose-cal-") as tmp:
        jobs = [(b, biome, w) for b, biome in enumerate(biome_names()) for w in range(worlds_per_biome)]
        for done, (b, biome, w) in enumerate(jobs):
            seed = CALIBRATION_FIRST_SEED + 100 * b + w
            world = generate_world(biome, seed, size_m=size_m, resolution_m=0.5)
            scene = export_scene(world, PhotoSpec(photos, (40.0, 110.0), (384, 256), border_margin_m=40.0), seed,
                                 Path(tmp) / f"{biome}-{seed}")
            with MapRaster(scene.map_path) as raster:
                for truth in scene.photos:
                    photo = load_photo(scene.folder / SCENE_PHOTOS / truth.name)
                    fov = resolve_priors(photo.exif, PriorOverrides(use_exif_position=False)).fov_deg or 65.0
                    dx, dy = rng.normal(0.0, CALIBRATION_SIGMA_M, 2)
                    prior = PositionPriorXY(truth.x + dx, truth.y + dy, CALIBRATION_SIGMA_M)
                    scored = search.score(raster, PhotoInput(photo.rgb, float(fov), eye), [prior_window(prior)])
                    samples.append(CalibrationSample(scored, prior, (truth.x, truth.y)))
            if progress:
                progress("calibration worlds", done + 1, len(jobs))
    return samples


def truth_log_likelihood(search: PoseSearch, sample: CalibrationSample, temperature: float) -> float:
    posterior, _ = search.posterior(sample.scored, sample.prior, None, temperature)
    grid = posterior.grid
    col = int(round((sample.truth_xy[0] - grid.x0) / grid.cell_m))
    row = int(round((grid.y0 - sample.truth_xy[1]) / grid.cell_m))
    if not (0 <= row < grid.rows and 0 <= col < grid.cols):
        return -50.0       # truth outside the window: a bounded penalty, same for every temperature
    return float(max(posterior.log_xy[row, col], -50.0))


def fit_temperature(search: PoseSearch, samples: list[CalibrationSample], base: float,
                    factors: np.ndarray | None = None) -> dict:
    """The temperature (base x factor) with the best mean log-likelihood of the truth, with the table."""
    factors = np.geomspace(0.25, 8.0, 16) if factors is None else factors
    table = []
    for factor in factors:
        t = float(base * factor)
        table.append({"temperature": t,
                      "mean_nll": -float(np.mean([truth_log_likelihood(search, s, t) for s in samples]))})
    best = min(table, key=lambda r: r["mean_nll"])
    coverage, confidence, within = [], [], []
    for s in samples:
        summary = summarise(*search.posterior(s.scored, s.prior, None, best["temperature"]))
        region = summary.credible_region
        coverage.append(bool(region is not None and region.buffer(1e-6).contains(Point(*s.truth_xy))))
        confidence.append(summary.confidence)
        within.append(math.hypot(summary.x - s.truth_xy[0], summary.y - s.truth_xy[1]) <= 5.0)
    return {"temperature": best["temperature"], "mean_nll": best["mean_nll"], "table": table,
            "photos": len(samples), "credible_coverage": float(np.mean(coverage)),
            "mean_confidence": float(np.mean(confidence)), "share_within_5m": float(np.mean(within))}
