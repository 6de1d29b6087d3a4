"""The Localizer: photo -> ground descriptor -> top-k map tiles -> attention, overlap region, CWR points and
fine camera position per tile -> merged, ranked positions in map CRS and lon/lat."""
from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from affine import Affine
from PIL import Image

from engine.data.geometry import lonlat_to_map
from engine.geo.errors import GeoInputError
from engine.geo.photo import TOO_SMALL, Photo, load_photo
from engine.geo.priors import PriorOverrides, Priors, resolve_priors
from engine.geo.raster import MapRaster
from engine.geo.tiling import TilingSpec
from engine.index.cache import GalleryCache
from engine.index.embed import TileReader, images_to_tensor, tiling_for_model
from engine.index.indexer import index_map
from engine.index.model_source import LoadedModel, load_model
from engine.model import AttentionResult, CrossViewNet, FineLocalization
from engine.pipeline.analysis import choose_cell, merge_candidates, overlap_region, position_in, retrieval_probabilities
from engine.pipeline.config import LocalizerConfig
from engine.pipeline.gallery import Gallery
from engine.pipeline.pose_estimate import estimate_pose
from engine.pipeline.pose_model import load_pose_matcher
from engine.pipeline.pose_search import PoseSearch
from engine.pipeline.results import DONE, FAILED, Candidate, GeoGrid, LocalizationResult, PoseEstimate, RankedPosition
from engine.progress import CancelToken, ProgressCallback

log = logging.getLogger(__name__)
RAYLEIGH_MEDIAN = math.sqrt(2.0 * math.log(2.0))

PHOTO_STEPS = ("decode", "embed", "search", "tiles", "attention", "fine", "analysis", "pose")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().float().cpu().numpy()


class Localizer:
    """Finds where photos were taken on indexed maps. Safe to use from one worker thread at a time."""

    def __init__(self, model: LoadedModel | CrossViewNet | str | os.PathLike | None = None,
                 device: torch.device | str | None = None, config: LocalizerConfig | None = None,
                 pose_model=None) -> None:
        """model: see engine.index.model_source.load_model. pose_model: a PoseNet, a checkpoint path, "colour"
        (the non-learned baseline) or None (shipped)."""
        self.config = config or LocalizerConfig()
        self.loaded: LoadedModel = load_model(model, device)
        self._pose_source = pose_model
        self._pose_search: PoseSearch | None = None
        self._pose_description = ""
        self.cache = GalleryCache(self.config.resolved_cache_dir()) if self.config.use_cache else None

    @property
    def pose_search(self) -> PoseSearch:
        """The ground-plane pose search, its matcher loaded on first use (start-up stays fast)."""
        if self._pose_search is None:
            matcher, self._pose_description = load_pose_matcher(self._pose_source)
            self._pose_search = PoseSearch(matcher, self.config.pose_headings)
        return self._pose_search

    @property
    def pose_description(self) -> str:
        """What the pose matcher is (loads it if it is not yet)."""
        _ = self.pose_search
        return self._pose_description

    @property
    def model(self) -> CrossViewNet:
        return self.loaded.model

    @property
    def model_id(self) -> str:
        return self.loaded.model_id

    @property
    def model_description(self) -> str:
        return self.loaded.description

    def tiling(self) -> TilingSpec:
        c = self.config
        return tiling_for_model(self.model, c.tile_overlap, c.min_valid_fraction, c.snap_tiles_to_crs_grid)

    # ------------------------------------------------------------ maps
    def index_map(self, path: str | os.PathLike, progress: ProgressCallback | None = None,
                  cancel: CancelToken | None = None, force: bool = False,
                  raster: MapRaster | None = None) -> Gallery:
        """Tile and embed a map (RasterError if it cannot be used; IndexRefused when the index plan finds it
        far too coarse or too big, unless `force`), or reuse its cached gallery. `raster`: the map at `path`
        opened already (this thread's; left open), so that it is not opened again."""
        c = self.config
        indexed = index_map(self.loaded, path, self.tiling(), self.cache, batch_size=c.batch_size,
                            reader_threads=c.reader_threads, prefetch_batches=c.prefetch_batches,
                            progress=progress, cancel=cancel, force=force, raster=raster)
        log.info("map %s: %d tiles %s in %.1f s", path, len(indexed.tiles),
                 "from the cache" if indexed.from_cache else "embedded", indexed.seconds)
        return Gallery.from_index(indexed, c.search, c.ivf_lists, c.ivf_probe)

    # ------------------------------------------------------------ photos
    def localize(self, photo_path: str | os.PathLike, gallery: Gallery, priors: PriorOverrides | None = None,
                 progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> LocalizationResult:
        """Localise one photo. Bad photo input gives status "failed" with the error; Cancelled on cancel."""
        with self._tile_reader(gallery) as reader:
            return self._localize(Path(photo_path), gallery, reader, priors, progress, cancel)

    def localize_many(self, paths: Iterable[str | os.PathLike], gallery: Gallery,
                      priors: PriorOverrides | None = None, progress: ProgressCallback | None = None,
                      cancel: CancelToken | None = None) -> Iterator[LocalizationResult]:
        """Localise photos one after another, yielding each result; failures do not stop the batch."""
        paths = [Path(p) for p in paths]
        with self._tile_reader(gallery) as reader:
            if progress:
                progress("localizing photos", 0, len(paths))
            for done, path in enumerate(paths, start=1):
                if cancel is not None:
                    cancel.raise_if_cancelled()
                yield self._localize(path, gallery, reader, priors, None, cancel)
                if progress:
                    progress("localizing photos", done, len(paths))

    def _tile_reader(self, gallery: Gallery) -> TileReader:
        """Reads candidate tiles exactly as indexing read them (from the same cached blocks)."""
        return TileReader(gallery.map_path, gallery.spec, max_blocks=256)

    def ground_tensor(self, photo: Photo) -> torch.Tensor:
        """The photo resized to the model's ground input, (1, 3, H, W) uint8 (as the trainer resizes)."""
        height, width = self.model.config.ground_hw
        image = Image.fromarray(photo.rgb).resize((width, height), Image.Resampling.BILINEAR, reducing_gap=3.0)
        return images_to_tensor(np.array(image)[None], self.model.device)

    def _localize(self, path: Path, gallery: Gallery, reader: TileReader, overrides: PriorOverrides | None,
                  progress: ProgressCallback | None, cancel: CancelToken | None) -> LocalizationResult:
        stage = f"localizing {path.name}"
        timings: dict[str, float] = {}
        clock = [time.perf_counter()]

        def step(name: str) -> None:
            now = time.perf_counter()
            timings[name] = round((now - clock[0]) * 1000.0, 3)
            clock[0] = now
            if progress:
                progress(stage, PHOTO_STEPS.index(name) + 1, len(PHOTO_STEPS))
            if cancel is not None:
                cancel.raise_if_cancelled()

        base = {"photo": str(path), "crs": gallery.crs_name, "model_id": self.model_id, "map_id": gallery.map_id}
        try:
            photo = load_photo(path)
        except GeoInputError as exc:
            return LocalizationResult(status=FAILED, error=str(exc), created=_now(), **base)
        priors = resolve_priors(photo.exif, overrides, self.config.priors)
        step("decode")

        with torch.inference_mode():
            ground = self.model.embed_ground(self.ground_tensor(photo))
            descriptor = _numpy(ground.descriptor)[0]
            step("embed")

            rows, scores, notes = self._search(gallery, descriptor, priors)
            tiles = [gallery.tiles[row] for row in rows]
            step("search")

            satellite = self.model.embed_satellite(images_to_tensor(reader.read(tiles), self.model.device))
            step("tiles")
            attention = self.model.attend(ground, satellite)
            step("attention")
            fine = self.model.localize_fine(ground, satellite)
            step("fine")

        # a prior that missed the map must not pull the camera off it
        used = priors if "position_prior_unused" not in notes else dataclasses.replace(priors, position=None)
        candidates = self._candidates(gallery, rows, scores, attention, fine, used)
        positions = merge_candidates(candidates, self.config.merge_radius_m, gallery.crs)
        surface = gallery.score_surface(descriptor) if self.config.score_surface else None
        step("analysis")
        pose = None
        if self.config.pose:
            pose = estimate_pose(self.pose_search, reader.raster(), photo, gallery, used, candidates, self.config)
            positions = _pose_first(pose, positions, candidates, self.config.merge_radius_m)
        step("pose")
        warnings = [*photo.warnings, *priors.warnings]
        if not photo.is_ground_photo or any(w.startswith(TOO_SMALL) for w in photo.warnings):
            # an orthophoto or a thumbnail still gets an answer, but nobody should trust it
            candidates, positions = _unconfident(candidates), _unconfident(positions)
            pose = dataclasses.replace(pose, confidence=0.0) if pose is not None else None
        return LocalizationResult(
            status=DONE, photo_sha256=photo.sha256, fov_deg=priors.fov_deg, candidates=candidates,
            positions=positions, priors={**priors.to_json(), **notes, "warnings": warnings}, timings_ms=timings,
            created=_now(), score_surface=surface, pose=pose, **base)

    def fine_sigma_px(self, cell_size_px: tuple[float, float]) -> float:
        """1-sigma error of the fine head's camera position in tile pixels: from the model's measured median
        error when it carries one (median of a 2-D Gaussian's radial error = 1.1774 sigma), else a guess
        in grid cells from the config."""
        measured = self.model.metadata.get("calibration", {}).get("fine_median_error_m")
        if measured:
            return float(measured) / RAYLEIGH_MEDIAN / self.model.config.metres_per_pixel
        return self.config.fine_sigma_cells * float(np.mean(cell_size_px))

    def _search(self, gallery: Gallery, descriptor: np.ndarray, priors: Priors
                ) -> tuple[np.ndarray, np.ndarray, dict]:
        """Top-k gallery rows and cosines; a position prior keeps tiles that can hold a camera inside it."""
        notes: dict = {}
        near = None
        if priors.position is not None:
            x, y = lonlat_to_map(gallery.crs, priors.position.lon, priors.position.lat)
            # a camera anywhere in a tile: tile centres up to half a diagonal beyond the radius qualify
            reach = priors.position.radius_m + gallery.spec.tile_m / math.sqrt(2.0)
            near = (float(x), float(y), reach)
            notes["prior_xy"] = [float(x), float(y)]
        hits = gallery.search.search(descriptor[None], self.config.top_k, near=near)
        if near is not None and not (hits.indices[0] >= 0).any():
            notes["position_prior_unused"] = "no map tile lies within the prior radius; searched the whole map"
            hits = gallery.search.search(descriptor[None], self.config.top_k)
        keep = hits.indices[0] >= 0
        return hits.indices[0][keep], hits.scores[0][keep], notes

    def _candidates(self, gallery: Gallery, rows: np.ndarray, scores: np.ndarray, attention: AttentionResult,
                    fine: FineLocalization, priors: Priors) -> list[Candidate]:
        c, crs = self.config, gallery.crs
        tile_probability = retrieval_probabilities(scores, float(self.model.logit_scale().item()))
        prior_xy = prior_heading = None
        if priors.position is not None:
            x, y = lonlat_to_map(crs, priors.position.lon, priors.position.lat)
            prior_xy = (float(x), float(y), priors.position.sigma_m)
        if priors.heading is not None:
            prior_heading = (priors.heading.heading_deg, priors.heading.tolerance_deg)
        maps = [_numpy(level) for level in attention.maps]
        cell_sizes = _numpy(attention.cell_size_px)
        points = _numpy(attention.points_px)
        probabilities, offsets, headings = (_numpy(t) for t in (fine.probabilities, fine.offsets,
                                                                 fine.heading_vectors))
        fine_cell = Affine.scale(*fine.cell_size_px)
        fine_sigma_px = self.fine_sigma_px(fine.cell_size_px)
        candidates = []
        for index, (row, score) in enumerate(zip(rows, scores)):
            tile = gallery.tiles[int(row)]
            choice = choose_cell(probabilities[index].reshape(-1), offsets[index], headings[index],
                                 fine.cell_size_px, tile, prior_xy, prior_heading, fine_sigma_px)
            x, y = tile.tile_to_map(*choice.position_px)
            grids = [GeoGrid(level[index].astype(np.float32), tile.transform @ Affine.scale(*size), gallery.crs_name)
                     for level, size in zip(maps, cell_sizes)]
            cwr = [position_in(crs, *tile.tile_to_map(px, py)) for px, py in points[index]]
            candidates.append(Candidate(
                rank=index + 1, tile_index=int(row), score=float(score), footprint=tile.footprint,
                position=position_in(crs, float(x), float(y)), heading_deg=choice.heading_deg,
                confidence=float(tile_probability[index] * choice.certainty),
                overlap_region=overlap_region(grids[0].values, grids[0].transform, c.overlap_threshold,
                                              c.overlap_simplify_m),
                cwr_points=cwr, attention=grids,
                fine_probabilities=GeoGrid(probabilities[index].astype(np.float32), tile.transform @ fine_cell,
                                           gallery.crs_name)))
        return candidates


def _pose_first(pose: PoseEstimate, merged: list[RankedPosition], candidates: list[Candidate],
                radius_m: float) -> list[RankedPosition]:
    """The pose volume's answer as rank 1; retrieval positions farther than radius_m from it follow."""
    inside = [c.score for c in candidates if c.footprint.contains(_point(pose.position))]
    score = max(inside) if inside else (max(c.score for c in candidates) if candidates else float("nan"))
    ranked = [RankedPosition(1, pose.position, float(score), pose.confidence, pose.heading_deg, [])]
    for other in merged:
        if math.hypot(other.position.x - pose.position.x, other.position.y - pose.position.y) > radius_m:
            ranked.append(dataclasses.replace(other, rank=len(ranked) + 1))
    return ranked


def _unconfident(items: list) -> list:
    return [dataclasses.replace(item, confidence=0.0) for item in items]


def _point(position):
    from shapely.geometry import Point
    return Point(position.x, position.y)
