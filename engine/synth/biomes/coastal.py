"""Coastal biome: a sea with bays and headlands, sandy coves and rocky cliffs, islets, a hillside rising
inland (scrub, pines, bare rock on steep slopes), a coastal road that follows the shoreline, lanes up the
hill, scattered Mediterranean houses with pools and gardens, a beach car park, sometimes a lake."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage as ndi

from engine.synth.biomes.buildings import Building, Part, stamp_buildings
from engine.synth.biomes.canvas import Canvas, pil_xy
from engine.synth.biomes.colour import apply_paint, paint_ground, paint_pools
from engine.synth.biomes.geometry import densify, rect_corners, resample_polyline
from engine.synth.biomes.palettes import FLAT_ROOFS, pick_colour
from engine.synth.biomes.registry import register_biome
from engine.synth.biomes.roads import Road, draw_markings, draw_roads, level_roads, parking_lot
from engine.synth.biomes.trees import Trees, scatter_points, tree_colours
from engine.synth.noise import Fbm, grain, quantile_threshold, ridged, smoothstep, upsample
from engine.synth.world import Material as M

MED_ROOFS = np.array([(176, 92, 64), (160, 80, 58), (190, 112, 80), (140, 72, 54)], np.float32)
MED_WALLS = np.array([(238, 236, 228), (232, 220, 196), (224, 206, 170), (214, 196, 168)], np.float32)


@register_biome("coastal", origin_lonlat=(3.1710, 41.8420))  # Costa Brava, Catalonia
def generate(cv: Canvas) -> dict:
    rng = cv.rng
    h, w = cv.shape
    res = cv.res
    wm, hm = w * res, h * res
    size = max(wm, hm)

    # ---- terrain: signed distance to the shore along the land direction, bent by noise into bays/headlands
    a = rng.uniform(0, 2 * np.pi)
    land_dir = np.array([np.cos(a), np.sin(a)])           # points inland, cell coordinates
    step = 4
    hs, ws = -(-h // step), -(-w // step)
    ys = ((np.arange(hs) + 0.5) * step - h / 2)[:, None] * res
    xs = ((np.arange(ws) + 0.5) * step - w / 2)[None, :] * res
    t = xs * land_dir[0] + ys * land_dir[1]
    bend = Fbm(rng, (h, w), cv.px(max(size / 2.5, 150)), 4, 0.5, margin=cv.px(600))
    gx = (np.arange(ws) + 0.5) * step
    gy = (np.arange(hs) + 0.5) * step
    disp_amp = min(0.13 * size, 160.0)
    raw = t + disp_amp * bend.at(gx[None, :], gy[:, None])
    water_frac = rng.uniform(0.25, 0.42)
    t0 = float(np.quantile(raw, water_frac))
    s = (raw - t0).astype(np.float32)                        # ~metres inland from the shore (negative: sea)

    def small_noise(scale_m, octaves=3):
        f = Fbm(rng, (h, w), cv.px(scale_m), octaves)
        return f.at(gx[None, :], gy[:, None])

    beach_n = small_noise(220.0)
    cliff = smoothstep(0.2, 0.9, small_noise(260.0))          # 0: gentle coves, 1: cliffs
    # one guaranteed sandy cove: no cliffs in a band across the coast near the middle
    along = xs * -land_dir[1] + ys * land_dir[0]
    u0 = rng.uniform(-0.2, 0.2) * size
    cove = np.exp(-(((along - u0) / max(0.12 * size, 60.0)) ** 2))
    cliff = cliff * (1 - cove)
    beach_n = np.maximum(beach_n, cove * 0.6)
    beach_w = np.clip(25 + 25 * beach_n, 0, 55) * (1 - cliff)
    steep = float(np.interp(size, [300, 1200], [0.16, 0.09]))      # small worlds still show a hillside
    grade = steep + 0.05 * small_noise(400.0) + 0.1 * cliff
    hills = small_noise(min(size / 2, 700.0), 4)
    land = np.maximum(s, 0)
    beach_e = np.minimum(land, beach_w) * 0.05
    slope_e = np.maximum(land - beach_w, 0) * grade
    hill_e = hills * np.minimum(land / 250.0, 1.0) * min(0.05 * size, 60.0)
    cliff_e = cliff * smoothstep(0, 6, land) * rng.uniform(12, 30)
    terrain_s = beach_e + slope_e + np.maximum(hill_e, -0.6 * slope_e) + cliff_e
    terrain_s = np.where(terrain_s > 150, 150 + (terrain_s - 150) * 0.45, terrain_s)   # rounded summits
    terrain = upsample(terrain_s.astype(np.float32), cv.shape, step)
    sdist = upsample(s, cv.shape, step)
    terrain += cv.noise(40.0, 3) * 0.6 * smoothstep(5, 30, sdist)        # bumpy ground inland
    sea = sdist < 0
    # islets: rocky bumps in the near-shore sea
    rocks = (cv.noise(30.0, 3) > 2.0) & (sdist < 0) & (sdist > -80)
    terrain[sea] = 0.0
    terrain[rocks] = 1.5 + 2.0 * (cv.noise(10.0, 2)[rocks] + 1)
    sea &= ~rocks
    cv.terrain = terrain.astype(np.float32)

    # optional inland lake: a flat basin
    lake = np.zeros(cv.shape, bool)
    if size >= 900 and rng.random() < 0.35:
        lake = _lake(cv, sdist)

    # ---- materials
    gy_, gx_ = np.gradient(cv.terrain[::step, ::step], step * res)
    slope = upsample(np.hypot(gx_, gy_).astype(np.float32), cv.shape, step)
    mat = np.full(cv.shape, M.GRASS, np.uint8)
    bw_full = upsample(beach_w.astype(np.float32), cv.shape, step)
    sand = (sdist >= 0) & (sdist < bw_full + 2) & (slope < 0.25)
    frag = cv.noise(70.0, 4)
    rock = ((slope > 0.7) & (frag > -0.2)) | ((frag > 1.9) & (sdist > 60)) | rocks
    rock |= (sdist >= 0) & (sdist < 12) & ~sand
    mat[rock] = M.ROCK
    dirt = (cv.noise(60.0, 3) > 1.4) & ~rock
    mat[dirt] = M.DIRT
    mat[sand] = M.SAND
    mat[sea | lake] = M.WATER
    cv.material = mat
    cv.reserved = sea | lake

    # ---- roads: coastal road at a fixed distance inland, lanes uphill from it
    roads: list[Road] = []
    road_d = rng.uniform(70, 140) if size >= 600 else rng.uniform(0.3, 0.45) * size * (1 - water_frac)
    main = _coast_road(cv, bend, land_dir, t0, disp_amp, road_d, sdist)
    lanes, village = [], []
    if main is not None:
        roads.append(Road(main, rng.uniform(6.5, 8.0), centre="solid", edge_lines=True))
        p, tan = resample_polyline(main, cv.px(rng.uniform(110, 220)))
        for k in range(1, len(p)):
            if not cv.inside(p[k, 0], p[k, 1], cv.px(30)) or rng.random() < 0.25:
                continue
            lane = _uphill_lane(cv, p[k], land_dir, rng.uniform(120, 400))
            if lane is not None:
                lanes.append(lane)
                roads.append(Road(lane, rng.uniform(4.0, 5.0), centre="none"))
        # a village: short lanes off the coast road, both sides, around one spot
        p, tan = resample_polyline(main, cv.px(rng.uniform(20, 30)))
        ok = np.flatnonzero(cv.inside(p[:, 0], p[:, 1], cv.px(80)))
        if len(ok) > 10:
            mid = int(ok[rng.integers(len(ok) // 4, 3 * len(ok) // 4)])
            for k in range(max(mid - 6, 0), min(mid + 7, len(p)), 3):
                nrm = np.array([-tan[k, 1], tan[k, 0]])
                for side in (-1, 1):
                    if rng.random() < 0.25:
                        continue
                    dir_ = nrm * side
                    lane = _uphill_lane(cv, p[k] + dir_ * cv.px(3), dir_, rng.uniform(60, 160), wiggle=0.06)
                    if lane is not None:
                        village.append(lane)
                        roads.append(Road(lane, rng.uniform(3.5, 4.5), centre="none"))
    draw_roads(cv, roads)
    draw_markings(cv, roads)
    level_roads(cv, roads)

    buildings: list[Building] = []
    trees = Trees()
    pools = []
    with cv.draw("material") as dm, cv.draw("reserved") as dr:
        if main is not None:
            _car_park(cv, dm, main, sdist)
            _houses_along(cv, dm, dr, main, 3.8, slope, buildings, trees, pools, density=0.55)
        for lane in lanes:
            _houses_along(cv, dm, dr, lane, 2.3, slope, buildings, trees, pools, density=0.9)
        for lane in village:
            _houses_along(cv, dm, dr, lane, 2.3, slope, buildings, trees, pools, density=1.0, spacing=(17, 24))

    # ---- vegetation: maquis scrub and pines on the hillside, denser in gullies (noise), none on rock
    veg = cv.noise(250.0, 4)
    cover = smoothstep(quantile_threshold(veg, 0.7), quantile_threshold(veg, 0.3), veg)
    clear = Image.new("L", (w, h))            # keep canopies off the roads so they stay visible from above
    dclear = ImageDraw.Draw(clear)
    for r in roads:
        dclear.line(pil_xy(r.pts), fill=1, width=int(cv.px(r.total_width + 7)), joint="curve")
    ground_ok = np.isin(cv.material, (M.GRASS, M.DIRT)) & ~cv.reserved & (np.asarray(clear) == 0)
    dens = (cover * ground_ok * smoothstep(8, 40, sdist)).astype(np.float32)
    n_max = int(dens.mean() * wm * hm / 13.0)
    x, y = scatter_points(rng, dens, n_max, res, min_dist_m=2.8)
    n = len(x)
    pine = rng.random(n) < 0.3
    rad = np.where(pine, rng.uniform(2.8, 5.0, n), rng.uniform(1.3, 2.8, n))
    hgt = np.where(pine, rng.uniform(8, 16, n), rng.uniform(2.0, 5.0, n))
    col = np.where(pine[:, None], tree_colours(rng, n, (58, 78, 46), 0.12), tree_colours(rng, n, (84, 92, 58), 0.18))
    trees.add(x, y, rad, hgt, col)
    rock_dens = ((cv.material == M.ROCK) & ~cv.reserved).astype(np.float32) * 0.5
    n_max = int(rock_dens.mean() * wm * hm / 150.0)
    x, y = scatter_points(rng, rock_dens, n_max, res, min_dist_m=4.0)
    n = len(x)
    trees.add(x, y, rng.uniform(0.9, 1.8, n), rng.uniform(1.0, 2.5, n), tree_colours(rng, n, (86, 94, 60), 0.2))

    paint_ground(cv, palette={
        M.GRASS: ((122, 122, 78), (150, 140, 96), 0.06, 0.1),
        M.DIRT: ((160, 136, 102), (186, 162, 124), 0.1, 0.08),
        M.ROCK: ((126, 118, 106), (170, 160, 144), 0.12, 0.07),
        M.GARDEN: ((96, 112, 62), (126, 130, 78), 0.1, 0.1),
    })
    _rock_texture(cv)
    _shrub_specks(cv)
    still_water = cv.material == M.WATER          # roads or piers may have been drawn over the shore
    _sea_colour(cv, sea & still_water, lake & still_water, sdist)
    paint_pools(cv, pools)
    _wet_sand(cv, sdist)
    apply_paint(cv)
    stamp_buildings(cv, buildings)
    trees.stamp(cv)
    relief = float(cv.terrain.max() - cv.terrain.min())
    return {"water_fraction": round(float((sea | lake).mean()), 3), "relief_m": round(relief, 1),
            "lake": bool(lake.any())}


def _coast_road(cv: Canvas, bend: Fbm, land_dir, t0, disp_amp, d_in, sdist) -> np.ndarray | None:
    """A road along the coast that holds its elevation like a real corniche: find the shoreline along each
    inland ray (solve t + disp = t0), take the typical elevation `d_in` metres inland, and follow that
    contour (first crossing along each ray), smoothed so that it cuts across small gullies and spurs."""
    h, w = cv.shape
    res = cv.res
    along = np.array([-land_dir[1], land_dir[0]])
    half = np.hypot(w, h) * 0.75
    us = np.arange(-half, half, cv.px(8.0))
    t = np.full(len(us), float(t0))
    for _ in range(12):                  # fixed point: the shore along each ray
        px = w / 2 + (us * along[0]) + (t / res) * land_dir[0]
        py = h / 2 + (us * along[1]) + (t / res) * land_dir[1]
        t = t0 - disp_amp * bend.at(px, py)
    step = 4
    smooth = ndi.gaussian_filter(cv.terrain[::step, ::step], cv.px(12.0) / step, mode="nearest")
    ts = np.arange(10.0, max(3 * d_in, 200.0), 4.0)
    tt = t[:, None] + ts[None, :]
    px = w / 2 + us[:, None] * along[0] + (tt / res) * land_dir[0]
    py = h / 2 + us[:, None] * along[1] + (tt / res) * land_dir[1]
    elev = ndi.map_coordinates(smooth, [(py - step / 2) / step, (px - step / 2) / step], order=1, mode="nearest")
    inside = cv.inside(px, py)
    k_d = int(np.searchsorted(ts, d_in))
    ok = inside[:, k_d]
    if ok.sum() < 4:
        return None
    target = float(np.median(elev[ok, k_d]))
    above = elev >= target
    first = np.where(above.any(axis=1), above.argmax(axis=1), k_d)
    off = ts[first]
    k = 12                               # smooth the offset (~200 m window): cut through small spurs
    off = np.convolve(np.pad(off, k, mode="edge"), np.ones(2 * k + 1) / (2 * k + 1), "valid")
    # never over the water: where a bay reaches the road line, move inland to dry ground
    shore = ndi.map_coordinates(sdist[::step, ::step], [(py - step / 2) / step, (px - step / 2) / step], order=1,
                                mode="nearest")
    dry = shore >= 12.0
    j = np.clip(np.searchsorted(ts, off), 0, len(ts) - 1)
    later = dry & (np.arange(len(ts))[None, :] >= j[:, None])
    off = np.where(later.any(axis=1), ts[later.argmax(axis=1)], off)
    k = 2
    off = np.maximum(np.convolve(np.pad(off, k, mode="edge"), np.ones(2 * k + 1) / (2 * k + 1), "valid"), off)
    tr = t + off
    pts = np.stack([w / 2 + us * along[0] + (tr / res) * land_dir[0],
                    h / 2 + us * along[1] + (tr / res) * land_dir[1]], axis=1)
    keep = cv.inside(pts[:, 0], pts[:, 1], -cv.px(50))
    if keep.sum() < 4:
        return None
    idx = np.flatnonzero(keep)
    return densify(pts[idx[0]:idx[-1] + 1], cv.px(6))


def _uphill_lane(cv: Canvas, start: np.ndarray, land_dir, length_m: float, wiggle: float = 0.12,
                 max_grade: float = 0.12) -> np.ndarray | None:
    """A lane heading roughly along `land_dir` that turns across the slope wherever it would be steeper
    than `max_grade`, like real hillside roads; it stops at the shore, at other roads and at the edge."""
    rng = cv.rng
    step = 8
    gy, gx = np.gradient(cv.terrain[::step, ::step], step * cv.res)
    heading = np.arctan2(land_dir[1], land_dir[0]) + rng.normal(0, 0.35 * wiggle / 0.12)
    pos = np.asarray(start, float)
    pts = [pos]
    side = 0
    for _ in range(int(length_m / 10)):
        r = min(max(int(pos[1] // step), 0), gx.shape[0] - 1)
        c = min(max(int(pos[0] // step), 0), gx.shape[1] - 1)
        g = np.array([gx[r, c], gy[r, c]])
        gn = float(np.hypot(*g))
        h = np.array([np.cos(heading), np.sin(heading)])
        if gn > max_grade and abs(float(g @ h)) > max_grade:
            up = g / gn
            across = np.array([-up[1], up[0]])
            if side == 0:                 # pick the traverse side once, or the lane zigzags
                side = 1 if across @ h >= 0 else -1
            across = across * side
            sin_phi = max_grade / gn
            h = across * np.sqrt(1 - sin_phi ** 2) + np.sign(g @ h) * up * sin_phi
            heading = float(np.arctan2(h[1], h[0]))
        heading += rng.normal(0, wiggle)
        pos = pos + np.array([np.cos(heading), np.sin(heading)]) * cv.px(10)
        xi, yi = int(pos[0]), int(pos[1])
        if not (0 <= xi < cv.shape[1] and 0 <= yi < cv.shape[0]):
            break
        if cv.material[yi, xi] in (M.WATER, M.SAND) or (cv.reserved[yi, xi] and len(pts) > 2):
            break
        pts.append(pos)
    if len(pts) < 5:
        return None
    return densify(np.array(pts), cv.px(5))


def _houses_along(cv, dm, dr, line, road_half, slope, buildings, trees, pools, density, spacing=(22, 34)):
    rng = cv.rng
    p, tan = resample_polyline(line, cv.px(rng.uniform(*spacing)))
    cluster = Fbm(rng, cv.shape, cv.px(300), 2)
    prob = density * np.clip(0.6 + 0.6 * cluster.at(p[:, 0], p[:, 1]), 0, 1)
    for k in range(1, len(p) - 1):
        for side in (-1, 1):
            if rng.random() > prob[k]:
                continue
            nrm = np.array([-tan[k, 1], tan[k, 0]]) * side
            ang = float(np.arctan2(tan[k, 1], tan[k, 0])) + rng.normal(0, 0.08)
            hl, hw = rng.uniform(10, 18), rng.uniform(8, 13)
            sb = rng.uniform(5, 16)
            c = p[k] + nrm * cv.px(road_half + sb + hw / 2)
            ci, ri = int(c[0]), int(c[1])
            if not (0 <= ci < cv.shape[1] and 0 <= ri < cv.shape[0]):
                continue
            if slope[ri, ci] > 0.45 or cv.material[ri, ci] in (M.WATER, M.SAND, M.ROAD) or cv.reserved[ri, ci]:
                continue
            plot = rect_corners(*(c + nrm * cv.px(3)), cv.px(hl + rng.uniform(6, 14)), cv.px(hw + rng.uniform(10, 18)),
                                ang + rng.normal(0, 0.05))
            dm.polygon(pil_xy(plot), fill=int(M.GARDEN))
            flat = rng.random() < 0.3
            roof = "flat" if flat else ("hip" if rng.random() < 0.55 else "gable")
            rc = pick_colour(rng, FLAT_ROOFS[[2, 3, 6]]) * 1.05 if flat else pick_colour(rng, MED_ROOFS, jitter=0.1)
            parts = [Part(c[0], c[1], hl, hw, ang, rng.uniform(5.5, 9.0), roof)]
            if rng.random() < 0.4:
                wc = c + np.array([np.cos(ang), np.sin(ang)]) * cv.px(hl / 2) + nrm * cv.px(rng.uniform(-2, 3))
                parts.append(Part(wc[0], wc[1], rng.uniform(5, 8), rng.uniform(5, 8), ang, rng.uniform(3.5, 6.0),
                                  "flat" if flat else roof))
            buildings.append(Building(parts, rc, pick_colour(rng, MED_WALLS, jitter=0.04), None, 0.8,
                                      pitch_deg=rng.uniform(18, 26)))
            # pool in front (sea side views) or behind, and garden trees (pines, cypresses, palms)
            if rng.random() < 0.45:
                pc = c + nrm * cv.px(hw / 2 + 6) + np.array([np.cos(ang), np.sin(ang)]) * cv.px(rng.uniform(-4, 4))
                deck = rect_corners(pc[0], pc[1], cv.px(11), cv.px(6.5), ang)
                water = rect_corners(pc[0], pc[1], cv.px(8), cv.px(4), ang)
                dm.polygon(pil_xy(deck), fill=int(M.PAVED))
                dm.polygon(pil_xy(water), fill=int(M.WATER))
                dr.polygon(pil_xy(deck), fill=1)
                pools.append(water)
            m = int(rng.integers(1, 5))
            off = rng.uniform(-1, 1, (m, 2)) * np.array([cv.px(hl / 2 + 6), cv.px(hw / 2 + 8)])
            ea = np.array([np.cos(ang), np.sin(ang)])
            tp = c[None] + off[:, :1] * ea[None] + off[:, 1:] * nrm[None]
            trees.add(tp[:, 0], tp[:, 1], rng.uniform(1.5, 4.0, m), rng.uniform(4, 12, m),
                      tree_colours(rng, m, (60, 82, 46), 0.15), conical=rng.random(m) < 0.3)


def _car_park(cv, dm, main, sdist) -> None:
    """A car park by the beach, between the road and the sand, where there is room."""
    rng = cv.rng
    p, tan = resample_polyline(main, cv.px(40))
    ok = cv.inside(p[:, 0], p[:, 1], cv.px(40))
    for k in rng.permutation(np.flatnonzero(ok)):
        nrm = np.array([-tan[k, 1], tan[k, 0]])
        for side in (-1, 1):
            c = p[k] + nrm * side * cv.px(22)
            ci, ri = int(c[0]), int(c[1])
            if not (0 <= ci < cv.shape[1] and 0 <= ri < cv.shape[0]):
                continue
            if 15 < sdist[ri, ci] < 60 and cv.material[ri, ci] in (M.GRASS, M.DIRT, M.SAND):
                parking_lot(cv, dm, c[0], c[1], rng.uniform(40, 70), 17, float(np.arctan2(tan[k, 1], tan[k, 0])),
                            rng.uniform(0.3, 0.9), surface=M.PAVED)
                return


def _lake(cv: Canvas, sdist: np.ndarray) -> np.ndarray:
    """A flat-water lake in a levelled basin, well inland."""
    rng = cv.rng
    h, w = cv.shape
    cand = np.argwhere(sdist[::16, ::16] > 250)
    if len(cand) == 0:
        return np.zeros(cv.shape, bool)
    r0, c0 = cand[rng.integers(len(cand))] * 16
    rad = cv.px(rng.uniform(60, 140))
    ext = int(rad * 3.6)
    win = (slice(max(r0 - ext, 0), min(r0 + ext, h)), slice(max(c0 - ext, 0), min(c0 + ext, w)))
    yy, xx = np.mgrid[win]
    ang = np.arctan2(yy - r0, xx - c0)
    wob = 1 + 0.18 * np.sin(3 * ang + rng.uniform(0, 6)) + 0.1 * np.sin(5 * ang + rng.uniform(0, 6))
    dn = np.hypot((xx - c0) / 1.4, yy - r0) / (rad * wob)
    ter = cv.terrain[win]
    level = float(ter[dn < 1].mean()) if (dn < 1).any() else float(cv.terrain[r0, c0])
    blend = smoothstep(1.0, 2.0, dn)
    cv.terrain[win] = level + (ter - level) * blend + np.where(dn < 1, 0, 0.4)
    lake = np.zeros(cv.shape, bool)
    lake[win] = dn < 1
    cv.terrain[lake] = level
    return lake


def _sea_colour(cv: Canvas, sea, lake, sdist) -> None:
    depth = np.clip(-sdist[sea] / 120.0, 0, 1) ** 0.7
    shallow = np.array((78, 150, 150), np.float32)
    mid = np.array((34, 104, 124), np.float32)
    deep = np.array((18, 54, 88), np.float32)
    t = depth[:, None]
    col = np.where(t < 0.3, shallow + (mid - shallow) * (t / 0.3), mid + (deep - mid) * ((t - 0.3) / 0.7))
    waves = 1 + 0.035 * cv.tex[sea] + 0.03 * grain(cv.rng, (int(sea.sum()),))
    col *= waves[:, None]
    surf = sdist[sea] > -2.0
    col[surf] = col[surf] * 0.4 + np.array((226, 232, 230), np.float32) * 0.6
    cv.albedo[sea] = col
    if lake.any():
        lk = np.array((44, 74, 70), np.float32)
        cv.albedo[lake] = lk * (1 + 0.03 * cv.tex[lake])[:, None]


def _rock_texture(cv: Canvas) -> None:
    """Cracks and ledges: dark ridged lines over the rock colour."""
    rock = cv.material == M.ROCK
    if not rock.any():
        return
    cracks = ridged(cv.noise(14.0, 3))[rock]
    ledges = cv.noise(5.0, 2)[rock]
    cv.albedo[rock] *= (1 - 0.35 * cracks ** 3 + 0.06 * ledges)[:, None]


def _shrub_specks(cv: Canvas) -> None:
    """Garrigue: low shrubs too small to be trees, as dark clumps of 1-3 cells over the dry grass."""
    m = cv.material == M.GRASS
    clumps = grain(cv.rng, cv.shape, blur=0.8)
    sel = m & (clumps > 0.35)
    shade = np.clip(0.92 + 0.5 * cv.tex[sel], 0.65, 1.35)
    cv.albedo[sel] = np.array((70, 84, 52), np.float32) * shade[:, None]


def _wet_sand(cv: Canvas, sdist) -> None:
    wet = (cv.material == M.SAND) & (sdist < 4)
    cv.albedo[wet] *= 0.82
