"""Surface shading of the ground renderer: what a pixel's ray hits (top, facade, foliage, trunk, water), its
normal, light and colour, and the aerial perspective."""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from engine.synth.render_march import Columns
from engine.synth.render_noise import hash_unit
from engine.synth.render_sampling import bilinear_rgb, flat_view, gather_rgb, gradient
from engine.synth.render_sky import Lighting, haze_rgb
from engine.synth.world import Material, World

#: Share of the sunlight on the ground that reaches vertical faces by reflection.
GROUND_BOUNCE = 0.2


def _albedo(world: World, hit_x: np.ndarray, hit_y: np.ndarray, px_per_m: np.ndarray) -> np.ndarray:
    """(3, N) ground colour at hit points (metres from the NW corner): bilinear where a cell spans more than
    a pixel (close ground would look blocky), the cell's own colour elsewhere (four times cheaper)."""
    res = np.float32(world.resolution_m)
    rows_w, cols_w = world.shape
    colf = hit_x / res
    rowf = hit_y / -res
    magnified = np.flatnonzero(px_per_m * res > np.float32(1.0))
    if magnified.size == colf.size:
        return bilinear_rgb(world.albedo, colf, rowf)
    col = np.clip(colf.astype(np.int32), 0, cols_w - 1)
    row = np.clip(rowf.astype(np.int32), 0, rows_w - 1)
    out = gather_rgb(world.albedo, row * np.int32(cols_w) + col)
    if magnified.size:
        out[:, magnified] = bilinear_rgb(world.albedo, colf[magnified], rowf[magnified])
    return out


def shade_surfaces(world: World, cols: Columns, pix: np.ndarray, width: int, lighting: Lighting) -> dict:
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
    material = np.take(flat_view(world.material), cell)
    if cols.inside is not None:
        material[~on_world] = Material.GRASS
    raised = (material == Material.ROOF) | (material == Material.TREE)
    under_crown = np.zeros(0, np.int64)
    if cols.sample_row is not None:
        # Ground seen under a crown: a tree cell whose sample was lowered to the terrain. It is open ground.
        tree_at = np.flatnonzero(material == Material.TREE)
        under_crown = tree_at[np.take(flat_view(world.terrain), cell[tree_at]) >= top[tree_at] - np.float32(0.05)]
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
    gx, gy = gradient(world.terrain, cell_row, cell_col, res)
    raised_at = np.flatnonzero(raised)
    if raised_at.size:
        gx[raised_at], gy[raised_at] = gradient(world.height, cell_row[raised_at], cell_col[raised_at], res)
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
        terrain = np.take(flat_view(world.terrain), cell[wsel])
        above_ground = hit_z[wsel] - terrain
        object_height = top[wsel] - terrain
        wall_rgb = gather_rgb(world.wall_colour, cell[wsel])
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
    colour += haze_rgb(lighting)[:, None] * fog
    return {"colour": colour, "range": distance, "on_world": on_world, "cell_row": cell_row, "cell_col": cell_col}


def _facade_colour(world: World, wall_rgb: np.ndarray, cell: np.ndarray, hit_x: np.ndarray, hit_y: np.ndarray,
                   nx: np.ndarray, ny: np.ndarray, above_ground: np.ndarray, building_height: np.ndarray,
                   px_per_m: np.ndarray, lighting: Lighting) -> np.ndarray:
    """(3, N) facade colour: storeys of windows laid out by height above ground and position along the wall.

    Storey height, window spacing and size and glass tint vary per building (a style picked by object id).
    """
    obj = np.take(flat_view(world.object_id), cell)
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
