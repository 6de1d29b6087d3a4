"""Localizer settings: gallery tiling and cache, search, candidate analysis and merging, priors."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from engine.geo.priors import PriorSettings
from engine.index.cache import default_cache_dir
from engine.index.search import EXACT, IVF


@dataclass
class LocalizerConfig:
    # gallery
    tile_overlap: float = 0.5                 # fraction of a tile shared with each neighbour
    min_valid_fraction: float = 0.25          # tiles with less map (non-nodata) are skipped
    snap_tiles_to_crs_grid: bool = True       # same tiles for every raster of the same place
    cache_dir: str | os.PathLike | None = None   # None: $VIEWFINDER_CACHE or ~/.cache/viewfinder
    use_cache: bool = True
    batch_size: int = 8                       # tiles per model call (CPU: 4-8 is fastest)
    #: tile-reading threads; one reads ~1000 tiles/s, so small CPU machines keep their cores for the model
    reader_threads: int = field(default_factory=lambda: max(1, min(4, (os.cpu_count() or 2) // 4)))
    prefetch_batches: int = 4
    search: str = EXACT                       # "exact" inner product or "ivf" for millions of tiles
    ivf_lists: int | None = None              # None: 4 * sqrt(tiles)
    ivf_probe: int = 16
    # per photo
    top_k: int = 5
    overlap_threshold: float = 0.5            # overlap region: finest attention above this share of its max
    overlap_simplify_m: float = 2.0           # Douglas-Peucker tolerance of the overlap polygons
    merge_radius_m: float = 12.0              # candidates' positions closer than this become one position
    #: 1-sigma error of the fine head's position, in grid cells, for models without a measured one
    fine_sigma_cells: float = 0.5
    score_surface: bool = True                # attach the map-wide score raster to every result
    # pose (ground-plane matching)
    pose: bool = True                         # estimate the pose from the pose volume
    pose_headings: int = 64                   # heading hypotheses (5.6 degrees apart, refined locally)
    pose_window_sigmas: float = 3.0           # with a GPS prior: search +- this many sigmas
    pose_default_fov_deg: float = 65.0        # FoV assumed when neither EXIF nor the user gives one
    #: without a position prior: search the whole map when it is at most this big, else the top-k tiles
    pose_exhaustive_max_km2: float = 1.0
    pose_regions: int = 3                     # retrieved tiles searched without a prior on a big map
    priors: PriorSettings = field(default_factory=PriorSettings)

    def __post_init__(self) -> None:
        if not 0.0 <= self.tile_overlap < 1.0:
            raise ValueError(f"tile_overlap must be in [0, 1), got {self.tile_overlap}")
        if min(self.batch_size, self.reader_threads, self.prefetch_batches, self.top_k) < 1:
            raise ValueError("batch_size, reader_threads, prefetch_batches and top_k must be at least 1")
        if not 0.0 < self.overlap_threshold < 1.0:
            raise ValueError(f"overlap_threshold must be in (0, 1), got {self.overlap_threshold}")
        if self.fine_sigma_cells <= 0:
            raise ValueError(f"fine_sigma_cells must be positive, got {self.fine_sigma_cells}")
        if self.merge_radius_m < 0 or self.overlap_simplify_m < 0:
            raise ValueError("merge_radius_m and overlap_simplify_m must not be negative")
        if self.pose_headings < 8 or self.pose_window_sigmas <= 0 or self.pose_regions < 1:
            raise ValueError("pose_headings must be >= 8, pose_window_sigmas > 0 and pose_regions >= 1")
        if self.search not in (EXACT, IVF):
            raise ValueError(f"search must be {EXACT!r} or {IVF!r}, got {self.search!r}")

    def resolved_cache_dir(self) -> Path:
        return Path(self.cache_dir).expanduser() if self.cache_dir is not None else default_cache_dir()
