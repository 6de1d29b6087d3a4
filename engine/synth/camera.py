"""Ground camera poses in a synthetic world, and where a camera may stand."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from engine.synth.world import World

#: Default image size of a synthetic ground photo (width, height) in pixels.
DEFAULT_IMAGE_SIZE = (384, 256)


@dataclass(frozen=True)
class CameraPose:
    """A pinhole camera standing in a World.

    x, y: map CRS metres. eye_height_m: above the terrain under the camera. heading_deg: compass direction of
    the optical axis. fov_deg: horizontal field of view. pitch_deg: positive tilts the view up (the horizon
    moves down in the image). roll_deg: positive rolls the camera clockwise as seen from behind it (the
    horizon rises towards the right edge of the image).
    """

    x: float
    y: float
    eye_height_m: float
    heading_deg: float
    fov_deg: float
    pitch_deg: float = 0.0
    roll_deg: float = 0.0
    width: int = DEFAULT_IMAGE_SIZE[0]
    height: int = DEFAULT_IMAGE_SIZE[1]

    def __post_init__(self) -> None:
        if not 1.0 <= self.fov_deg <= 170.0:
            raise ValueError(f"CameraPose.fov_deg must be in [1, 170], got {self.fov_deg}")
        if self.width < 1 or self.height < 1:
            raise ValueError(f"CameraPose image size must be positive, got {self.width}x{self.height}")
        if self.eye_height_m <= 0:
            raise ValueError(f"CameraPose.eye_height_m must be positive, got {self.eye_height_m}")

    @property
    def focal_px(self) -> float:
        return (self.width / 2.0) / float(np.tan(np.deg2rad(self.fov_deg) / 2.0))

    @property
    def vertical_fov_deg(self) -> float:
        return float(np.rad2deg(2.0 * np.arctan((self.height / 2.0) / self.focal_px)))

    def to_dict(self) -> dict:
        return asdict(self)


def eye_elevation(world: World, pose: CameraPose) -> float:
    """Elevation of the camera's eye: the terrain under it (interpolated between cell centres) plus its eye
    height."""
    col, row = world.map_to_cell(pose.x, pose.y)
    h, w = world.shape
    x = float(np.clip(col - 0.5, 0.0, w - 1.0))
    y = float(np.clip(row - 0.5, 0.0, h - 1.0))
    x0, y0 = min(int(x), w - 2) if w > 1 else 0, min(int(y), h - 2) if h > 1 else 0
    fx, fy = x - x0, y - y0
    t = world.terrain
    x1, y1 = min(x0 + 1, w - 1), min(y0 + 1, h - 1)
    ground = ((t[y0, x0] * (1 - fx) + t[y0, x1] * fx) * (1 - fy) + (t[y1, x0] * (1 - fx) + t[y1, x1] * fx) * fy)
    return float(ground) + pose.eye_height_m


def _clearance_offsets(clearance_m: float, resolution_m: float) -> tuple[np.ndarray, np.ndarray]:
    """(drow, dcol) of every cell that may come within `clearance_m` of a point anywhere in the centre cell.

    Two points in cells whose centres are D apart are at least D - sqrt(2) * resolution apart.
    """
    reach = clearance_m + resolution_m * np.sqrt(2.0)
    r = int(np.ceil(reach / resolution_m))
    dr, dc = np.mgrid[-r:r + 1, -r:r + 1]
    keep = np.hypot(dr, dc) * resolution_m < reach
    return dr[keep], dc[keep]


def sample_camera_poses(world: World, n: int, rng: np.random.Generator, fov_range: tuple[float, float] = (40, 110),
                        *, eye_height_range: tuple[float, float] = (1.4, 2.5), max_abs_pitch_deg: float = 5.0,
                        max_abs_roll_deg: float = 5.0, clearance_m: float = 1.5, border_margin_m: float = 0.0,
                        min_open_view_m: float = 8.0, max_ground_slope: float = 0.4,
                        width: int = DEFAULT_IMAGE_SIZE[0],
                        height: int = DEFAULT_IMAGE_SIZE[1]) -> list[CameraPose]:
    """Draw `n` camera poses on walkable ground, deterministically from `rng`.

    A camera stands on a walkable cell with no building, tree, water or other non-walkable cell within
    `clearance_m` (and not on the outermost cell ring), at least `border_margin_m` from the world's edge, at a
    uniformly random point of its cell, with a uniformly random heading. FoV, eye height, pitch and roll are
    uniform in their ranges; images are `width` x `height` pixels. Ground steeper than `max_ground_slope`
    (rise over run; 0.4 is about 22 degrees) is no place to stand. A pose whose view is blocked (fewer than
    half of the sight lines across its FoV run `min_open_view_m` at eye level; 0 disables the check) is
    drawn again: a photo of a wall an arm's length away shows nothing of the map.
    Raises ValueError when the world has too few such places.
    """
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    if n == 0:
        return []
    h, w = world.shape
    res = world.resolution_m
    walkable = world.walkable
    margin = max(1, int(np.ceil(border_margin_m / res)))
    inner = np.zeros_like(walkable)
    inner[margin:h - margin, margin:w - margin] = True
    candidates = np.flatnonzero(walkable & inner)
    if candidates.size == 0:
        raise ValueError(f"world (biome {world.biome!r}, seed {world.seed}) has no walkable cell at least "
                         f"{border_margin_m} m inside its edge; cannot place cameras")

    drow, dcol = _clearance_offsets(clearance_m, res)
    batch = max(64, 4 * n)
    attempts = 50
    kept: list[dict[str, np.ndarray]] = []
    found = n_clear = 0
    # Rejection sampling in batches: every candidate is a complete pose; keep those with clearance and a view.
    for _ in range(attempts):
        cells = rng.choice(candidates, size=batch, replace=True)
        rows, cols = np.divmod(cells, w)
        draw = {
            "col": cols + rng.uniform(0.0, 1.0, batch), "row": rows + rng.uniform(0.0, 1.0, batch),
            "heading": rng.uniform(0.0, 360.0, batch), "fov": rng.uniform(fov_range[0], fov_range[1], batch),
            "eye": rng.uniform(eye_height_range[0], eye_height_range[1], batch),
            "pitch": rng.uniform(-max_abs_pitch_deg, max_abs_pitch_deg, batch),
            "roll": rng.uniform(-max_abs_roll_deg, max_abs_roll_deg, batch),
        }
        rr = np.clip(rows[:, None] + drow[None, :], 0, h - 1)
        cc = np.clip(cols[:, None] + dcol[None, :], 0, w - 1)
        ok = walkable[rr, cc].all(axis=1) & (_ground_slope(world, rows, cols) <= max_ground_slope)
        n_clear += int(ok.sum())
        if min_open_view_m > 0:
            ok &= _open_view(world, draw, min_open_view_m)
        kept.append({key: value[ok] for key, value in draw.items()})
        found += int(ok.sum())
        if found >= n:
            break
    if found < n:
        if n_clear < n:
            raise ValueError(f"world (biome {world.biome!r}, seed {world.seed}) has too few walkable places with "
                             f"{clearance_m} m clearance and slope <= {max_ground_slope}: found {n_clear} of {n} "
                             f"after {attempts * batch} draws")
        raise ValueError(f"world (biome {world.biome!r}, seed {world.seed}) has too few places with "
                         f"{clearance_m} m clearance and a view of at least {min_open_view_m} m: found {found} "
                         f"of {n} after {attempts * batch} draws")
    pose = {key: np.concatenate([part[key] for part in kept])[:n] for key in kept[0]}
    x, y = world.cell_to_map(pose["col"], pose["row"])
    return [CameraPose(x=float(x[i]), y=float(y[i]), eye_height_m=float(pose["eye"][i]),
                       heading_deg=float(pose["heading"][i]), fov_deg=float(pose["fov"][i]),
                       pitch_deg=float(pose["pitch"][i]), roll_deg=float(pose["roll"][i]),
                       width=int(width), height=int(height)) for i in range(n)]


def _ground_slope(world: World, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Terrain slope (rise over run) at cells, central differences clamped at the world's edges."""
    h, w = world.shape
    t = world.terrain
    d_col = t[rows, np.minimum(cols + 1, w - 1)] - t[rows, np.maximum(cols - 1, 0)]
    d_row = t[np.minimum(rows + 1, h - 1), cols] - t[np.maximum(rows - 1, 0), cols]
    return np.hypot(d_col, d_row) / (2.0 * world.resolution_m)


def _open_view(world: World, draw: dict[str, np.ndarray], reach_m: float, n_rays: int = 9) -> np.ndarray:
    """Per candidate pose: do at least half of `n_rays` sight lines across its FoV run `reach_m` at eye
    level without meeting a surface at or above the eye?"""
    h, w = world.shape
    res = world.resolution_m
    rows = np.clip(np.floor(draw["row"]).astype(np.int64), 0, h - 1)
    cols = np.clip(np.floor(draw["col"]).astype(np.int64), 0, w - 1)
    eye_z = world.terrain[rows, cols] + draw["eye"]
    spread = np.linspace(-0.5, 0.5, n_rays)
    bearing = np.deg2rad(draw["heading"][:, None] + draw["fov"][:, None] * spread[None, :])   # (B, R)
    dist = np.arange(res, reach_m + 1e-9, res / 2.0) / res                                     # cells
    sample_col = np.floor(draw["col"][:, None, None] + np.sin(bearing)[..., None] * dist).astype(np.int64)
    sample_row = np.floor(draw["row"][:, None, None] - np.cos(bearing)[..., None] * dist).astype(np.int64)
    on_world = (sample_col >= 0) & (sample_col < w) & (sample_row >= 0) & (sample_row < h)
    surface = world.height[np.clip(sample_row, 0, h - 1), np.clip(sample_col, 0, w - 1)]
    blocked = (on_world & (surface >= eye_z[:, None, None] - 0.2)).any(axis=2)
    return (~blocked).mean(axis=1) >= 0.5
