"""Urban biome: districts with their own street grids (irregular spacing, merged blocks, T-junctions),
sidewalks, lane markings and crosswalks, perimeter blocks, towers on podiums, low-rise rows, big boxes,
parking lots, plazas and parks, street trees and parked cars."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import ImageDraw
from shapely import LineString, Point

from engine.synth.biomes.common import (
    FACADES,
    FLAT_ROOF_P,
    FLAT_ROOFS,
    PITCHED_ROOFS,
    Building,
    Canvas,
    Frame,
    Part,
    Road,
    Trees,
    apply_paint,
    cars_along,
    district_raster,
    draw_markings,
    draw_roads,
    offset_polyline,
    paint_ground,
    parking_lot,
    pick_colour,
    pil_xy,
    resample_polyline,
    stamp_buildings,
    tree_colours,
    voronoi_districts,
)
from engine.synth.noise import upsample
from engine.synth.world import Material as M


@dataclass(frozen=True)
class Style:
    spacing_u: tuple[float, float]          # block length range, m
    spacing_v: tuple[float, float]
    street: tuple[float, float]             # minor carriageway width range, m
    sidewalk: float
    avenue: tuple[float, float]
    height: tuple[float, float, float]      # min, median, max building height
    blocks: dict = field(default_factory=dict)
    pitched: float = 0.0                    # share of pitched roofs
    merge: float = 0.1                      # share of removed street segments (bigger blocks)


STYLES = {
    "downtown": Style((75, 130), (60, 110), (10, 13), 4.0, (17, 22), (14, 32, 57),
                      {"towers": 0.42, "perimeter": 0.42, "plaza": 0.06, "park": 0.04, "parking": 0.06},
                      merge=0.06),
    "midrise": Style((65, 120), (50, 100), (9, 12), 3.0, (15, 20), (9, 17, 34),
                     {"perimeter": 0.68, "towers": 0.07, "park": 0.06, "plaza": 0.03, "parking": 0.04,
                      "bigbox": 0.06, "rows": 0.06}, pitched=0.15, merge=0.1),
    "old": Style((45, 95), (40, 80), (7, 9), 2.2, (12, 16), (8, 15, 24),
                 {"perimeter": 0.84, "plaza": 0.06, "park": 0.06, "parking": 0.04}, pitched=0.75, merge=0.12),
    "lowrise": Style((80, 150), (60, 115), (9, 11), 2.0, (14, 18), (6, 9, 15),
                     {"rows": 0.6, "bigbox": 0.12, "parking": 0.06, "park": 0.08, "perimeter": 0.14},
                     pitched=0.45, merge=0.14),
}


def _lines(rng, lo: float, hi: float, spacing: tuple[float, float], avenue_every: int):
    pos = [lo - rng.uniform(0, spacing[1])]
    while pos[-1] < hi + spacing[1]:
        pos.append(pos[-1] + rng.uniform(*spacing))
    pos = np.array(pos)
    avenue = np.zeros(len(pos), bool)
    if avenue_every:
        avenue[rng.integers(avenue_every):: avenue_every] = True
    return pos, avenue


def generate(cv: Canvas) -> dict:
    rng = cv.rng
    h, w = cv.shape
    res = cv.res
    wm, hm = w * res, h * res

    # gentle terrain: a tilted plane and soft undulation
    slope = rng.uniform(0, 0.012, 2)
    yy, xx = np.mgrid[0:h:8, 0:w:8]
    plane = ((xx - w / 2) * slope[0] + (yy - h / 2) * slope[1]) * res
    cv.terrain = (upsample(plane.astype(np.float32), cv.shape, 8) + cv.noise(700.0, 3) * rng.uniform(1.5, 4.0)
                  + 30.0).astype(np.float32)

    n_d = 1 if min(wm, hm) < 700 else int(rng.integers(2, 4 if min(wm, hm) < 1500 else 5))
    polys, seeds = voronoi_districts(rng, w, h, n_d, min_gap=0.3 * min(w, h))
    n_d = len(polys)
    centre = np.array([w / 2, h / 2])
    core = int(np.argmin(np.hypot(*(seeds - centre).T))) if n_d > 1 else 0
    styles = []
    for k in range(n_d):
        if n_d == 1:
            styles.append(rng.choice(["downtown", "midrise", "old", "lowrise"], p=[0.35, 0.3, 0.2, 0.15]))
        elif k == core:
            styles.append("downtown" if rng.random() < 0.75 else "midrise")
        else:
            styles.append(rng.choice(["midrise", "old", "lowrise"], p=[0.45, 0.25, 0.3]))
    dist = district_raster(cv.shape, seeds) if n_d > 1 else np.zeros(cv.shape, np.uint8)

    us_style = rng.random() < 0.5          # yellow centre lines (North America) or white (Europe)
    roads: list[Road] = []
    buildings: list[Building] = []
    trees = Trees()
    crossings: list[tuple] = []
    intersections: list[np.ndarray] = []
    plazas: list[tuple] = []
    angle = rng.uniform(0, np.pi / 2)
    grids = []
    with cv.draw("material") as dm:
        for k in range(n_d):
            st = STYLES[str(styles[k])]
            if k:
                angle = (angle + rng.uniform(np.radians(14), np.radians(40))) % (np.pi / 2)
            fr = Frame(seeds[k], angle, res)
            loc = fr.local(np.asarray(polys[k].exterior.coords))
            us, ave_u = _lines(rng, loc[:, 0].min(), loc[:, 0].max(), st.spacing_u, int(rng.integers(3, 6)))
            vs, ave_v = _lines(rng, loc[:, 1].min(), loc[:, 1].max(), st.spacing_v, int(rng.integers(3, 6)))
            aw_u = np.where(ave_u, rng.uniform(*st.avenue, len(us)), rng.uniform(*st.street, len(us)))
            aw_v = np.where(ave_v, rng.uniform(*st.avenue, len(vs)), rng.uniform(*st.street, len(vs)))
            sw_u = np.where(ave_u, st.sidewalk * 1.3, st.sidewalk)
            sw_v = np.where(ave_v, st.sidewalk * 1.3, st.sidewalk)
            hw_u, hw_v = aw_u / 2 + sw_u, aw_v / 2 + sw_v
            allow = dist == k
            grid = _layout_grid(cv, dm, fr, st, us, vs, ave_u, ave_v, aw_u, aw_v, sw_u, sw_v, hw_u, hw_v,
                                polys[k], allow, roads, buildings, trees, crossings, intersections, plazas,
                                us_style)
            grids.append(grid)

    # district boundaries and an occasional diagonal avenue cut through the grids
    extra: list[Road] = []
    if n_d > 1:
        for k in range(n_d):
            for j in range(k + 1, n_d):
                shared = polys[k].boundary.intersection(polys[j].boundary)
                for g in getattr(shared, "geoms", [shared]):
                    if isinstance(g, LineString) and g.length > 10:
                        extra.append(Road(np.asarray(g.coords), rng.uniform(16, 21), sidewalk=4.0,
                                          centre="double_yellow" if us_style else "solid", lane_lines=True))
    if min(wm, hm) >= 800 and rng.random() < 0.5:
        a = rng.uniform(0, np.pi)
        c = centre + rng.uniform(-0.25, 0.25, 2) * np.array([w, h])
        d = np.array([np.cos(a), np.sin(a)]) * (w + h)
        extra.append(Road(np.array([c - d, c + d]), rng.uniform(18, 24), sidewalk=4.5,
                          centre="double_yellow" if us_style else "solid", lane_lines=True))
    roads += extra
    draw_roads(cv, roads)
    draw_markings(cv, roads)
    _crossings(cv, crossings, intersections)
    for r in roads:
        if r.width >= 15 and r.kind == "asphalt":
            for side in (-1, 1):
                cars_along(cv, r.pts, side * r.width * 0.32, 14.0, 0.22)

    paint_ground(cv, palette={M.GRASS: ((80, 104, 54), (118, 126, 74), 0.1, 0.08)})
    _plaza_paving(cv, plazas)
    apply_paint(cv)
    stamp_buildings(cv, buildings)
    trees.stamp(cv, forbid=(M.ROOF, M.WATER))
    return {"districts": [str(s) for s in styles], "n_roads": len(roads)}


def _layout_grid(cv, dm, fr: Frame, st: Style, us, vs, ave_u, ave_v, aw_u, aw_v, sw_u, sw_v, hw_u, hw_v,
                 poly, allow, roads, buildings, trees, crossings, intersections, plazas, us_style):
    rng = cv.rng
    nu, nv = len(us), len(vs)
    # removed street segments merge neighbouring blocks (never on avenues)
    cut_u = np.zeros((nu, nv - 1), bool)      # u-line i between v_j and v_j+1 removed
    cut_v = np.zeros((nu - 1, nv), bool)
    owner = -np.ones((nu - 1, nv - 1), int)
    blocks = []
    for i in range(nu - 1):
        for j in range(nv - 1):
            if owner[i, j] >= 0:
                continue
            u0, u1, v0, v1 = us[i] + hw_u[i], us[i + 1] - hw_u[i + 1], vs[j] + hw_v[j], vs[j + 1] - hw_v[j + 1]
            r = rng.random()
            if r < st.merge and i + 2 < nu and not ave_u[i + 1] and owner[i + 1, j] < 0:
                cut_u[i + 1, j] = True
                owner[i + 1, j] = len(blocks)
                u1 = us[i + 2] - hw_u[i + 2]
            elif r < 2 * st.merge and j + 2 < nv and not ave_v[j + 1] and owner[i, j + 1] < 0:
                cut_v[i, j + 1] = True
                owner[i, j + 1] = len(blocks)
                v1 = vs[j + 2] - hw_v[j + 2]
            owner[i, j] = len(blocks)
            blocks.append((u0, u1, v0, v1))

    # streets: one road per segment between intersections, clipped to the district
    centre = "dashed" if not us_style else "double_yellow"
    for i in range(nu):
        for j in range(nv - 1):
            if not cut_u[i, j]:
                _segment(cv, fr, poly, roads, (us[i], vs[j]), (us[i], vs[j + 1]), aw_u[i], sw_u[i], ave_u[i],
                         centre, hw_v[j], hw_v[j + 1], trees, st)
    for j in range(nv):
        for i in range(nu - 1):
            if not cut_v[i, j]:
                _segment(cv, fr, poly, roads, (us[i], vs[j]), (us[i + 1], vs[j]), aw_v[j], sw_v[j], ave_v[j],
                         centre, hw_u[i], hw_u[i + 1], trees, st)
    # intersections (for erasing centre lines) and crosswalks on the arms
    zebra_p = 0.9 if st.sidewalk >= 3 else 0.5
    for i in range(nu):
        for j in range(nv):
            arms_v = [(j > 0 and not cut_u[i, j - 1]), (j < nv - 1 and not cut_u[i, min(j, nv - 2)])]
            arms_u = [(i > 0 and not cut_v[i - 1, j]), (i < nu - 1 and not cut_v[min(i, nu - 2), j])]
            if not (any(arms_v) and any(arms_u)):
                continue
            if not poly.buffer(20 / cv.res).contains(_pt(fr.px(us[i], vs[j]))):
                continue
            intersections.append(fr.rect(us[i] - aw_u[i] / 2, us[i] + aw_u[i] / 2,
                                         vs[j] - aw_v[j] / 2, vs[j] + aw_v[j] / 2))
            if rng.random() > zebra_p:
                continue
            for s, ok in zip((-1, 1), arms_v):       # crosswalks across the u-line street
                if ok:
                    c = vs[j] + s * (hw_v[j] + 1.6)
                    crossings.append((fr, us[i], c, aw_u[i], "across_u", s))
            for s, ok in zip((-1, 1), arms_u):
                if ok:
                    c = us[i] + s * (hw_u[i] + 1.6)
                    crossings.append((fr, c, vs[j], aw_v[j], "across_v", s))

    # blocks
    kinds = list(st.blocks)
    probs = np.array([st.blocks[k] for k in kinds])
    for (u0, u1, v0, v1) in blocks:
        if u1 - u0 < 12 or v1 - v0 < 12:
            continue
        cpx = fr.px((u0 + u1) / 2, (v0 + v1) / 2)
        if not (-200 < cpx[0] < cv.shape[1] + 200 and -200 < cpx[1] < cv.shape[0] + 200):
            continue
        kind = kinds[rng.choice(len(kinds), p=probs / probs.sum())]
        FILLERS[kind](cv, dm, fr, st, (u0, u1, v0, v1), allow, buildings, trees, plazas)
    return blocks


def _pt(p):
    return Point(float(p[0]), float(p[1]))


def _segment(cv, fr, poly, roads, a, b, width, sidewalk, avenue, centre, hw_a, hw_b, trees, st):
    rng = cv.rng
    line = LineString(fr.px(np.array([a[0], b[0]]), np.array([a[1], b[1]])))
    clipped = line.intersection(poly)
    for g in getattr(clipped, "geoms", [clipped]):
        if g.is_empty or not isinstance(g, LineString) or g.length < 2:
            continue
        pts = np.asarray(g.coords)
        roads.append(Road(pts, width, sidewalk=sidewalk, round_ends=False,
                          centre=centre if (avenue or rng.random() < 0.5) else "none", lane_lines=avenue))
    if clipped.is_empty:
        return
    # kerbside parking and street trees, kept clear of the intersections
    ua, va = a
    ub, vb = b
    length = np.hypot(ub - ua, vb - va)
    t0, t1 = (hw_a + 5) / length, 1 - (hw_b + 5) / length
    if t1 <= t0:
        return
    pa = np.array([ua + (ub - ua) * t0, va + (vb - va) * t0])
    pb = np.array([ua + (ub - ua) * t1, va + (vb - va) * t1])
    inner = LineString(fr.px(np.array([pa[0], pb[0]]), np.array([pa[1], pb[1]]))).intersection(poly)
    for g in getattr(inner, "geoms", [inner]):
        if g.is_empty or not isinstance(g, LineString) or g.length < 10:
            continue
        pts = np.asarray(g.coords)
        if not avenue and rng.random() < 0.8:
            occ = rng.uniform(0.3, 0.8)
            for side in (-1, 1):
                cars_along(cv, pts, side * (width / 2 - 1.2), rng.uniform(5.8, 6.6), occ)
        if sidewalk >= 2.5 and rng.random() < 0.5:
            spacing = rng.uniform(8, 13)
            rad = rng.uniform(2.2, 3.6)
            hgt = rng.uniform(6, 11)
            for side in (-1, 1):
                p, _ = resample_polyline(offset_polyline(pts, side * cv.px(width / 2 + sidewalk * 0.45)),
                                         cv.px(spacing))
                if len(p) < 2:
                    continue
                p = p[1:]
                n = len(p)
                trees.add(p[:, 0], p[:, 1], rad * rng.uniform(0.85, 1.15, n), hgt * rng.uniform(0.9, 1.1, n),
                          tree_colours(rng, n, (60, 82, 42), 0.12))


def _crossings(cv: Canvas, crossings, intersections) -> None:
    d = ImageDraw.Draw(cv.paint)
    for quad in intersections:
        d.polygon(pil_xy(quad), fill=0)
    for fr, u, v, aw, kind, side in crossings:
        # zebra bars parallel to the traffic, 0.6 m wide, every 1.2 m, 3 m long; plus a stop line
        n = int(aw / 1.2)
        offs = (np.arange(n) - (n - 1) / 2) * 1.2
        for o in offs:
            if kind == "across_u":
                q = fr.rect(u + o - 0.3, u + o + 0.3, v - 1.5, v + 1.5)
            else:
                q = fr.rect(u - 1.5, u + 1.5, v + o - 0.3, v + o + 0.3)
            d.polygon(pil_xy(q), fill=1)
        if kind == "across_u":
            q = fr.rect(u, u + side * aw / 2 * 0.95, v + side * 2.4, v + side * 2.9)
        else:
            q = fr.rect(u + side * 2.4, u + side * 2.9, v - side * aw / 2 * 0.95, v)
        d.polygon(pil_xy(q), fill=1)


def _plaza_paving(cv: Canvas, plazas) -> None:
    d = ImageDraw.Draw(cv.paint)
    for fr, (u0, u1, v0, v1), step in plazas:
        for u in np.arange(u0 + step, u1, step):
            d.line(pil_xy(fr.px(np.array([u, u]), np.array([v0, v1]))), fill=3, width=1)
        for v in np.arange(v0 + step, v1, step):
            d.line(pil_xy(fr.px(np.array([u0, u1]), np.array([v, v]))), fill=3, width=1)


# ------------------------------------------------------------------------------------------- block fillers
def _heights(rng, st: Style, n: int, scale: float = 1.0) -> np.ndarray:
    lo, med, hi = st.height
    hgt = med * scale * np.exp(rng.normal(0, 0.35, n))
    return np.clip(hgt, lo, hi)


def _roof(rng, st: Style, pitched: bool) -> tuple[str, np.ndarray]:
    if pitched:
        return ("gable" if rng.random() < 0.6 else "hip"), pick_colour(rng, PITCHED_ROOFS,
                                                                        p=[.3, .22, .12, .16, .1, .05, .05])
    return "flat", pick_colour(rng, FLAT_ROOFS, p=FLAT_ROOF_P)


def _ground(dm, fr, rect, material) -> None:
    u0, u1, v0, v1 = rect
    dm.polygon(pil_xy(fr.rect(u0, u1, v0, v1)), fill=int(material))


def _perimeter(cv, dm, fr, st, rect, allow, buildings, trees, plazas, rows: bool = False):
    rng = cv.rng
    u0, u1, v0, v1 = rect
    bu, bv = u1 - u0, v1 - v0
    if rows:
        depth = rng.uniform(10, 16)
        front, setback, gap = (8, 16), (0.0, 4.0), (1.0, 3.5)
        ground = (M.GRASS, M.GARDEN, M.PAVED)[rng.choice(3, p=[0.5, 0.3, 0.2])]
    else:
        depth = rng.uniform(13, 22)
        front, setback, gap = (10, 30), (0.0, 0.0), (0.0, 0.0)
        ground = M.GRASS if rng.random() < 0.55 else M.PAVED
    depth = min(depth, 0.5 * min(bu, bv) - 1)
    _ground(dm, fr, rect, ground)
    if depth < 6:
        depth = min(bu, bv) / 2
    block_scale = np.exp(rng.normal(0, 0.2))
    pitched_block = rng.random() < st.pitched
    gap_p = 0.15 if rows else 0.07
    sides = [  # (start, end along side, fixed coordinate, inward sign, along u?)
        (u0, u1, v0, +1, True), (u0, u1, v1, -1, True),
        (v0 + depth, v1 - depth, u0, +1, False), (v0 + depth, v1 - depth, u1, -1, False)]
    for a, b, fixed, inward, along_u in sides:
        pos = a
        while pos < b - 4:
            f = rng.uniform(*front)
            if b - (pos + f) < front[0] * 0.6:
                f = b - pos
            g = rng.uniform(*gap)
            if rng.random() < gap_p:
                pos += f
                continue
            d = depth * (rng.uniform(0.7, 1.0) if not rows else rng.uniform(0.75, 1.15))
            sb = rng.uniform(*setback)
            length = f - g
            if length < 5:
                pos += f
                continue
            mid = pos + f / 2
            off = fixed + inward * (sb + d / 2)
            cx, cy = fr.px(mid, off) if along_u else fr.px(off, mid)
            ang = fr.angle if along_u else fr.angle + np.pi / 2
            hgt = float(_heights(rng, st, 1, block_scale)[0])
            roof, rc = _roof(rng, st, pitched_block and rng.random() < 0.85)
            if roof != "flat":
                hgt = max(hgt, 6.5)
            wall = pick_colour(rng, FACADES)
            buildings.append(Building([Part(cx, cy, length, d, ang, hgt, roof)], rc, wall, allow, 0.6))
            pos += f
    # back buildings in the courtyard (workshops, garages, annexes)
    iu0, iu1, iv0, iv1 = u0 + depth + 2, u1 - depth - 2, v0 + depth + 2, v1 - depth - 2
    if iu1 - iu0 > 14 and iv1 - iv0 > 14:
        for _ in range(rng.poisson(1.2 if not rows else 0.6)):
            bl, bw = rng.uniform(6, min(22, iu1 - iu0 - 2)), rng.uniform(5, min(14, iv1 - iv0 - 2))
            cu, cvv = rng.uniform(iu0 + bl / 2, iu1 - bl / 2), rng.uniform(iv0 + bw / 2, iv1 - bw / 2)
            roof, rc = _roof(rng, st, rng.random() < 0.3)
            buildings.append(Building([Part(*fr.px(cu, cvv), bl, bw, fr.angle, rng.uniform(6, 9), roof)], rc,
                                      pick_colour(rng, FACADES), allow, 0.9))
    # courtyard trees
    n = int(rng.poisson(bu * bv / 900))
    if n and bu > 2 * depth + 6 and bv > 2 * depth + 6:
        uu = rng.uniform(u0 + depth + 3, u1 - depth - 3, n)
        vv = rng.uniform(v0 + depth + 3, v1 - depth - 3, n)
        p = fr.px(uu, vv)
        trees.add(p[:, 0], p[:, 1], rng.uniform(2.0, 4.5, n), rng.uniform(6, 13, n), tree_colours(rng, n))


def _rows(cv, dm, fr, st, rect, allow, buildings, trees, plazas):
    _perimeter(cv, dm, fr, st, rect, allow, buildings, trees, plazas, rows=True)


def _towers(cv, dm, fr, st, rect, allow, buildings, trees, plazas):
    rng = cv.rng
    u0, u1, v0, v1 = rect
    bu, bv = u1 - u0, v1 - v0
    _ground(dm, fr, rect, M.PAVED)
    plazas.append((fr, rect, rng.uniform(3.0, 6.0)))
    glass = rng.random() < 0.5
    wall = FACADES[7] * rng.uniform(0.85, 1.1) if glass else pick_colour(rng, FACADES)
    lo, med, hi = st.height
    if rng.random() < 0.5 and bu > 35 and bv > 35:
        # podium with one tower on top
        m = rng.uniform(2, 6)
        pod = Part(*fr.px((u0 + u1) / 2, (v0 + v1) / 2), bu - 2 * m, bv - 2 * m, fr.angle,
                   rng.uniform(9, 16), "flat")
        tl, tw = rng.uniform(0.35, 0.7) * (bu - 2 * m), rng.uniform(0.35, 0.7) * (bv - 2 * m)
        tu = rng.uniform(u0 + m + tl / 2, u1 - m - tl / 2)
        tv = rng.uniform(v0 + m + tw / 2, v1 - m - tw / 2)
        tower = Part(*fr.px(tu, tv), tl, tw, fr.angle, float(np.clip(rng.uniform(med, hi + 8), lo, 57)), "flat",
                     roof_rgb=pick_colour(rng, FLAT_ROOFS, p=FLAT_ROOF_P))
        buildings.append(Building([pod, tower], pick_colour(rng, FLAT_ROOFS, p=FLAT_ROOF_P), wall, allow, 0.6))
    else:
        n = int(rng.integers(1, 4))
        cells_u = max(1, min(n, int(bu // 25)))
        cells_v = max(1, int(np.ceil(n / cells_u)))
        cu, cvv = bu / cells_u, bv / cells_v
        for a in range(cells_u):
            for b in range(cells_v):
                if rng.random() < 0.15:
                    continue
                tl, tw = rng.uniform(0.5, 0.8) * cu, rng.uniform(0.5, 0.8) * cvv
                if min(tl, tw) < 10:
                    continue
                tu = u0 + a * cu + rng.uniform(tl / 2, cu - tl / 2)
                tv = v0 + b * cvv + rng.uniform(tw / 2, cvv - tw / 2)
                hgt = float(np.clip(med * np.exp(rng.normal(0.35, 0.35)), lo + 6, 57))
                buildings.append(Building([Part(*fr.px(tu, tv), tl, tw, fr.angle, hgt, "flat")],
                                          pick_colour(rng, FLAT_ROOFS, p=FLAT_ROOF_P), wall, allow, 0.6))
        n = int(rng.poisson(bu * bv / 700))
        uu = rng.uniform(u0 + 3, u1 - 3, n)
        vv = rng.uniform(v0 + 3, v1 - 3, n)
        p = fr.px(uu, vv)
        trees.add(p[:, 0], p[:, 1], rng.uniform(2, 3.5, n), rng.uniform(6, 10, n), tree_colours(rng, n))


def _bigbox(cv, dm, fr, st, rect, allow, buildings, trees, plazas):
    rng = cv.rng
    u0, u1, v0, v1 = rect
    bu, bv = u1 - u0, v1 - v0
    _ground(dm, fr, rect, M.PAVED)
    share = rng.uniform(0.45, 0.65)
    m = 3.0
    if rng.random() < 0.5:
        bd = bv * share
        cx, cy = fr.px((u0 + u1) / 2, v1 - m - bd / 2)
        parking_lot(cv, dm, *fr.px((u0 + u1) / 2, v0 + (bv - bd - m) / 2), bu - 2 * m, bv - bd - 3 * m,
                    fr.angle, rng.uniform(0.3, 0.8))
        part = Part(cx, cy, bu - 2 * m, bd - m, fr.angle, rng.uniform(6, 12), "flat")
    else:
        bd = bu * share
        cx, cy = fr.px(u1 - m - bd / 2, (v0 + v1) / 2)
        parking_lot(cv, dm, *fr.px(u0 + (bu - bd - m) / 2, (v0 + v1) / 2), bv - 2 * m, bu - bd - 3 * m,
                    fr.angle + np.pi / 2, rng.uniform(0.3, 0.8))
        part = Part(cx, cy, bd - m, bv - 2 * m, fr.angle, rng.uniform(6, 12), "flat")
    roof = np.array((205, 205, 200), np.float32) * rng.uniform(0.8, 1.02)
    buildings.append(Building([part], roof, pick_colour(rng, FACADES), allow, 0.6))


def _parking(cv, dm, fr, st, rect, allow, buildings, trees, plazas):
    rng = cv.rng
    u0, u1, v0, v1 = rect
    _ground(dm, fr, rect, M.PAVED)
    parking_lot(cv, dm, *fr.px((u0 + u1) / 2, (v0 + v1) / 2), u1 - u0 - 2, v1 - v0 - 2, fr.angle,
                rng.uniform(0.35, 0.9))


def _park(cv, dm, fr, st, rect, allow, buildings, trees, plazas):
    rng = cv.rng
    u0, u1, v0, v1 = rect
    bu, bv = u1 - u0, v1 - v0
    _ground(dm, fr, rect, M.GRASS)
    # paths: a loop and two diagonals
    k = 0.18
    loop_u = np.array([u0 + k * bu, u1 - k * bu, u1 - k * bu, u0 + k * bu, u0 + k * bu])
    loop_v = np.array([v0 + k * bv, v0 + k * bv, v1 - k * bv, v1 - k * bv, v0 + k * bv])
    w_px = max(2, round(cv.px(3.0)))
    dm.line(pil_xy(fr.px(loop_u, loop_v)), fill=int(M.PAVED), width=w_px, joint="curve")
    dm.line(pil_xy(fr.px(np.array([u0, u1]), np.array([v0, v1]))), fill=int(M.PAVED), width=w_px)
    if rng.random() < 0.5:
        dm.line(pil_xy(fr.px(np.array([u0, u1]), np.array([v1, v0]))), fill=int(M.PAVED), width=w_px)
    if rng.random() < 0.4 and min(bu, bv) > 50:
        pu, pv = rng.uniform(u0 + 0.3 * bu, u1 - 0.3 * bu), rng.uniform(v0 + 0.3 * bv, v1 - 0.3 * bv)
        r = rng.uniform(0.1, 0.18) * min(bu, bv)
        ang = np.linspace(0, 2 * np.pi, 24, endpoint=False)
        rad = r * (1 + 0.15 * np.sin(3 * ang + rng.uniform(0, 6)))
        dm.polygon(pil_xy(fr.px(pu + rad * np.cos(ang) * 1.4, pv + rad * np.sin(ang))), fill=int(M.WATER))
    n = int(rng.poisson(bu * bv / 160))
    # clustered trees: parents and offspring
    parents = max(1, n // 12)
    pu = rng.uniform(u0, u1, parents)
    pv = rng.uniform(v0, v1, parents)
    which = rng.integers(0, parents, n)
    uu = np.clip(pu[which] + rng.normal(0, 9, n), u0 + 1, u1 - 1)
    vv = np.clip(pv[which] + rng.normal(0, 9, n), v0 + 1, v1 - 1)
    p = fr.px(uu, vv)
    trees.add(p[:, 0], p[:, 1], rng.uniform(2.5, 6, n), rng.uniform(7, 18, n), tree_colours(rng, n),
              conical=rng.random(n) < 0.12)


def _plaza(cv, dm, fr, st, rect, allow, buildings, trees, plazas):
    rng = cv.rng
    u0, u1, v0, v1 = rect
    _bu, _bv = u1 - u0, v1 - v0
    _ground(dm, fr, rect, M.PAVED)
    plazas.append((fr, rect, rng.uniform(2.0, 5.0)))
    uc, vc = (u0 + u1) / 2, (v0 + v1) / 2
    r = rng.uniform(3, 7)
    ang = np.linspace(0, 2 * np.pi, 32, endpoint=False)
    dm.polygon(pil_xy(fr.px(uc + (r + 1.5) * np.cos(ang), vc + (r + 1.5) * np.sin(ang))), fill=int(M.PAVED))
    dm.polygon(pil_xy(fr.px(uc + r * np.cos(ang), vc + r * np.sin(ang))), fill=int(M.WATER))
    step = rng.uniform(8, 12)
    gu, gv = np.meshgrid(np.arange(u0 + 4, u1 - 3, step), np.arange(v0 + 4, v1 - 3, step))
    keep = (np.hypot(gu - uc, gv - vc) > r + 6) & (rng.random(gu.shape) < 0.8)
    p = fr.px(gu[keep], gv[keep])
    n = len(p)
    if n:
        trees.add(p[:, 0], p[:, 1], rng.uniform(2, 3, n), rng.uniform(5, 9, n),
                  tree_colours(rng, n, (62, 86, 44), 0.1))


FILLERS = {"perimeter": _perimeter, "rows": _rows, "towers": _towers, "bigbox": _bigbox, "parking": _parking,
           "park": _park, "plaza": _plaza}
