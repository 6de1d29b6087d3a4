"""Settings of an evaluation run (the [eval] table of a training config)."""
from __future__ import annotations

from dataclasses import dataclass

GALLERY_SCOPES = ("city", "all")


@dataclass
class EvalConfig:
    batch_size: int = 32
    num_workers: int = 0
    #: Evaluate a seeded random subset of this many queries (0: all); a gallery made of the queries' own
    #: tiles (CVNAF) shrinks with them, a separate gallery (VIGOR) stays whole.
    max_items: int = 0
    gallery_scope: str = "city"
    fov_buckets: tuple[tuple[float, float], ...] = ((40.0, 60.0), (60.0, 80.0), (80.0, 110.0))
    #: The camera lands uniformly within this central fraction of the tile for the fine/CWR errors (0: the
    #: layout's own camera position).
    offcentre_fraction: float = 0.8
    cwr_level: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        self.fov_buckets = tuple((float(lo), float(hi)) for lo, hi in self.fov_buckets)
        if self.gallery_scope not in GALLERY_SCOPES:
            raise ValueError(f"gallery_scope must be one of {GALLERY_SCOPES}, got {self.gallery_scope!r}")
        if self.batch_size < 1 or self.num_workers < 0 or self.max_items < 0:
            raise ValueError("eval batch_size must be >= 1, num_workers and max_items >= 0")
        if not 0.0 <= self.offcentre_fraction <= 1.0:
            raise ValueError(f"offcentre_fraction must be in [0, 1], got {self.offcentre_fraction}")
        if any(not lo < hi for lo, hi in self.fov_buckets):
            raise ValueError(f"FoV buckets must be (low, high) with low < high, got {self.fov_buckets}")
