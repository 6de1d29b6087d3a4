"""Street-level photos of a synthetic World: a pinhole camera column-marched through the height field.

Every image column is a vertical plane through the eye. Samples along its horizontal ray (step growing with
distance) are projected to screen rows; a running minimum of those rows per column is the horizon so far, so
the pixel rows a sample covers are the ones between its own projected top and the horizon of all nearer
samples. One batched searchsorted over all columns assigns every pixel its nearest covering sample. Nothing
loops over pixels or columns in Python.

Pitch shifts the horizon vertically and roll tilts it (a per-column shift, i.e. a shear that matches a
rotation to within a pixel for rolls of a few degrees). Vertical lines stay vertical (no keystone).

Surfaces: a sample whose top is above the pixel's ray where the ray enters it is a vertical face (facade with
storeys of windows, foliage, or a terrain step), otherwise a top (albedo, Lambert-shaded). The height field
makes a crown a solid column down to the ground, so pixels below a crown are re-marched with that crown
removed and may hit its trunk instead. Sky, sun glow, clouds, haze, exposure, white balance, vignetting and
sensor noise complete the photo.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from engine.synth.camera import CameraPose, eye_elevation
from engine.synth.render_noise import cloud_texture, hash_unit
from engine.synth.render_trees import tree_table
from engine.synth.world import Material, World

#: How far a ground camera sees terrain and objects, metres. Beyond it the sky and haze take over.
DEFAULT_MAX_RANGE_M = 800.0
#: Along-ray step = max(resolution / 2, distance * this): fine near the camera, about one pixel far away.
RELATIVE_STEP = 0.01
#: Within this range the terrain is interpolated between cell centres (nearest cells would show as steps).
SMOOTH_TERRAIN_RANGE_M = 60.0
#: Share of the sunlight on the ground that reaches vertical faces by reflection.
GROUND_BOUNCE = 0.2


@dataclass(frozen=True)
class Lighting:
    """Illumination and camera response of one photo."""

    sun_azimuth_deg: float = 135.0
    sun_elevation_deg: float = 45.0
    exposure: float = 1.0                                    # overall brightness gain
    white_balance: tuple[float, float, float] = (1.0, 1.0, 1.0)
    haze_distance_m: float = 2500.0                          # e-folding distance of the aerial perspective
    horizon_rgb: tuple[float, float, float] = (0.80, 0.85, 0.92)
    zenith_rgb: tuple[float, float, float] = (0.30, 0.48, 0.80)
    ambient: float = 0.4                                     # sky light relative to direct sun on flat ground
    cloud_cover: float = 0.3                                 # 0 clear .. 1 overcast
    cloud_offset: tuple[float, float] = (0.0, 0.0)          # where in the cloud pattern this photo looks
    noise_sigma: float = 1.5                                 # sensor noise, 8-bit levels (needs an rng)

    @classmethod
    def random(cls, rng: np.random.Generator) -> Lighting:
        """Daylight drawn from plausible ranges: sun, exposure, white balance, haze, sky tint, clouds."""
        haze = float(np.exp(rng.uniform(np.log(700.0), np.log(6000.0))))
        blue = rng.uniform(0.0, 1.0)            # 0: milky sky, 1: deep blue
        horizon = np.array([0.82, 0.86, 0.92]) + rng.normal(0.0, 0.02, 3)
        zenith = np.array([0.45, 0.58, 0.80]) * (1 - blue) + np.array([0.20, 0.40, 0.78]) * blue
        warm = rng.normal(0.0, 0.04)
        wb = (1.0 + warm + rng.normal(0.0, 0.015), 1.0 + rng.normal(0.0, 0.015), 1.0 - warm + rng.normal(0.0, 0.015))
        return cls(sun_azimuth_deg=float(rng.uniform(0.0, 360.0)),
                   sun_elevation_deg=float(rng.uniform(15.0, 70.0)),
                   exposure=float(rng.uniform(0.85, 1.15)),
                   white_balance=tuple(float(v) for v in wb),
                   haze_distance_m=haze,
                   horizon_rgb=tuple(float(v) for v in np.clip(horizon, 0.0, 1.0)),
                   zenith_rgb=tuple(float(v) for v in np.clip(zenith, 0.0, 1.0)),
                   ambient=float(rng.uniform(0.3, 0.55)),
                   cloud_cover=float(rng.uniform(0.0, 0.7)),
                   cloud_offset=(float(rng.uniform(0.0, 1e5)), float(rng.uniform(0.0, 1e5))),
                   noise_sigma=float(rng.uniform(0.8, 2.5)))

    def sun_vector(self) -> np.ndarray:
        """Unit vector towards the sun in (east, north, up)."""
        az, el = np.deg2rad(self.sun_azimuth_deg), np.deg2rad(self.sun_elevation_deg)
        return np.array([np.sin(az) * np.cos(el), np.cos(az) * np.cos(el), np.sin(el)], dtype=np.float32)


@dataclass
class GroundRender:
    """A rendered ground photo and what each pixel sees."""

    image: np.ndarray          # (H, W, 3) uint8
    depth_m: np.ndarray        # (H, W) float32: distance from the eye to the surface hit; inf for sky
    hit_cell: np.ndarray       # (H, W, 2) int32: (row, col) of the world cell hit; -1 for sky / beyond the edge
    pose: CameraPose
    lighting: Lighting = field(default_factory=Lighting)

    @property
    def sky_mask(self) -> np.ndarray:
        return ~np.isfinite(self.depth_m)


@lru_cache(maxsize=16)
def sample_distances(resolution_m: float, max_range_m: float) -> np.ndarray:
    """Horizontal distances of the samples along every column ray, increasing, float32."""
    min_step = resolution_m / 2.0
    # Constant steps up to where the relative step takes over, then geometric growth.
    switch = min(min_step / RELATIVE_STEP, max_range_m)
    near = np.arange(min_step, switch, min_step)
    far = switch * (1.0 + RELATIVE_STEP) ** np.arange(int(np.ceil(np.log(max_range_m / switch)
                                                                   / np.log1p(RELATIVE_STEP))) + 1)
    return np.concatenate([near, far[far <= max_range_m * (1.0 + RELATIVE_STEP)]]).astype(np.float32)


def _horizon_keys(top_row: np.ndarray, height: int) -> tuple[np.ndarray, np.ndarray]:
    """One ascending array answering "which sample first covers this pixel" for every column.

    top_row: (n, K) screen row of each sample's top. Its running minimum along a column is the horizon of
    all nearer samples, and pixel row r takes the first sample k with horizon[k] <= r + 0.5. Negated,
    clipped to the image and offset per column, the horizons of all columns form one ascending array, so a
    single searchsorted answers every pixel of every column. Returns (keys, per-column offsets).
    """
    n_columns = top_row.shape[0]
    # float32 keeps ~1/100 px of precision up to offsets of 2^20; larger images need float64.
    dtype = np.float32 if n_columns * (height + 3) < 2 ** 20 else np.float64
    keys = np.minimum.accumulate(top_row, axis=1).astype(dtype, copy=False)
    np.clip(keys, -1.0, height + 1.0, out=keys)
    np.negative(keys, out=keys)
    offsets = np.arange(n_columns, dtype=dtype) * dtype(height + 3)
    keys += offsets[:, None]
    return keys.reshape(-1), offsets


def _first_covering(top_row: np.ndarray, height: int) -> np.ndarray:
    """(H, n) index of the nearest sample covering every pixel of n columns; K where none does (sky)."""
    n_columns, n_samples = top_row.shape
    keys, offsets = _horizon_keys(top_row, height)
    rows_bottom_up = np.arange(height - 1, -1, -1, dtype=offsets.dtype) + 0.5
    found = np.searchsorted(keys, (offsets[:, None] - rows_bottom_up[None, :]).ravel()).reshape(n_columns, height)
    found -= (np.arange(n_columns) * n_samples)[:, None]
    return np.ascontiguousarray(found[:, ::-1].T)


def _first_covering_at(top_row: np.ndarray, height: int, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """Index of the nearest sample covering pixel row rows[i] of column columns[i] (indices into top_row)."""
    keys, offsets = _horizon_keys(top_row, height)
    found = np.searchsorted(keys, np.take(offsets, columns) - (rows.astype(offsets.dtype) + 0.5))
    return found - columns * top_row.shape[1]


@lru_cache(maxsize=8)
def _vignette(width: int, height: int) -> np.ndarray:
    """Gentle lens fall-off towards the corners, flat (H*W,) float32."""
    y = (np.arange(height, dtype=np.float32) + 0.5 - height / 2) / (width / 2)
    x = (np.arange(width, dtype=np.float32) + 0.5 - width / 2) / (width / 2)
    return (1.0 - 0.12 * (x[None, :] ** 2 + y[:, None] ** 2)).astype(np.float32).ravel()


@lru_cache(maxsize=1)
def _noise_bank() -> np.ndarray:
    """Gaussian sensor noise to slice from at a random offset: much cheaper than drawing it per photo."""
    return np.random.default_rng(7).standard_normal(_NOISE_BANK_SIZE, dtype=np.float32)


_NOISE_BANK_SIZE = 1 << 21


def _flat(array: np.ndarray) -> np.ndarray:
    """A C-contiguous 1-D view of a world array (a copy only if the world's array is not contiguous)."""
    return np.ascontiguousarray(array).reshape(-1)


def _gather_rgb(rgb: np.ndarray, index: np.ndarray) -> np.ndarray:
    """(3, N) float32 in [0, 1] of an (H, W, 3) uint8 world map at flat cell indices (channel planes)."""
    flat = _flat(rgb)
    base = index * 3
    out = np.empty((3, index.size), np.float32)
    for channel in range(3):
        out[channel] = np.take(flat, base + channel)
    out *= np.float32(1.0 / 255.0)
    return out


def _bilinear_corners(shape: tuple[int, int], colf: np.ndarray, rowf: np.ndarray
                      ) -> list[tuple[np.ndarray, np.ndarray]]:
    """(flat cell index, weight) of the four cell centres around continuous cell coordinates."""
    rows_w, cols_w = shape
    x = colf - np.float32(0.5)
    y = rowf - np.float32(0.5)
    x0 = np.floor(x)
    y0 = np.floor(y)
    fx = x - x0
    fy = y - y0
    x0 = x0.astype(np.int32)
    y0 = y0.astype(np.int32)
    xa = np.clip(x0, 0, cols_w - 1)
    xb = np.clip(x0 + 1, 0, cols_w - 1)
    ya = np.clip(y0, 0, rows_w - 1) * np.int32(cols_w)
    yb = np.clip(y0 + 1, 0, rows_w - 1) * np.int32(cols_w)
    return [(ya + xa, (1 - fx) * (1 - fy)), (ya + xb, fx * (1 - fy)), (yb + xa, (1 - fx) * fy), (yb + xb, fx * fy)]


def _bilinear_rgb(rgb: np.ndarray, colf: np.ndarray, rowf: np.ndarray) -> np.ndarray:
    """(3, N) float32 colour of an (H, W, 3) uint8 world map interpolated between cell centres."""
    corners = _bilinear_corners(rgb.shape[:2], colf, rowf)
    index, weight = corners[0]
    out = _gather_rgb(rgb, index) * weight
    for index, weight in corners[1:]:
        out += _gather_rgb(rgb, index) * weight
    return out


def _bilinear(field: np.ndarray, colf: np.ndarray, rowf: np.ndarray) -> np.ndarray:
    """A world field (H, W) interpolated between cell centres at continuous cell coordinates."""
    flat = _flat(field)
    corners = _bilinear_corners(field.shape, colf, rowf)
    index, weight = corners[0]
    out = np.take(flat, index) * weight
    for index, weight in corners[1:]:
        out += np.take(flat, index) * weight
    return out


def _albedo(world: World, hit_x: np.ndarray, hit_y: np.ndarray, px_per_m: np.ndarray) -> np.ndarray:
    """(3, N) ground colour at hit points (metres from the NW corner): bilinear where a cell spans more than
    a pixel (close ground would look blocky), the cell's own colour elsewhere (four times cheaper)."""
    res = np.float32(world.resolution_m)
    rows_w, cols_w = world.shape
    colf = hit_x / res
    rowf = hit_y / -res
    magnified = np.flatnonzero(px_per_m * res > np.float32(1.0))
    if magnified.size == colf.size:
        return _bilinear_rgb(world.albedo, colf, rowf)
    col = np.clip(colf.astype(np.int32), 0, cols_w - 1)
    row = np.clip(rowf.astype(np.int32), 0, rows_w - 1)
    out = _gather_rgb(world.albedo, row * np.int32(cols_w) + col)
    if magnified.size:
        out[:, magnified] = _bilinear_rgb(world.albedo, colf[magnified], rowf[magnified])
    return out


@dataclass
class _Columns:
    """Per-column ray geometry of one camera, and the samples marched along every column."""

    focal: float
    east: np.ndarray           # (W,) ray direction, east component
    north: np.ndarray          # (W,) ray direction, north component
    bearing: np.ndarray        # (W,) compass bearing in radians
    cos_off: np.ndarray        # (W,) optical-axis depth per horizontal metre along the ray
    horizon_row: np.ndarray    # (W,) screen row of the horizon (pitch and roll applied)
    eye_z: float
    ground_z: float
    cam_col: float             # camera position in continuous cell coordinates
    cam_row: float
    dist: np.ndarray           # (K,) horizontal sample distances
    cell: np.ndarray           # (W, K) flat world cell of every sample (clamped into the world)
    inside: np.ndarray | None  # (W, K) sample lies inside the world; None when all do
    surface: np.ndarray        # (W, K) surface elevation of every sample
    first_sample: np.ndarray   # (H, W) nearest sample covering each pixel; K for sky
    # Pixels seen under tree crowns use extra sample rows (appended to cell/surface/inside); sample_row
    # (H*W,) says which row each pixel's first_sample refers to. None: every pixel uses its own column.
    sample_row: np.ndarray | None
    trunks: _TrunkHits | None  # tree trunks hit by pixels seen under crowns


def _march_columns(world: World, pose: CameraPose, max_range_m: float) -> _Columns:
    """March every column ray, then assign every pixel its nearest covering sample."""
    width, height = pose.width, pose.height
    rows_w, cols_w = world.shape
    res = world.resolution_m
    focal = pose.focal_px
    u = np.arange(width, dtype=np.float64) + 0.5 - width / 2.0
    bearing = np.deg2rad(pose.heading_deg) + np.arctan2(u, focal)
    east, north = np.sin(bearing).astype(np.float32), np.cos(bearing).astype(np.float32)
    cos_off = (focal / np.hypot(u, focal)).astype(np.float32)
    horizon_row = (height / 2.0 + focal * np.tan(np.deg2rad(pose.pitch_deg))
                   - u * np.tan(np.deg2rad(pose.roll_deg))).astype(np.float32)
    cam_col, cam_row = (float(v) for v in world.map_to_cell(pose.x, pose.y))
    eye_z = eye_elevation(world, pose)
    ground_z = eye_z - pose.eye_height_m

    dist = sample_distances(res, max_range_m)
    # (W, K): one row per column ray, its samples contiguous (spatially coherent gathers).
    colf = np.float32(cam_col) + (east[:, None] / np.float32(res)) * dist[None, :]
    rowf = np.float32(cam_row) - (north[:, None] / np.float32(res)) * dist[None, :]
    ci = np.floor(colf).astype(np.int32)
    ri = np.floor(rowf).astype(np.int32)
    inside = (ci >= 0) & (ci < cols_w) & (ri >= 0) & (ri < rows_w)
    all_inside = bool(inside.all())
    if not all_inside:
        np.clip(ci, 0, cols_w - 1, out=ci)
        np.clip(ri, 0, rows_w - 1, out=ri)
    cell = ri * cols_w + ci
    surface = np.take(_flat(world.height), cell)
    # Near the camera: terrain interpolated between cell centres plus the cell's object on top.
    near = int(np.searchsorted(dist, SMOOTH_TERRAIN_RANGE_M))
    if near:
        terrain = _flat(world.terrain)
        near_cells = cell[:, :near]
        surface[:, :near] += (_bilinear(world.terrain, colf[:, :near], rowf[:, :near])
                              - np.take(terrain, near_cells))
    if not all_inside:
        # Beyond the edge the world continues as its edge terrain: a ground plane without objects.
        outside = ~inside
        surface[outside] = np.take(_flat(world.terrain), cell[outside])
    top_row = horizon_row[:, None] - (surface - np.float32(eye_z)) * (
        np.float32(focal) / (dist[None, :] * cos_off[:, None]))
    first_sample = _first_covering(top_row, height)
    return _Columns(focal=focal, east=east, north=north, bearing=bearing.astype(np.float32), cos_off=cos_off,
                    horizon_row=horizon_row, eye_z=eye_z, ground_z=ground_z, cam_col=cam_col, cam_row=cam_row,
                    dist=dist, cell=cell, inside=None if all_inside else inside, surface=surface,
                    first_sample=first_sample, sample_row=None, trunks=None)


@dataclass
class _TrunkHits:
    """Tree trunks hit by pixels that look under a crown."""

    pix: np.ndarray            # flat pixel indices
    distance: np.ndarray       # horizontal distance from the eye to the trunk's surface
    nx: np.ndarray             # outward surface normal (east, north)
    ny: np.ndarray
    cell: np.ndarray           # flat world cell of the trunk


def _see_under_crowns(world: World, cols: _Columns, width: int, height: int, max_layers: int = 2) -> None:
    """Let pixels below a tree's crown see past it, and draw the trunk they may hit instead.

    The height field makes every crown a solid column down to the ground. Pixels that hit a crown's side
    below its base (along their whole path through the crown) are re-marched, in their columns only, with
    that crown removed; if they then meet another crown below its base, once more, up to `max_layers`.
    Modifies `cols` in place: extra sample rows, sample_row, first_sample and trunks.
    """
    trees = tree_table(world)
    if trees is None:
        return
    n_samples = cols.dist.size
    first = cols.first_sample.reshape(-1)
    material = _flat(world.material)
    object_id = _flat(world.object_id)
    terrain = _flat(world.terrain)
    n_ids = trees.is_tree.size
    removed_trees = np.zeros(n_ids + 1, bool)        # the extra entry stands for every non-tree id
    res = np.float32(world.resolution_m)
    cam_x = np.float32(cols.cam_col) * res
    cam_y = -np.float32(cols.cam_row) * res
    eye_z = np.float32(cols.eye_z)
    sample_row = None
    trunk_parts: list[tuple[np.ndarray, ...]] = []
    reach = 0.0

    pix = np.flatnonzero(first < n_samples)
    for _ in range(max_layers):
        c = pix % width
        rows = c if sample_row is None else sample_row[pix]
        lin = rows * n_samples + first[pix]
        cell = np.take(cols.cell, lin)
        hit_tree = np.take(material, cell) == Material.TREE
        if cols.inside is not None:
            hit_tree &= np.take(cols.inside, lin)
        pix, c, cell = pix[hit_tree], c[hit_tree], cell[hit_tree]
        if pix.size == 0:
            break
        r = pix // width
        obj = np.take(object_id, cell)
        ground = np.take(terrain, cell)
        drop = (r.astype(np.float32) + np.float32(0.5) - np.take(cols.horizon_row, c)) * (
            np.take(cols.cos_off, c) / np.float32(cols.focal))
        east, north = np.take(cols.east, c), np.take(cols.north, c)
        rel_x = np.take(trees.centre_x, obj) - cam_x
        rel_y = np.take(trees.centre_y, obj) - cam_y
        along = rel_x * east + rel_y * north
        perp = np.abs(rel_x * north - rel_y * east)
        radius = np.take(trees.radius, obj)
        entry = np.take(cols.dist, first[pix])
        leave = np.maximum(along + np.sqrt(np.maximum(radius * radius - perp * perp, np.float32(0.0))), entry)
        # Under the crown if the ray passes below its lower surface where it enters, passes closest to the
        # trunk, and leaves (the lower surface is convex, so these bound it).
        under = (obj > 0) & (obj < n_ids)
        for t in (entry, np.clip(along, entry, leave), leave):
            from_axis = np.sqrt(perp * perp + (along - t) ** 2)
            under &= eye_z - drop * t < ground + trees.crown_bottom(obj, from_axis)
        if not under.any():
            break
        pix, c, r, obj, ground, drop, east, north, along, perp, radius = (
            a[under] for a in (pix, c, r, obj, ground, drop, east, north, along, perp, radius))
        removed_trees[obj] = True

        # Re-march the affected columns from their original samples with every removed crown taken out
        # (removed crowns lie nearer than `reach`, so only the samples up to it can change).
        reach = max(reach, float((along + radius).max()) + 1.0)
        near = int(np.searchsorted(cols.dist, reach)) + 1
        columns = np.unique(c)
        cells = cols.cell[columns]
        surface = cols.surface[columns].copy()
        gone = np.take(removed_trees, np.minimum(np.take(object_id, cells[:, :near]), n_ids))
        surface[:, :near][gone] = np.take(terrain, cells[:, :near][gone])
        top_row = cols.horizon_row[columns, None] - (surface - eye_z) * (
            np.float32(cols.focal) / (cols.dist[None, :] * cols.cos_off[columns, None]))
        j = np.searchsorted(columns, c)
        first[pix] = _first_covering_at(top_row, height, r, j)
        row_base = cols.cell.shape[0]
        cols.cell = np.concatenate([cols.cell, cells])
        cols.surface = np.concatenate([cols.surface, surface])
        if cols.inside is not None:
            cols.inside = np.concatenate([cols.inside, cols.inside[columns]])
        if sample_row is None:
            sample_row = np.tile(np.arange(width), height)
        sample_row[pix] = row_base + j

        # The trunk stands at the crown's centre, from the ground up into the crown.
        trunk_radius = np.float32(0.1) + np.float32(0.06) * radius
        chord = np.sqrt(np.maximum(trunk_radius * trunk_radius - perp * perp, np.float32(0.0)))
        t_trunk = along - chord
        behind = np.take(np.append(cols.dist, np.float32(np.inf)), first[pix])
        trunk_z = eye_z - drop * t_trunk
        trunk = (perp < trunk_radius) & (t_trunk > 0) & (t_trunk < behind) & (trunk_z > ground - 0.2)
        if trunk.any():
            hit_x = cam_x + east[trunk] * t_trunk[trunk]
            hit_y = cam_y + north[trunk] * t_trunk[trunk]
            o = obj[trunk]
            nx = (hit_x - np.take(trees.centre_x, o)) / trunk_radius[trunk]
            ny = (hit_y - np.take(trees.centre_y, o)) / trunk_radius[trunk]
            trunk_cell = (np.floor(-np.take(trees.centre_y, o) / res).astype(np.int64) * world.shape[1]
                          + np.floor(np.take(trees.centre_x, o) / res).astype(np.int64))
            trunk_parts.append((pix[trunk], t_trunk[trunk], nx, ny, trunk_cell))
            # A trunk pixel must count as a hit even with only sky behind it (its shading is overridden).
            first[pix[trunk]] = np.minimum(first[pix[trunk]], n_samples - 1)
            pix = pix[~trunk]
        pix = pix[first[pix] < n_samples]
    if sample_row is not None:
        cols.sample_row = sample_row
    if trunk_parts:
        cols.trunks = _TrunkHits(*(np.concatenate(part) for part in zip(*trunk_parts)))


def render_ground(world: World, pose: CameraPose, rng: np.random.Generator | None = None,
                  lighting: Lighting | None = None, *, max_range_m: float = DEFAULT_MAX_RANGE_M) -> GroundRender:
    """Render the street-level photo a camera at `pose` would take in `world`.

    Lighting (sun, exposure, white balance, haze, clouds) is `lighting`, else drawn from `rng`, else the
    default. Sensor noise is added only when `rng` is given, so a render without rng is deterministic.
    """
    if lighting is None:
        lighting = Lighting.random(rng) if rng is not None else Lighting()
    width, height = pose.width, pose.height
    cols = _march_columns(world, pose, max_range_m)
    _see_under_crowns(world, cols, width, height)
    n_samples = cols.dist.size
    k_flat = cols.first_sample.ravel()
    pix = np.flatnonzero(k_flat < n_samples)         # pixels that hit a surface
    sky_pix = np.flatnonzero(k_flat >= n_samples)
    image = np.empty((3, height * width), np.float32)
    depth = np.full(height * width, np.inf, np.float32)
    hit_cell = np.full((height * width, 2), -1, np.int32)
    if pix.size:
        hits = _shade_surfaces(world, cols, pix, width, lighting)
        image[:, pix] = hits["colour"]
        depth[pix] = hits["range"]
        on_world = hits["on_world"]
        hit_cell[pix[on_world], 0] = hits["cell_row"][on_world]
        hit_cell[pix[on_world], 1] = hits["cell_col"][on_world]
    if sky_pix.size:
        image[:, sky_pix] = _sky_colour(cols, sky_pix // width, sky_pix % width, lighting)

    gain = (np.float32(255.0 * lighting.exposure) * np.asarray(lighting.white_balance, np.float32))[:, None]
    image *= _vignette(width, height)
    image *= gain
    if rng is not None and lighting.noise_sigma > 0:
        n = image.size
        if n <= _NOISE_BANK_SIZE // 2:
            start = int(rng.integers(0, _NOISE_BANK_SIZE - n))
            noise = _noise_bank()[start:start + n].reshape(image.shape)
        else:
            noise = rng.standard_normal(image.shape, dtype=np.float32)
        image += noise * np.float32(lighting.noise_sigma)
    image += np.float32(0.5)                          # round, not truncate, to 8 bits
    np.clip(image, 0.0, 255.0, out=image)
    out = np.ascontiguousarray(image.astype(np.uint8).reshape(3, height, width).transpose(1, 2, 0))
    return GroundRender(image=out, depth_m=depth.reshape(height, width),
                        hit_cell=hit_cell.reshape(height, width, 2), pose=pose, lighting=lighting)


def _shade_surfaces(world: World, cols: _Columns, pix: np.ndarray, width: int, lighting: Lighting) -> dict:
    """Colour (3, N), range and world cell of the pixels `pix` (flat indices) that hit a surface."""
    cols_w = world.shape[1]
    res = np.float32(world.resolution_m)
    n_samples = cols.dist.size
    r = pix // width
    c = pix - r * width
    ks = cols.first_sample.ravel()[pix]
    sample_row = c if cols.sample_row is None else cols.sample_row[pix]
    lin = sample_row * n_samples + ks                  # index into the sample tables
    cell = np.take(cols.cell, lin)
    top = np.take(cols.surface, lin)
    has_prev = ks > 0
    top_prev = np.where(has_prev, np.take(cols.surface, lin - has_prev), np.float32(cols.ground_z))
    d_far = np.take(cols.dist, ks)
    d_near = np.where(has_prev, np.take(cols.dist, ks - has_prev), np.float32(0.0))
    on_world = np.ones(pix.size, bool) if cols.inside is None else np.take(cols.inside, lin)

    east = np.take(cols.east, c)
    north = np.take(cols.north, c)
    cos_off = np.take(cols.cos_off, c)
    eye_z = np.float32(cols.eye_z)
    # Height the pixel's ray loses per horizontal metre (negative above the horizon).
    drop = (r.astype(np.float32) + np.float32(0.5) - np.take(cols.horizon_row, c)) * (cos_off / np.float32(cols.focal))
    z_near = eye_z - drop * d_near
    material = np.take(_flat(world.material), cell)
    if cols.inside is not None:
        material[~on_world] = Material.GRASS
    raised = (material == Material.ROOF) | (material == Material.TREE)
    under_crown = np.zeros(0, np.int64)
    if cols.sample_row is not None:
        # Ground seen under a crown: a tree cell whose sample was lowered to the terrain. It is open ground.
        tree_at = np.flatnonzero(material == Material.TREE)
        under_crown = tree_at[np.take(_flat(world.terrain), cell[tree_at]) >= top[tree_at] - np.float32(0.05)]
        raised[under_crown] = False
    wall = raised & (z_near < top)
    trunks = cols.trunks
    if trunks is not None:
        trunk_at = np.searchsorted(pix, trunks.pix)
        wall[trunk_at] = False
        material[trunk_at] = Material.TREE
        cell[trunk_at] = trunks.cell
        on_world[trunk_at] = True

    # Tops: the ray crosses the straight surface between the previous and this sample.
    above_near = z_near - top_prev
    below_far = (eye_z - drop * d_far) - top
    frac = np.clip(above_near / np.maximum(above_near - below_far, np.float32(1e-6)), 0.0, 1.0)
    d_hit = d_near + frac * (d_far - d_near)

    cell_row = cell // cols_w
    cell_col = cell - cell_row * cols_w
    # Open ground takes its slope from the terrain (a neighbouring wall or crown is no slope); roofs, walls
    # and crowns from the surface.
    gx, gy = _gradient(world.terrain, cell_row, cell_col, res)
    raised_at = np.flatnonzero(raised)
    if raised_at.size:
        gx[raised_at], gy[raised_at] = _gradient(world.height, cell_row[raised_at], cell_col[raised_at], res)
    if cols.inside is not None:
        gx[~on_world] = 0.0
        gy[~on_world] = 0.0
    inv_norm = 1.0 / np.sqrt(gx * gx + gy * gy + np.float32(1.0))
    nx = -gx * inv_norm
    ny = -gy * inv_norm
    nz = inv_norm

    # Positions in metres from the world's north-west corner, x east, y north (float32-safe).
    cam_x = np.float32(cols.cam_col) * res
    cam_y = -np.float32(cols.cam_row) * res
    wsel = np.flatnonzero(wall)
    if wsel.size:
        # Facades: a vertical plane through the cell's outer edge, facing down the height gradient.
        wgx, wgy = gx[wsel], gy[wsel]
        glen = np.sqrt(wgx * wgx + wgy * wgy)
        flat_top = glen < np.float32(1e-3)
        glen = np.maximum(glen, np.float32(1e-6))
        wnx = np.where(flat_top, -east[wsel], -wgx / glen)
        wny = np.where(flat_top, -north[wsel], -wgy / glen)
        wcol = cell_col[wsel].astype(np.float32) + np.float32(0.5)
        wrow = cell_row[wsel].astype(np.float32) + np.float32(0.5)
        plane = (wnx * (wcol * res - cam_x) - wny * (wrow * res + cam_y)
                 + np.float32(0.5) * res * (np.abs(wnx) + np.abs(wny)))
        facing = np.minimum(wnx * east[wsel] + wny * north[wsel], np.float32(-1e-3))
        d_hit[wsel] = np.clip(plane / facing, d_near[wsel], d_far[wsel])
        nx[wsel] = wnx
        ny[wsel] = wny
        nz[wsel] = 0.0

    if trunks is not None:
        d_hit[trunk_at] = trunks.distance
        nx[trunk_at] = trunks.nx
        ny[trunk_at] = trunks.ny
        nz[trunk_at] = 0.0

    hit_x = cam_x + east * d_hit
    hit_y = cam_y + north * d_hit
    hit_z = eye_z - drop * d_hit
    rise = hit_z - eye_z
    distance = np.sqrt(d_hit * d_hit + rise * rise)

    sun = lighting.sun_vector()
    # Sun, sky dome (less of it on steep faces) and sunlight bounced off the ground (only faces get it).
    light = np.maximum(nx * sun[0] + ny * sun[1] + nz * sun[2], np.float32(0.0))
    light += np.float32(lighting.ambient) * (np.float32(0.55) + np.float32(0.45) * nz)
    light += np.float32(GROUND_BOUNCE * sun[2]) * (np.float32(1.0) - nz)
    light *= np.float32(1.0 / (sun[2] + lighting.ambient))      # flat sunlit ground -> 1 (auto exposure)

    px_per_m = np.float32(cols.focal) / np.maximum(d_hit * cos_off, np.float32(1e-3))
    # Tops show the albedo map; walls get their own colour below.
    if wsel.size:
        colour = np.empty((3, pix.size), np.float32)
        top_sel = np.flatnonzero(~wall)
        colour[:, top_sel] = _albedo(world, hit_x[top_sel], hit_y[top_sel], px_per_m[top_sel])
    else:
        colour = _albedo(world, hit_x, hit_y, px_per_m)
    # Ground grain, faded out where a grain cell is smaller than a pixel (it would only alias).
    grain_cell = np.float32(0.15)
    grain = hash_unit(np.floor(hit_x / grain_cell).astype(np.int32), np.floor(hit_y / grain_cell).astype(np.int32), 7)
    light *= np.float32(1.0) + np.clip(px_per_m * grain_cell - np.float32(0.5), 0.0, 1.0) * (
        np.float32(0.10) * (grain - np.float32(0.5)))

    if wsel.size:
        terrain = np.take(_flat(world.terrain), cell[wsel])
        above_ground = hit_z[wsel] - terrain
        object_height = top[wsel] - terrain
        wall_rgb = _gather_rgb(world.wall_colour, cell[wsel])
        wall_material = material[wsel]
        facade = np.flatnonzero(wall_material == Material.ROOF)
        if facade.size:
            sel = wsel[facade]
            colour[:, sel] = _facade_colour(world, wall_rgb[:, facade], cell[sel], hit_x[sel], hit_y[sel], nx[sel],
                                            ny[sel], above_ground[facade], object_height[facade], px_per_m[sel],
                                            lighting)
        foliage = np.flatnonzero(wall_material == Material.TREE)
        if foliage.size:
            sel = wsel[foliage]
            colour[:, sel] = _foliage_colour(wall_rgb[:, foliage], hit_x[sel], hit_y[sel], hit_z[sel],
                                             above_ground[foliage], object_height[foliage], px_per_m[sel])
            # Leaves pass and scatter light: a crown's shaded side is never as dark as a wall's.
            light[sel] = light[sel] * np.float32(0.75) + np.float32(0.25)
    if under_crown.size:
        # The map shows the crown there, not the ground: leaf litter and grass, in the crown's shade.
        litter = np.array([0.30, 0.28, 0.19], np.float32)[:, None]
        colour[:, under_crown] = litter * (np.float32(0.8) + np.float32(0.4) * grain[under_crown])
        light[under_crown] *= np.float32(0.55)
    if trunks is not None:
        colour[:, trunk_at] = _bark_colour(hit_x[trunk_at], hit_y[trunk_at], hit_z[trunk_at], trunks.nx, trunks.ny)
    colour *= light

    water = np.flatnonzero((material == Material.WATER) & ~wall)
    if water.size:
        # Water mirrors the sky, more so at grazing angles (Schlick's Fresnel approximation).
        grazing = np.clip(-rise[water] / np.maximum(distance[water], np.float32(1e-3)), 0.0, 1.0)
        fresnel = np.float32(0.02) + np.float32(0.98) * (np.float32(1.0) - grazing) ** 5
        sky_rgb = np.asarray(lighting.horizon_rgb, np.float32)[:, None]
        colour[:, water] = colour[:, water] * (1.0 - fresnel) + sky_rgb * fresnel

    # Aerial perspective: surfaces fade into the haze colour with distance.
    fog = np.float32(1.0) - np.exp(distance * np.float32(-1.0 / lighting.haze_distance_m))
    colour *= np.float32(1.0) - fog
    colour += _haze_rgb(lighting)[:, None] * fog
    return {"colour": colour, "range": distance, "on_world": on_world, "cell_row": cell_row, "cell_col": cell_col}


def _gradient(field: np.ndarray, row: np.ndarray, col: np.ndarray, resolution_m: np.float32
              ) -> tuple[np.ndarray, np.ndarray]:
    """(d/d east, d/d north) of a world field at cells, central differences clamped at the edges."""
    rows_w, cols_w = field.shape
    flat = _flat(field)
    inv2res = np.float32(0.5) / resolution_m
    base = row * cols_w
    gx = (np.take(flat, base + np.minimum(col + 1, cols_w - 1)) - np.take(flat, base + np.maximum(col - 1, 0)))
    gy = (np.take(flat, np.maximum(row - 1, 0) * cols_w + col)
          - np.take(flat, np.minimum(row + 1, rows_w - 1) * cols_w + col))
    return gx * inv2res, gy * inv2res


def _haze_rgb(lighting: Lighting) -> np.ndarray:
    return np.asarray(lighting.horizon_rgb, np.float32) * np.float32(0.97)


def _facade_colour(world: World, wall_rgb: np.ndarray, cell: np.ndarray, hit_x: np.ndarray, hit_y: np.ndarray,
                   nx: np.ndarray, ny: np.ndarray, above_ground: np.ndarray, building_height: np.ndarray,
                   px_per_m: np.ndarray, lighting: Lighting) -> np.ndarray:
    """(3, N) facade colour: storeys of windows laid out by height above ground and position along the wall.

    Storey height, window spacing and size and glass tint vary per building (a style picked by object id).
    """
    obj = np.take(_flat(world.object_id), cell)
    style = obj & (_STYLE_COUNT - 1)
    storey, pitch, win_w, win_h, tint = (np.take(column, style) for column in _building_styles())
    along = hit_y * nx - hit_x * ny                      # metres along the facade
    u = along / pitch
    v = above_ground / storey
    fu = u - np.floor(u)
    fv = v - np.floor(v)
    has_windows = (above_ground > np.float32(0.8)) & (above_ground < building_height - np.float32(0.6)) & (
        building_height > np.float32(2.5))
    in_window = (np.abs(fu - np.float32(0.5)) < win_w * np.float32(0.5)) & (fv > np.float32(0.3)) & (
        fv < np.float32(0.3) + win_h) & has_windows
    # Every pane its own shade: reflections, curtains, lit rooms.
    pane = hash_unit(np.floor(u).astype(np.int32) + obj * 7919, np.floor(v).astype(np.int32), 5)
    reflect = np.float32(0.3) * pane * pane
    horizon = lighting.horizon_rgb
    glass = np.stack([np.float32(0.07) + np.float32(0.07) * pane + reflect * horizon[0],
                      np.float32(0.09) + np.float32(0.07) * pane * tint + reflect * horizon[1],
                      np.float32(0.12) + np.float32(0.08) * pane + reflect * horizon[2]])
    # A darker band at every floor slab gives scale even where windows are too small to resolve.
    wall = wall_rgb * (np.float32(1.0) - np.float32(0.12) * (fv < np.float32(0.06)))
    # Where a window period spans only a few pixels, blend towards the mean colour (anti-aliasing).
    resolve = np.clip((pitch * px_per_m - np.float32(2.5)) / np.float32(4.0), 0.0, 1.0)
    share = resolve * in_window + (np.float32(1.0) - resolve) * (win_w * win_h) * has_windows
    return wall * (np.float32(1.0) - share) + glass * share


_STYLE_COUNT = 4096


@lru_cache(maxsize=1)
def _building_styles() -> np.ndarray:
    """(5, 4096) float32 facade styles, picked by object id: storey height, window pitch, window width and
    height (fractions of pitch and storey) and glass tint."""
    rng = np.random.default_rng(20240612)
    n = _STYLE_COUNT
    return np.stack([rng.uniform(2.8, 3.7, n), rng.uniform(2.2, 3.8, n), rng.uniform(0.35, 0.65, n),
                     rng.uniform(0.40, 0.65, n), rng.uniform(0.6, 1.4, n)]).astype(np.float32)


def _foliage_colour(wall_rgb: np.ndarray, hit_x: np.ndarray, hit_y: np.ndarray, hit_z: np.ndarray,
                    above_ground: np.ndarray, tree_height: np.ndarray, px_per_m: np.ndarray) -> np.ndarray:
    """(3, N) tree sides: leafy clumps (hashed blobs at two scales), darker towards the bottom of the crown."""
    blob = np.float32(0.35)
    leaf = hash_unit(np.floor((hit_x + hit_y) / blob).astype(np.int32), np.floor(hit_z / blob).astype(np.int32), 11)
    clump = hash_unit(np.floor((hit_x - hit_y) / (blob * 2.7)).astype(np.int32),
                      np.floor(hit_z / (blob * 2.3)).astype(np.int32), 12)
    detail = np.clip(px_per_m * blob - np.float32(0.5), 0.0, 1.0)
    texture = np.float32(1.0) + detail * np.float32(0.35) * (leaf - np.float32(0.5)) + np.float32(0.3) * (
        clump - np.float32(0.5))
    height_frac = np.clip(above_ground / np.maximum(tree_height, np.float32(0.5)), 0.0, 1.0)
    return wall_rgb * (texture * (np.float32(0.65) + np.float32(0.45) * height_frac))


def _bark_colour(hit_x: np.ndarray, hit_y: np.ndarray, hit_z: np.ndarray, nx: np.ndarray, ny: np.ndarray
                 ) -> np.ndarray:
    """(3, N) grey-brown bark with vertical furrows (by angle around the trunk)."""
    around = np.floor((np.arctan2(ny, nx) + np.float32(np.pi)) * np.float32(5.0)).astype(np.int32)
    furrow = hash_unit(around, np.floor(hit_z * np.float32(1.5)).astype(np.int32), 21)
    shade = np.float32(0.75) + np.float32(0.4) * furrow
    return np.array([0.30, 0.25, 0.20], np.float32)[:, None] * shade


def _sky_colour(cols: _Columns, sky_r: np.ndarray, sky_c: np.ndarray, lighting: Lighting) -> np.ndarray:
    """(3, N) sky: gradient from the hazy horizon to the zenith, a glow around the sun, a layer of clouds."""
    cos_off = np.take(cols.cos_off, sky_c)
    tan_elev = (np.take(cols.horizon_row, sky_c) - (sky_r.astype(np.float32) + np.float32(0.5))) * (
        cos_off / np.float32(cols.focal))
    elev = np.arctan(tan_elev)
    t = np.float32(1.0) - np.exp(np.maximum(elev, np.float32(0.0)) * np.float32(-1.0 / 0.35))
    haze = _haze_rgb(lighting)[:, None]
    zenith = np.asarray(lighting.zenith_rgb, np.float32)[:, None]
    colour = haze + (zenith - haze) * t
    sun = lighting.sun_vector()
    bearing = np.take(cols.bearing, sky_c)
    cos_e = np.cos(elev)
    sin_b = np.sin(bearing)
    cos_b = np.cos(bearing)
    cos_sun = (sin_b * sun[0] + cos_b * sun[1]) * cos_e + np.sin(elev) * sun[2]
    glow = np.float32(0.5) * np.exp((cos_sun - np.float32(1.0)) * np.float32(250.0)) + np.float32(0.15) * np.exp(
        (cos_sun - np.float32(1.0)) * np.float32(6.0))
    colour += np.array([1.0, 0.95, 0.85], np.float32)[:, None] * glow

    if lighting.cloud_cover > 0.0:
        # Clouds on a flat layer 1.5 km up, seen ever flatter towards the horizon where they fade out.
        reach = np.float32(1500.0 / 2500.0) / np.maximum(tan_elev, np.float32(0.02))
        density = cloud_texture(np.float32(lighting.cloud_offset[0] / 2500.0) + sin_b * reach,
                                np.float32(lighting.cloud_offset[1] / 2500.0) + cos_b * reach)
        threshold = np.float32(1.0 - lighting.cloud_cover)
        alpha = np.clip((density - threshold) * np.float32(1.0 / 0.12), 0.0, 1.0)
        alpha *= np.clip((elev - np.float32(0.02)) * np.float32(8.0), 0.0, 0.95)
        shade = np.clip(np.float32(1.05) - np.float32(0.5) * (density - threshold), 0.6, 1.05)
        cloud = np.array([0.96, 0.96, 0.98], np.float32)[:, None] * shade
        colour += (cloud - colour) * alpha
    return colour
