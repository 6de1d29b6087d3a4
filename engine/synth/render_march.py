"""Column marching of the ground renderer: samples along every column's ray, the nearest sample covering each
pixel, and the second look under tree crowns (see engine.synth.ground for the method)."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from engine.synth.camera import CameraPose, eye_elevation
from engine.synth.render_sampling import bilinear, flat_view
from engine.synth.render_trees import tree_table
from engine.synth.world import Material, World

#: Along-ray step = max(resolution / 2, distance * this): fine near the camera, about one pixel far away.
RELATIVE_STEP = 0.01
#: Within this range the terrain is interpolated between cell centres (nearest cells would show as steps).
SMOOTH_TERRAIN_RANGE_M = 60.0


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


@dataclass
class Columns:
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
    trunks: TrunkHits | None  # tree trunks hit by pixels seen under crowns


def march_columns(world: World, pose: CameraPose, max_range_m: float) -> Columns:
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
    surface = np.take(flat_view(world.height), cell)
    # Near the camera: terrain interpolated between cell centres plus the cell's object on top.
    near = int(np.searchsorted(dist, SMOOTH_TERRAIN_RANGE_M))
    if near:
        terrain = flat_view(world.terrain)
        near_cells = cell[:, :near]
        surface[:, :near] += (bilinear(world.terrain, colf[:, :near], rowf[:, :near])
                              - np.take(terrain, near_cells))
    if not all_inside:
        # Beyond the edge the world continues as its edge terrain: a ground plane without objects.
        outside = ~inside
        surface[outside] = np.take(flat_view(world.terrain), cell[outside])
    top_row = horizon_row[:, None] - (surface - np.float32(eye_z)) * (
        np.float32(focal) / (dist[None, :] * cos_off[:, None]))
    first_sample = _first_covering(top_row, height)
    return Columns(focal=focal, east=east, north=north, bearing=bearing.astype(np.float32), cos_off=cos_off,
                    horizon_row=horizon_row, eye_z=eye_z, ground_z=ground_z, cam_col=cam_col, cam_row=cam_row,
                    dist=dist, cell=cell, inside=None if all_inside else inside, surface=surface,
                    first_sample=first_sample, sample_row=None, trunks=None)


@dataclass
class TrunkHits:
    """Tree trunks hit by pixels that look under a crown."""

    pix: np.ndarray            # flat pixel indices
    distance: np.ndarray       # horizontal distance from the eye to the trunk's surface
    nx: np.ndarray             # outward surface normal (east, north)
    ny: np.ndarray
    cell: np.ndarray           # flat world cell of the trunk


def see_under_crowns(world: World, cols: Columns, width: int, height: int, max_layers: int = 2) -> None:
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
    material = flat_view(world.material)
    object_id = flat_view(world.object_id)
    terrain = flat_view(world.terrain)
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
        cols.trunks = TrunkHits(*(np.concatenate(part) for part in zip(*trunk_parts)))
