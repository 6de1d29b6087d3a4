"""Suburban biome: subdivisions ("pods") with curving residential streets and cul-de-sacs between collector
roads; detached houses with pitched roofs, attached garages, driveways, lawns, fences, pools and yard trees;
woodland between subdivisions, a shopping centre with parking, a park with sports fields and ponds."""
from __future__ import annotations

import numpy as np
from PIL import ImageDraw
from shapely import LineString, Point

from engine.synth.biomes.buildings import Building, Part, stamp_buildings
from engine.synth.biomes.canvas import Canvas, pil_xy
from engine.synth.biomes.colour import apply_paint, paint_ground, paint_pools
from engine.synth.biomes.geometry import (
    Frame,
    Warp,
    densify,
    district_raster,
    rect_corners,
    resample_polyline,
    voronoi_districts,
)
from engine.synth.biomes.palettes import FACADES, FLAT_ROOFS, pick_colour
from engine.synth.biomes.registry import register_biome
from engine.synth.biomes.roads import Road, draw_markings, draw_roads, parking_lot
from engine.synth.biomes.trees import Trees, scatter_points, tree_colours
from engine.synth.noise import quantile_threshold
from engine.synth.world import Material as M

HOUSE_ROOFS = np.array([(74, 74, 78), (96, 92, 90), (112, 84, 66), (60, 62, 70), (140, 136, 130),
                        (150, 78, 58), (118, 104, 88)], np.float32)
HOUSE_ROOF_P = np.array([0.32, 0.18, 0.14, 0.12, 0.1, 0.08, 0.06])
HOUSE_WALLS = FACADES[[0, 1, 2, 3, 4, 8]]
POD_M = 430.0          # typical subdivision size


@register_biome("suburban", origin_lonlat=(-84.2941, 34.0754))  # Alpharetta, Georgia
def generate(cv: Canvas) -> dict:
    rng = cv.rng
    h, w = cv.shape
    res = cv.res
    wm, hm = w * res, h * res
    cv.terrain = (cv.noise(900.0, 4) * rng.uniform(4, 9) + cv.noise(220.0, 2) * 1.2 + 250).astype(np.float32)

    n_pods = int(np.clip(round(wm * hm / POD_M ** 2), 1, 18))
    polys, seeds = voronoi_districts(rng, w, h, n_pods, min_gap=0.55 * cv.px(POD_M))
    n_pods = len(polys)
    pods = district_raster(cv.shape, seeds) if n_pods > 1 else np.zeros(cv.shape, np.uint8)
    warp = Warp(cv, rng.uniform(18, 35), rng.uniform(260, 420))
    kinds = ["residential"] * n_pods
    if n_pods >= 4:
        kinds[int(rng.integers(n_pods))] = "commercial"
    if n_pods >= 3:
        free = [k for k in range(n_pods) if kinds[k] == "residential"]
        kinds[free[int(rng.integers(len(free)))]] = "park"

    roads: list[Road] = []
    for k in range(n_pods):
        for j in range(k + 1, n_pods):
            shared = polys[k].boundary.intersection(polys[j].boundary)
            for g in getattr(shared, "geoms", [shared]):
                if isinstance(g, LineString) and g.length > cv.px(20):
                    pts = warp(densify(np.asarray(g.coords), cv.px(6)))
                    roads.append(Road(pts, rng.uniform(10, 12.5), sidewalk=1.8, centre="double_yellow"))
    if min(wm, hm) >= 900:     # an arterial across the world
        a = rng.uniform(0, np.pi)
        c = np.array([w / 2, h / 2]) + rng.uniform(-0.2, 0.2, 2) * np.array([w, h])
        d = np.array([np.cos(a), np.sin(a)]) * (w + h) * 0.75
        pts = warp(densify(np.array([c - d, c + d]), cv.px(6)))
        roads.append(Road(pts, rng.uniform(16, 19), sidewalk=2.0, centre="double_yellow", lane_lines=True))

    buildings: list[Building] = []
    trees = Trees()
    lots: list[tuple] = []
    fences: list[np.ndarray] = []
    streets: list[tuple] = []
    with cv.draw("material") as dm, cv.draw("reserved") as dr:
        for k in range(n_pods):
            allow = pods == k
            fr = Frame(seeds[k], rng.uniform(0, np.pi), res)
            if kinds[k] == "commercial":
                _commercial(cv, dm, fr, polys[k], allow, roads, buildings, trees)
            elif kinds[k] == "park":
                _park(cv, dm, dr, fr, polys[k], roads, buildings, allow, trees)
            else:
                _residential(cv, fr, polys[k], warp, allow, roads, streets)
    # roads first so that lots can check them; drawn again afterwards because lawns overlap the kerbs
    draw_roads(cv, roads)
    placed: dict[tuple[int, int], list] = {}
    with cv.draw("material") as dm, cv.draw("reserved") as dr:
        for pts, hw, style, allow in streets:
            _houses_along(cv, pts, hw, style, allow, buildings, trees, dm, dr, lots, fences, placed)
    draw_roads(cv, roads)
    draw_markings(cv, roads)
    d = ImageDraw.Draw(cv.paint)
    for f in fences:
        d.line(pil_xy(f), fill=3, width=1)

    # woodland in the leftover land between subdivisions
    wood = cv.noise(300.0, 4)
    thr = quantile_threshold(wood, rng.uniform(0.25, 0.45))
    dens = ((wood > thr) & (cv.material == M.GRASS) & ~cv.reserved).astype(np.float32) * 0.9
    n_max = int(dens.mean() * wm * hm / 22.0)
    tx, ty = scatter_points(rng, dens, n_max, res, min_dist_m=3.0)
    n = len(tx)
    trees.add(tx, ty, rng.uniform(2.5, 5.5, n), rng.uniform(10, 22, n), tree_colours(rng, n, (52, 74, 38), 0.2),
              conical=rng.random(n) < 0.25)

    paint_ground(cv, palette={M.GRASS: ((92, 110, 60), (128, 134, 82), 0.1, 0.08)})
    paint_pools(cv, lots)
    apply_paint(cv)
    stamp_buildings(cv, buildings)
    trees.stamp(cv)
    return {"pods": kinds, "n_roads": len(roads)}


def _free(cv, placed, c, radius) -> bool:
    """No earlier house within reach (spatial hash of 16 m cells) and no road under the footprint."""
    cell = cv.px(16.0)
    ix, iy = int(c[0] // cell), int(c[1] // cell)
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            for q, r in placed.get((ix + dx, iy + dy), ()):
                if np.hypot(*(c - q)) < (radius + r) * 0.8:
                    return False
    return True


def _house(rng, cv, p, t, nrm, side, road_half, allow, buildings, trees, dm, dr, lots, fences, pod_style,
           placed):
    """One lot: lawn, fence lines, driveway, house (+garage), pool, yard trees."""
    frontage, setback, lot_depth = pod_style["frontage"], pod_style["setback"], pod_style["lot_depth"]
    n_out = nrm * side
    ang = float(np.arctan2(t[1], t[0]))
    hl, hw = rng.uniform(*pod_style["house_len"]), rng.uniform(9, 13)
    sb = setback * rng.uniform(0.85, 1.2)
    front = p + n_out * cv.px(road_half)
    c = front + n_out * cv.px(sb + hw / 2)
    # lot (lawn) and its side fences
    lot = np.array([front - t * cv.px(frontage / 2), front + t * cv.px(frontage / 2),
                    front + t * cv.px(frontage / 2) + n_out * cv.px(lot_depth),
                    front - t * cv.px(frontage / 2) + n_out * cv.px(lot_depth)])
    ci, ri = int(c[0]), int(c[1])
    if not (0 <= ci < cv.shape[1] and 0 <= ri < cv.shape[0]) or not allow[ri, ci]:
        return
    corners = rect_corners(c[0], c[1], cv.px(hl + 14), cv.px(hw + 1), ang).astype(int)
    corners = np.clip(corners, 0, [cv.shape[1] - 1, cv.shape[0] - 1])
    radius = cv.px(0.5 * np.hypot(hl + 7, hw))
    if cv.reserved[corners[:, 1], corners[:, 0]].any() or not _free(cv, placed, c, radius):
        return
    cell = cv.px(16.0)
    placed.setdefault((int(c[0] // cell), int(c[1] // cell)), []).append((c, radius))
    dm.polygon(pil_xy(lot), fill=int(M.GARDEN))
    fences.append(lot[[1, 2, 3, 0]])
    shift = rng.uniform(-0.15, 0.15) * frontage
    c = c + t * cv.px(shift)
    r = rng.random()
    roof = "gable" if r < 0.55 else ("hip" if r < 0.9 else "flat")      # a few modern flat-roofed houses
    if roof == "flat":
        roof_rgb = pick_colour(rng, FLAT_ROOFS[[1, 2, 3, 6]])
        hgt = rng.uniform(5.5, 7.5)
    else:
        roof_rgb = pick_colour(rng, HOUSE_ROOFS, p=HOUSE_ROOF_P, jitter=0.1)
        hgt = rng.uniform(6.5, 9.5)
    wall = pick_colour(rng, HOUSE_WALLS)
    parts = [Part(c[0], c[1], hl, hw, ang, hgt, roof)]
    gside = rng.choice([-1, 1])
    if rng.random() < 0.55:                            # attached garage beside the house, a bit forward
        gl = rng.uniform(6, 7.5)
        gc = c + t * cv.px(gside * (hl / 2 + gl / 2 - 0.3)) - n_out * cv.px(rng.uniform(0, 2))
        parts.append(Part(gc[0], gc[1], gl, rng.uniform(6.5, 8), ang, rng.uniform(4.5, 5.5),
                          "flat" if roof == "flat" else "gable"))
        drive_at = c + t * cv.px(gside * (hl / 2 + gl / 2))
        dw = rng.uniform(4.5, 6)
    else:
        drive_at = c + t * cv.px(gside * (hl / 2 - 2.0))
        dw = rng.uniform(3, 4)
    if rng.random() < 0.2:                             # L-shaped house: a wing to the back
        wc = c + n_out * cv.px(hw / 2 + 2.5) - t * cv.px(gside * hl / 4)
        parts.append(Part(wc[0], wc[1], rng.uniform(6, 8), 6, ang + np.pi / 2, hgt - 1,
                          "flat" if roof == "flat" else "gable"))
    buildings.append(Building(parts, roof_rgb, wall, allow, 0.85, pitch_deg=rng.uniform(24, 38)))
    # driveway from the kerb to the garage door
    a_ = drive_at - n_out * cv.px(sb + hw / 2 + 1)
    b_ = drive_at - n_out * cv.px(hw / 2 - 1)
    dm.polygon(pil_xy(np.array([a_ - t * cv.px(dw / 2), a_ + t * cv.px(dw / 2),
                                b_ + t * cv.px(dw / 2), b_ - t * cv.px(dw / 2)])), fill=int(M.PAVED))
    back = c + n_out * cv.px(hw / 2)
    room = lot_depth - sb - hw
    if pod_style["pools"] > rng.random() and room > 12:
        pl, pw = rng.uniform(7, 11), rng.uniform(3.5, 5.5)
        pc = back + n_out * cv.px(rng.uniform(4, room - 6) + pw / 2) + t * cv.px(rng.uniform(-3, 3))
        deck = rect_corners(pc[0], pc[1], cv.px(pl + 3), cv.px(pw + 3), ang)
        dm.polygon(pil_xy(deck), fill=int(M.PAVED))
        water = rect_corners(pc[0], pc[1], cv.px(pl), cv.px(pw), ang)
        dm.polygon(pil_xy(water), fill=int(M.WATER))
        dr.polygon(pil_xy(deck), fill=1)
        lots.append(water)
    elif rng.random() < 0.15 and room > 8:            # garden shed
        sc = back + n_out * cv.px(room - 3) + t * cv.px(rng.uniform(-frontage / 3, frontage / 3))
        buildings.append(Building([Part(sc[0], sc[1], rng.uniform(2.5, 4), rng.uniform(2, 3), ang, 3.0, "gable")],
                                  pick_colour(rng, HOUSE_ROOFS), wall, allow, 0.9))
    # yard trees (front and back)
    n = int(rng.poisson(pod_style["trees"]))
    if n:
        along = rng.uniform(-frontage / 2 + 1, frontage / 2 - 1, n)
        depth = np.where(rng.random(n) < 0.35, rng.uniform(1.5, max(sb - 2, 2), n),
                         rng.uniform(sb + hw + 3, lot_depth - 1, n))
        pts = front[None, :] + t[None, :] * cv.px(along)[:, None] + n_out[None, :] * cv.px(depth)[:, None]
        trees.add(pts[:, 0], pts[:, 1], rng.uniform(2.2, 5.0, n), rng.uniform(7, 16, n),
                  tree_colours(rng, n, (58, 80, 42), 0.18), conical=rng.random(n) < 0.15)


def _residential(cv, fr, poly, warp, allow, roads, streets):
    """Streets of one subdivision (warped grid with cul-de-sacs); houses are placed along them later."""
    rng = cv.rng
    style = {"frontage": rng.uniform(19, 28), "setback": rng.uniform(7, 11), "lot_depth": rng.uniform(30, 40),
             "house_len": (11, rng.uniform(14, 19)), "pools": rng.uniform(0.05, 0.3),
             "trees": rng.uniform(1.0, 3.0)}
    road_w = rng.uniform(7.5, 9.0)
    sidewalk = 1.5 if rng.random() < 0.5 else 0.0
    hw = road_w / 2 + sidewalk
    spacing = 2 * style["lot_depth"] + 2 * hw + rng.uniform(-2, 4)
    loc = fr.local(np.asarray(poly.exterior.coords))
    u_lo, u_hi = loc[:, 0].min(), loc[:, 0].max()
    v_lo, v_hi = loc[:, 1].min(), loc[:, 1].max()
    us = np.arange(u_lo + rng.uniform(0.3, 0.8) * spacing, u_hi - 0.3 * spacing, spacing)
    vs = [v_lo]
    while vs[-1] < v_hi:
        vs.append(vs[-1] + rng.uniform(170, 320))
    vs = np.array(vs)
    inner = poly.buffer(-cv.px(9))                     # stay clear of the collector roads
    if inner.is_empty:
        return
    segs = []
    for u in us:
        for j in range(len(vs) - 1):
            a, b = vs[j], vs[j + 1]
            cul = rng.random()
            if cul < 0.22:                                  # two cul-de-sacs facing each other
                mid = a + (b - a) * rng.uniform(0.4, 0.6)
                segs += [((u, a), (u, mid - 14), True), ((u, b), (u, mid + 14), True)]
            else:
                segs.append(((u, a), (u, b), False))
    cross_u = np.concatenate([[u_lo - spacing], us, [u_hi + spacing]])
    for v in vs:                                       # cross streets, some missing
        for i in range(len(cross_u) - 1):
            if rng.random() < 0.75:
                segs.append(((cross_u[i], v), (cross_u[i + 1], v), False))
    for (ua, va), (ub, vb), dead_end in segs:
        line = LineString(fr.px(np.array([ua, ub]), np.array([va, vb])))
        clipped = line.intersection(inner)
        for g in getattr(clipped, "geoms", [clipped]):
            if g.is_empty or not isinstance(g, LineString) or g.length < cv.px(25):
                continue
            pts = warp(densify(np.asarray(g.coords), cv.px(5)))
            roads.append(Road(pts, road_w, sidewalk=sidewalk, centre="none"))
            if dead_end:            # turning circle
                roads.append(Road(pts[-1:].repeat(2, axis=0), 22.0, sidewalk=sidewalk))
            streets.append((pts, hw, style, allow))


def _houses_along(cv, pts, hw, style, allow, buildings, trees, dm, dr, lots, fences, placed):
    rng = cv.rng
    clear = cv.px(hw + 10)
    length = np.linalg.norm(np.diff(pts, axis=0), axis=1).sum()
    if length < 2 * clear + cv.px(style["frontage"]):
        return
    p, t = resample_polyline(pts, cv.px(style["frontage"]))
    s = np.arange(len(p)) * cv.px(style["frontage"])
    keep = (s > clear) & (s < length - clear)
    nrm = np.stack([-t[:, 1], t[:, 0]], axis=1)
    for k in np.flatnonzero(keep):
        for side in (-1, 1):
            if rng.random() < 0.93:
                _house(rng, cv, p[k], t[k], nrm[k], side, hw, allow, buildings, trees, dm, dr, lots, fences, style,
                       placed)


def _commercial(cv, dm, fr, poly, allow, roads, buildings, trees):
    """A shopping centre: rows of big flat-roofed stores, each behind its parking lot on a service road."""
    rng = cv.rng
    loc = fr.local(np.asarray(poly.exterior.coords))
    inner = poly.buffer(-cv.px(14))
    if inner.is_empty:
        return
    row = rng.uniform(125, 150)
    for v in np.arange(loc[:, 1].min() + row / 2, loc[:, 1].max(), row):
        line = LineString(fr.px(np.array([loc[:, 0].min() - 50, loc[:, 0].max() + 50]), np.array([v, v])))
        seg = line.intersection(poly)
        for g in getattr(seg, "geoms", [seg]):
            if isinstance(g, LineString) and g.length > cv.px(60):
                roads.append(Road(densify(np.asarray(g.coords), cv.px(10)), 8.0, sidewalk=1.5))
        u = loc[:, 0].min()
        while u < loc[:, 0].max():
            bl = rng.uniform(35, 90)
            gap = rng.uniform(6, 30)
            uc = u + bl / 2
            u += bl + gap
            if rng.random() < 0.2:
                continue
            bw = rng.uniform(28, 45)
            lot_d = rng.uniform(30, 50)
            pc = fr.px(uc, v - 4.5 - lot_d / 2)
            bc = fr.px(uc, v - 4.5 - lot_d - bw / 2 - 2)
            if not (inner.contains(Point(*pc)) and inner.contains(Point(*bc))):
                continue
            parking_lot(cv, dm, pc[0], pc[1], bl, lot_d, fr.angle, rng.uniform(0.25, 0.8))
            roof = np.array((210, 210, 206), np.float32) * rng.uniform(0.8, 1.0)
            buildings.append(Building([Part(bc[0], bc[1], bl, bw, fr.angle, rng.uniform(7, 11), "flat")], roof,
                                      pick_colour(rng, FACADES), allow, 0.6))
            n = max(2, int(bl // 12))
            tp = fr.px(uc + np.linspace(-bl / 2, bl / 2, n), np.full(n, v - 4.5 - lot_d - 0.5))
            trees.add(tp[:, 0], tp[:, 1], rng.uniform(2, 3, n), rng.uniform(6, 9, n), tree_colours(rng, n))


def _park(cv, dm, dr, fr, poly, roads, buildings, allow, trees):
    """Sports fields with line markings, a clubhouse with parking, a pond, tree clusters."""
    rng = cv.rng
    c = np.array(poly.centroid.coords[0])
    d = ImageDraw.Draw(cv.paint)
    inner = poly.buffer(-cv.px(25))
    fields = []
    for a in range(-1, 2):
        for b in range(-1, 2):
            fc = c + fr.px(a * 115.0, b * 78.0) - fr.o
            q = rect_corners(fc[0], fc[1], cv.px(104), cv.px(68), fr.angle)
            if rng.random() < 0.35 or not all(inner.contains(Point(*p)) for p in q):
                continue
            fields.append(fc)
            dm.polygon(pil_xy(q), fill=int(M.GRASS))
            inner_q = rect_corners(fc[0], fc[1], cv.px(100), cv.px(64), fr.angle)
            d.line(pil_xy(np.vstack([inner_q, inner_q[:1]])), fill=5, width=1)
            d.line(pil_xy(np.array([(inner_q[0] + inner_q[1]) / 2, (inner_q[2] + inner_q[3]) / 2])), fill=5,
                   width=1)
            r = cv.px(9.15)
            d.ellipse([fc[0] - r - 0.5, fc[1] - r - 0.5, fc[0] + r - 0.5, fc[1] + r - 0.5], outline=5)
    # clubhouse and parking next to the first field, reached by a drive from the park edge
    if fields:
        hc = fields[0] + fr.px(0.0, -52.0) - fr.o
        if inner.contains(Point(*hc)):
            buildings.append(Building([Part(hc[0], hc[1], 24, 12, fr.angle, 6.0, "hip")],
                                      pick_colour(rng, HOUSE_ROOFS), pick_colour(rng, FACADES), allow, 0.8))
            pc = hc + fr.px(-40.0, 0.0) - fr.o
            parking_lot(cv, dm, pc[0], pc[1], 45, 18, fr.angle, rng.uniform(0.2, 0.6))
            edge = np.array(poly.exterior.interpolate(poly.exterior.project(Point(*pc))).coords[0])
            roads.append(Road(np.array([pc, edge]), 6.0))
    ang = np.linspace(0, 2 * np.pi, 30, endpoint=False)
    for _ in range(int(rng.integers(0, 3))):
        pc = np.array(inner.representative_point().coords[0]) + rng.normal(0, cv.px(80), 2)
        if not inner.contains(Point(*pc)) or any(np.hypot(*(pc - f)) < cv.px(90) for f in fields):
            continue
        rad = cv.px(rng.uniform(15, 30)) * (1 + 0.2 * np.sin(2 * ang + rng.uniform(0, 6)))
        pond = np.stack([pc[0] + rad * np.cos(ang) * 1.4, pc[1] + rad * np.sin(ang)], axis=1)
        dm.polygon(pil_xy(pond), fill=int(M.WATER))
        dr.polygon(pil_xy(pond), fill=1)
    # tree clusters away from the fields
    x0, y0, x1, y1 = poly.bounds
    n = int(poly.area * cv.res ** 2 / 120)
    parents = max(1, n // 25)
    px_ = rng.uniform(x0, x1, parents)
    py_ = rng.uniform(y0, y1, parents)
    which = rng.integers(0, parents, n)
    x = px_[which] + rng.normal(0, cv.px(14), n)
    y = py_[which] + rng.normal(0, cv.px(14), n)
    ok = np.ones(n, bool)
    for f in fields:
        ok &= np.hypot(x - f[0], y - f[1]) > cv.px(70)
    ok &= allow[np.clip(y.astype(int), 0, cv.shape[0] - 1), np.clip(x.astype(int), 0, cv.shape[1] - 1)]
    x, y = x[ok], y[ok]
    m = len(x)
    trees.add(x, y, rng.uniform(2.5, 5.5, m), rng.uniform(8, 18, m), tree_colours(rng, m))
