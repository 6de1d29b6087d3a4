"""The Localizer's pose step: where to search (GPS prior window, the whole map, or retrieved tiles), which
priors multiply in, and the PoseEstimate result object."""
from __future__ import annotations

import logging

import numpy as np
from affine import Affine
from shapely.geometry import box

from engine.data.geometry import lonlat_to_map
from engine.geo.photo import Photo
from engine.geo.priors import Priors
from engine.geo.raster import MapRaster
from engine.pipeline.analysis import position_in
from engine.pipeline.config import LocalizerConfig
from engine.pipeline.gallery import Gallery
from engine.pipeline.pose_matchers import PhotoInput
from engine.pipeline.pose_search import HeadingPriorDeg, PoseSearch, PoseSearchResult, PositionPriorXY
from engine.pipeline.pose_volume import CONFIDENCE_RADIUS_M, CREDIBLE_LEVEL
from engine.pipeline.results import Candidate, GeoGrid, GeoImage, PoseEstimate

log = logging.getLogger(__name__)
#: Surfaces bigger than this (cells per side) are summed down before they go into a result.
MAX_SURFACE_CELLS = 256


def search_regions(priors: Priors, gallery: Gallery, candidates: list[Candidate], config: LocalizerConfig
                   ) -> tuple[list[tuple[float, float, float, float]], PositionPriorXY | None]:
    """Placement extents to search and the Gaussian position prior (map CRS)."""
    left, bottom, right, top = gallery.bounds
    if priors.position is not None:
        x, y = lonlat_to_map(gallery.crs, priors.position.lon, priors.position.lat)
        prior = PositionPriorXY(float(x), float(y), priors.position.sigma_m)
        reach = config.pose_window_sigmas * prior.sigma_m
        window = (max(left, prior.x - reach), max(bottom, prior.y - reach), min(right, prior.x + reach),
                  min(top, prior.y + reach))
        if window[0] < window[2] and window[1] < window[3]:
            return [window], prior
    if (right - left) * (top - bottom) <= config.pose_exhaustive_max_km2 * 1e6:
        return [gallery.bounds], None
    return [c.footprint.bounds for c in candidates[: config.pose_regions]], None


def estimate_pose(search: PoseSearch, raster: MapRaster, photo: Photo, gallery: Gallery, priors: Priors,
                  candidates: list[Candidate], config: LocalizerConfig) -> PoseEstimate | None:
    regions, position_prior = search_regions(priors, gallery, candidates, config)
    if not regions:
        return None
    heading_prior = (HeadingPriorDeg(priors.heading.heading_deg, priors.heading.tolerance_deg)
                     if priors.heading is not None else None)
    fov = priors.fov_deg if priors.fov_deg is not None else config.pose_default_fov_deg
    photo_input = PhotoInput(photo.rgb, float(fov), search.matcher.config.eye_height_m)
    result = search.search(raster, photo_input, regions, position_prior, heading_prior)
    return to_pose_estimate(result, gallery)


def to_pose_estimate(result: PoseSearchResult, gallery: Gallery) -> PoseEstimate:
    s, crs_name = result.summary, gallery.crs_name
    surface, transform = _shrink(s.surface, s.surface_transform)
    map_box = box(*gallery.bounds)
    region = s.credible_region.intersection(map_box) if s.credible_region is not None else None
    return PoseEstimate(
        position=position_in(gallery.crs, s.x, s.y), heading_deg=float(s.heading_deg),
        heading_sigma_deg=float(s.heading_sigma_deg), covariance_m2=s.covariance_m2,
        confidence=float(s.confidence), confidence_radius_m=CONFIDENCE_RADIUS_M,
        credible_region=region, credible_level=CREDIBLE_LEVEL,
        surface=GeoGrid(surface, transform, crs_name),
        bev=GeoImage(result.bev_rgba, result.bev_transform, crs_name), method=result.method,
        search_region=result.search_region.intersection(map_box))


def _shrink(surface: np.ndarray, transform):
    """Sum-pool a probability surface so neither side exceeds MAX_SURFACE_CELLS (mass is kept)."""
    factor = int(np.ceil(max(surface.shape) / MAX_SURFACE_CELLS))
    if factor <= 1:
        return surface.astype(np.float32), transform
    rows, cols = (-(-n // factor) * factor for n in surface.shape)
    padded = np.zeros((rows, cols), np.float64)
    padded[: surface.shape[0], : surface.shape[1]] = surface
    pooled = padded.reshape(rows // factor, factor, cols // factor, factor).sum(axis=(1, 3))
    return pooled.astype(np.float32), transform @ Affine.scale(factor)
