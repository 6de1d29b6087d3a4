"""The index plan: what indexing a map will cost, worked out from its header before any pixel is read.

A 300 m/px map upsampled to the model's 1 m/px gives blurred tiles by the million and hours of silent
work; the plan says so before it starts and refuses unless forced.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from engine.geo.errors import RasterError
from engine.geo.raster import MapRaster
from engine.geo.tiling import TilingSpec

#: refuse a map whose own ground resolution is this many times coarser than the model's
MAX_UPSAMPLING = 4.0
#: refuse a gallery of more tiles than this (2 h at the benchmark speed; far longer on a busy machine)
MAX_TILES = 2_000_000
#: say so when indexing should take longer than this
LONG_SECONDS = 3600.0
#: embedding speed assumed for the estimate (docs/benchmarks.md: 270 tiles/s for 128 px tiles on 2 cores;
#: scaled by tile area for other models)
CPU_TILES_PER_SECOND_128 = 270.0


class IndexRefused(RasterError):
    """The plan refuses the map (too coarse, too many tiles); `force` indexes it anyway. `reasons` are the
    refusals alone (the message adds how to force it from the command line)."""

    def __init__(self, path, problem: str, reasons: tuple[str, ...] = ()) -> None:
        super().__init__(path, problem)
        self.reasons = tuple(reasons) or (problem,)


@dataclass(frozen=True)
class IndexPlan:
    path: str
    width_px: int
    height_px: int
    source_crs: str
    map_crs: str
    crs_note: str
    georeferencing: str
    ground_resolution_m: float       # the map's own metres per pixel on the ground
    model_resolution_m: float
    extent_m: tuple[float, float]    # width, height on the ground
    tile_count: int                  # upper bound (tiles of nodata are skipped later)
    seconds_estimate: float
    tiles_per_second: float = CPU_TILES_PER_SECOND_128
    refusals: tuple[str, ...] = field(default_factory=tuple)
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def upsampling(self) -> float:
        """> 1: the map is upsampled to the model's resolution (blurred); < 1: downsampled."""
        return self.ground_resolution_m / self.model_resolution_m

    def describe(self) -> str:
        width, height = self.extent_m
        lines = [f"map {self.path}: {self.width_px} x {self.height_px} px, {self.source_crs or 'no CRS'} "
                 f"({self.georeferencing}), {_metres(self.ground_resolution_m)}/px on the ground, "
                 f"{_metres(width)} x {_metres(height)}",
                 f"  read in {self.map_crs}: {self.crs_note}",
                 f"  model resolution {self.model_resolution_m:g} m/px: map resampled x{1 / self.upsampling:.3g} "
                 f"({'upsampled' if self.upsampling > 1 else 'downsampled' if self.upsampling < 1 else 'as is'})",
                 f"  about {self.tile_count:,} tiles, estimated {_duration(self.seconds_estimate)} to embed "
                 f"(at {self.tiles_per_second:,.0f} tiles/s; the progress bar shows the real pace)"]
        lines += [f"  note: {note}" for note in self.notes]
        lines += [f"  refused: {why}" for why in self.refusals]
        return "\n".join(lines)

    def check(self, force: bool = False) -> None:
        """IndexRefused naming the map and every reason, unless forced."""
        if self.refusals and not force:
            raise IndexRefused(self.path, "; ".join(self.refusals) + " (use --force to index it anyway)",
                               self.refusals)


def tile_count_estimate(extent_m: tuple[float, float], spec: TilingSpec) -> int:
    """Tiles covering an extent on the stride lattice (edges included): what tile_map can produce at most."""
    per_axis = [max(1, math.ceil((side + spec.tile_m) / spec.stride_m)) for side in extent_m]
    return per_axis[0] * per_axis[1]


def plan_map(raster: MapRaster, spec: TilingSpec, tiles_per_second: float | None = None) -> IndexPlan:
    """The plan of indexing `raster` with `spec`; tiles_per_second None: the measured CPU speed."""
    info = raster.info
    left, bottom, right, top = raster.bounds
    extent = (right - left, top - bottom)
    ground = info.ground_resolution_m
    tiles = tile_count_estimate(extent, spec)
    speed = tiles_per_second or CPU_TILES_PER_SECOND_128 * (128.0 / spec.tile_px) ** 2
    seconds = tiles / speed
    refusals, notes = [], []
    factor = ground / spec.metres_per_px
    if factor > MAX_UPSAMPLING:
        refusals.append(f"the map's ground resolution ({_metres(ground)}/px) is {factor:,.0f} times coarser than "
                        f"the model's {spec.metres_per_px:g} m/px: its tiles would be blurred beyond use")
    elif factor > 1.5:
        notes.append(f"the map is {factor:.1f} times coarser than the model's resolution; expect weaker matches")
    if tiles > MAX_TILES:
        refusals.append(f"it would need about {tiles:,} tiles (limit {MAX_TILES:,}; "
                        f"~{_duration(seconds)} on this machine)")
    elif seconds > LONG_SECONDS:
        notes.append(f"indexing will take about {_duration(seconds)}; it is cached for later runs")
    if max(extent) < spec.tile_m:
        notes.append(f"the map ({_metres(extent[0])} x {_metres(extent[1])}) is smaller than one "
                     f"{spec.tile_m:g} m tile: it is indexed as one padded tile")
    map_crs = raster.crs.to_string() if raster.crs.to_epsg() else (raster.crs.to_dict().get("proj", "custom")
                                                                    + " (map-centred)")
    return IndexPlan(str(raster.path), info.width, info.height, info.source_crs, map_crs, info.crs_note,
                     info.georeferencing, ground, spec.metres_per_px, extent, tiles, seconds, speed,
                     tuple(refusals), tuple(notes))


def _metres(value: float) -> str:
    if value >= 10_000:
        return f"{value / 1000:,.0f} km"
    if value >= 1000:
        return f"{value / 1000:.1f} km"
    return f"{value:.3g} m"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400 * 3:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:,.0f} days"
