"""Urban biome: districts with their own street grids (irregular spacing, merged blocks, T-junctions),
sidewalks, lane markings and crosswalks, perimeter blocks, towers on podiums, low-rise rows, big boxes,
parking lots, plazas and parks, street trees and parked cars."""
from __future__ import annotations

import numpy as np
from PIL import ImageDraw
from shapely import LineString, Point

from engine.synth.biomes.buildings import Building, stamp_buildings
from engine.synth.biomes.canvas import Canvas, pil_xy
from engine.synth.biomes.colour import apply_paint, paint_ground
from engine.synth.biomes.geometry import Frame, district_raster, offset_polyline, resample_polyline, voronoi_districts
from engine.synth.biomes.registry import register_biome
from engine.synth.biomes.roads import Road, cars_along, draw_markings, draw_roads
from engine.synth.biomes.trees import Trees, tree_colours
from engine.synth.biomes.urban_blocks import FILLERS, STYLES, Style
from engine.synth.noise import upsample
from engine.synth.world import Material as M


def _lines(rng, lo: float, hi: float, spacing: tuple[float, float], avenue_every: int):
    pos = [lo - rng.uniform(0, spacing[1])]
    while pos[-1] < hi + spacing[1]:
        pos.append(pos[-1] + rng.uniform(*spacing))
    pos = np.array(pos)
    avenue = np.zeros(len(pos), bool)
    if avenue_every:
        avenue[rng.integers(avenue_every):: avenue_every] = True
    return pos, avenue


@register_biome("urban", origin_lonlat=(-87.6298, 41.8815))  # Chicago Loop
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
