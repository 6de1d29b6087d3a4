"""Rural biome: a patchwork of fields (recursive splits of the land between roads, each field with its own
crop colour, row direction and tramlines), pastures, woods and orchards, hedgerows and tree lines along
field edges, a paved country road, dirt tracks, farmsteads with barns and silos, a stream."""
from __future__ import annotations

import itertools

import numpy as np
from PIL import Image, ImageDraw
from shapely import LineString, MultiPolygon, Polygon, box, contains_xy

from engine.synth.biomes.buildings import Building, Part, stamp_buildings, stamp_round_building
from engine.synth.biomes.canvas import Canvas, pil_xy
from engine.synth.biomes.colour import apply_paint, paint_ground
from engine.synth.biomes.geometry import Warp, densify, offset_polyline, rect_corners, resample_polyline
from engine.synth.biomes.palettes import PITCHED_ROOFS, pick_colour
from engine.synth.biomes.registry import register_biome
from engine.synth.biomes.roads import Road, draw_markings, draw_roads, level_roads
from engine.synth.biomes.trees import Trees, tree_colours
from engine.synth.noise import grain
from engine.synth.world import Material as M

#: Crops: name, colour, stripe contrast, row period (m), share.
CROPS = [
    ("young cereal", (98, 126, 62), 0.05, 3.0, 0.2),
    ("ripe cereal", (196, 176, 112), 0.06, 4.0, 0.15),
    ("maize", (76, 102, 50), 0.12, 1.6, 0.1),
    ("ploughed", (122, 98, 74), 0.16, 1.5, 0.14),
    ("stubble", (184, 168, 126), 0.07, 6.0, 0.1),
    ("rapeseed", (204, 190, 72), 0.04, 3.0, 0.04),
    ("sugar beet", (70, 104, 52), 0.1, 1.5, 0.06),
    ("harrowed", (150, 124, 94), 0.09, 2.5, 0.08),
    ("pasture", (102, 124, 64), 0.04, 5.0, 0.13),
]
BARN_ROOFS = np.array([(120, 124, 128), (150, 152, 150), (90, 110, 92), (140, 70, 56), (70, 72, 76),
                       (176, 176, 170)], np.float32)


def _cut(poly: Polygon, c: np.ndarray, normal: np.ndarray, size: float) -> tuple:
    """Split `poly` by the line through c with the given normal: (positive side, negative side)."""
    t = np.array([-normal[1], normal[0]])
    half = Polygon([c + t * size, c + t * size + normal * size, c - t * size + normal * size, c - t * size])
    return poly.intersection(half), poly.difference(half)


def _parts(g) -> list[Polygon]:
    if isinstance(g, Polygon):
        return [g] if not g.is_empty else []
    if isinstance(g, MultiPolygon):
        return list(g.geoms)
    return [p for p in getattr(g, "geoms", []) if isinstance(p, Polygon)]


@register_biome("rural", origin_lonlat=(11.3450, 48.5620))  # farmland north of Munich, Bavaria
def generate(cv: Canvas) -> dict:
    rng = cv.rng
    h, w = cv.shape
    res = cv.res
    wm, hm = w * res, h * res
    cv.terrain = (cv.noise(1400.0, 4) * rng.uniform(6, 16) + cv.noise(300.0, 3) * 1.5 + 420).astype(np.float32)
    world = box(0, 0, w, h)
    big = 2.0 * (w + h)
    warp = Warp(cv, rng.uniform(30, 70), rng.uniform(500, 900))

    # country roads: a paved road across the world, sometimes a second one
    roads: list[Road] = []
    road_lines = []
    for _ in range(1 if rng.random() < 0.5 or min(wm, hm) < 800 else 2):
        a = rng.uniform(0, np.pi)
        c = np.array([w / 2, h / 2]) + rng.uniform(-0.3, 0.3, 2) * np.array([w, h])
        d = np.array([np.cos(a), np.sin(a)]) * big
        pts = warp(densify(np.array([c - d * 0.35, c + d * 0.35]), cv.px(8)))
        roads.append(Road(pts, rng.uniform(5.5, 7.0), centre="dashed", edge_lines=rng.random() < 0.6))
        road_lines.append(LineString(pts))

    # stream with a riparian strip
    streams = []
    if rng.random() < 0.6:
        a = rng.uniform(0, np.pi)
        c = np.array([w / 2, h / 2]) + rng.uniform(-0.35, 0.35, 2) * np.array([w, h])
        d = np.array([np.cos(a), np.sin(a)]) * big
        s_warp = Warp(cv, rng.uniform(40, 90), rng.uniform(200, 400))
        streams.append(s_warp(densify(np.array([c - d * 0.35, c + d * 0.35]), cv.px(6))))

    # parcels: land between roads, split recursively; big early cuts become dirt tracks
    land = world
    for r in roads:
        land = land.difference(LineString(r.pts).buffer(cv.px(r.width / 2 + 2.5)))
    for s in streams:
        land = land.difference(LineString(s).buffer(cv.px(6)))
    target = rng.uniform(1.5, 5.0) * 1e4 / res ** 2          # mean field area (cells)
    strip_world = rng.random() < 0.3                        # long narrow strips (central-European style)
    queue = [(p, 0) for p in _parts(land)]
    fields: list[Polygon] = []
    tracks: list[np.ndarray] = []
    while queue:
        p, depth = queue.pop()
        if p.area < 0.04 * target:
            continue
        if p.area < target * rng.uniform(0.5, 1.6) or depth > 14:
            fields.append(p)
            continue
        rect = np.asarray(p.minimum_rotated_rectangle.exterior.coords)[:4]
        e1, e2 = rect[1] - rect[0], rect[2] - rect[1]
        long_ax = e1 if np.hypot(*e1) >= np.hypot(*e2) else e2
        length = np.hypot(*long_ax)
        long_ax = long_ax / max(length, 1e-9)
        ang = np.arctan2(long_ax[1], long_ax[0]) + rng.normal(0, 0.12)
        normal = np.array([np.cos(ang), np.sin(ang)])       # cut across the long axis
        jitter = (rng.uniform(-0.15, 0.15) if not strip_world else rng.uniform(-0.3, 0.3)) * length
        c = np.array(p.centroid.coords[0]) + long_ax * jitter
        track = p.area > 6 * target and rng.random() < 0.5
        a, b = _cut(p, c, normal, big)
        if track:
            tl = LineString([c - np.array([-normal[1], normal[0]]) * big, c + np.array([-normal[1], normal[0]]) * big])
            seg = tl.intersection(p)
            for g in getattr(seg, "geoms", [seg]):
                if isinstance(g, LineString) and g.length > cv.px(40):
                    tracks.append(np.asarray(g.coords))
            gap = tl.buffer(cv.px(3.5))
            a, b = a.difference(gap), b.difference(gap)
        queue += [(q, depth + 1) for q in _parts(a) + _parts(b)]

    for t in tracks:
        roads.append(Road(densify(t, cv.px(8)), rng.uniform(3.0, 4.0), kind="dirt"))

    # field attributes
    n_f = len(fields)
    share = np.array([c[4] for c in CROPS])
    kind = rng.choice(len(CROPS), n_f, p=share / share.sum())
    # woods and orchards, each within an area budget so that fields stay dominant even in small worlds
    areas = np.array([f.area for f in fields]) * res ** 2
    wood = np.zeros(n_f, bool)
    orchard = np.zeros(n_f, bool)
    budget = {"wood": 0.14 * wm * hm, "orchard": 0.05 * wm * hm}
    for k in rng.permutation(n_f):
        r = rng.random()
        if r < 0.09 and areas[k] <= budget["wood"]:
            wood[k] = True
            budget["wood"] -= areas[k]
        elif 0.09 <= r < 0.12 and areas[k] <= budget["orchard"]:
            orchard[k] = True
            budget["orchard"] -= areas[k]
    kind[wood | orchard] = [c[0] for c in CROPS].index("pasture")
    row_angle = np.zeros(n_f)
    for k, f in enumerate(fields):
        rect = np.asarray(f.minimum_rotated_rectangle.exterior.coords)[:4]
        e1, e2 = rect[1] - rect[0], rect[2] - rect[1]
        e = e1 if np.hypot(*e1) >= np.hypot(*e2) else e2
        row_angle[k] = np.arctan2(e[1], e[0]) + (np.pi / 2 if rng.random() < 0.15 else 0.0)
    fid_img = Image.new("I", (w, h))
    d = ImageDraw.Draw(fid_img)
    margins = rng.uniform(0.8, 2.5, n_f)
    shrunk = []
    for k, f in enumerate(fields):
        g = f.buffer(-cv.px(margins[k]), join_style="mitre")
        for part in _parts(g):
            d.polygon(pil_xy(np.asarray(part.exterior.coords)), fill=k + 1)
        shrunk.append(g)
    fid = np.asarray(fid_img).astype(np.int32)
    is_field = fid > 0
    crop = np.zeros(n_f + 1, np.int64)
    crop[1:] = kind
    pasture = np.zeros(n_f + 1, bool)
    pasture[1:] = (np.array([CROPS[k][0] for k in kind]) == "pasture") | wood | orchard
    cv.material = np.where(is_field & ~pasture[fid], np.uint8(M.FIELD), np.uint8(M.GRASS))

    # stream
    with cv.draw("material") as dm, cv.draw("reserved") as dr:
        for s in streams:
            wpx = max(2, round(cv.px(rng.uniform(3, 6))))
            dm.line(pil_xy(s), fill=int(M.WATER), width=wpx, joint="curve")
            dr.line(pil_xy(s), fill=1, width=wpx, joint="curve")
        farm_buildings, silos, farm_trees = _farmsteads(cv, dm, roads, wm, hm)
    draw_roads(cv, roads)
    # grass strip between the wheel tracks of dirt roads
    with cv.draw("material") as dm:
        for r in roads:
            if r.kind == "dirt":
                dm.line(pil_xy(r.pts), fill=int(M.GRASS), width=1)
    draw_markings(cv, [r for r in roads if r.kind == "asphalt"])
    level_roads(cv, roads)

    trees = Trees()
    _hedges(cv, shrunk, wood | orchard, trees)
    _woods(cv, [shrunk[k] for k in np.flatnonzero(wood)], trees)
    _orchards(cv, [shrunk[k] for k in np.flatnonzero(orchard)], trees)
    for s in streams:
        for side in (-1, 1):
            p, _ = resample_polyline(offset_polyline(s, side * cv.px(rng.uniform(5, 8))), cv.px(4.5))
            keep = rng.random(len(p)) < 0.7
            p = p[keep] + rng.normal(0, cv.px(1.2), (keep.sum(), 2))
            n = len(p)
            trees.add(p[:, 0], p[:, 1], rng.uniform(2.5, 5, n), rng.uniform(8, 18, n), tree_colours(rng, n))
    for f in farm_trees:
        trees.add(*f)

    paint_ground(cv, palette={M.GRASS: ((96, 116, 62), (132, 136, 84), 0.1, 0.08)})
    _colour_fields(cv, fid, crop, row_angle, is_field & (cv.material == M.FIELD) | (is_field & (cv.material == M.GRASS)
                                                                           & pasture[fid] & ~cv.reserved))
    apply_paint(cv)
    stamp_buildings(cv, farm_buildings)
    for x, y, r, hgt, roof in silos:
        stamp_round_building(cv, x, y, r, hgt, roof, roof * 0.9)
    trees.stamp(cv, forbid=(M.ROOF, M.WATER, M.ROAD, M.PAVED))
    return {"n_fields": n_f, "n_tracks": len(tracks), "n_farms": len(farm_trees), "stream": bool(streams)}


def _colour_fields(cv: Canvas, fid: np.ndarray, crop: np.ndarray, row_angle: np.ndarray,
                   mask: np.ndarray) -> None:
    """Per-field crop colour, rows in the field's own direction, tramlines, soil/moisture patches."""
    rng = cv.rng
    n = len(crop)
    base = np.array([CROPS[k][1] for k in crop], np.float32) * rng.uniform(0.9, 1.1, (n, 1))
    base *= rng.uniform(0.96, 1.04, (n, 3))
    contrast = np.array([CROPS[k][2] for k in crop], np.float32) * rng.uniform(0.7, 1.3, n)
    period = np.array([CROPS[k][3] for k in crop], np.float32) * rng.uniform(0.8, 1.3, n)
    # stripes vary across the rows: the phase direction is the normal of the row direction
    ang = np.concatenate([[0.0], row_angle]) + np.pi / 2
    tram = rng.uniform(18, 28, n).astype(np.float32)
    tram[np.array([CROPS[k][0] in ("pasture", "ploughed") for k in crop])] = 0
    rows, cols = np.nonzero(mask)
    k = fid[rows, cols]
    x = cols.astype(np.float32) * cv.res
    y = rows.astype(np.float32) * cv.res
    s = x * np.cos(ang[k]).astype(np.float32) + y * np.sin(ang[k]).astype(np.float32)
    stripe = np.sin(s * (2 * np.pi) / period[k])
    col = base[k] * (1 + contrast[k] * stripe)[:, None]
    tm = tram[k]
    tpos = np.mod(s, np.where(tm > 0, tm, 1.0))
    tline = (tm > 0) & ((np.abs(tpos - 1.0) < 0.35) | (np.abs(tpos - 2.8) < 0.35))
    col[tline] *= 0.82
    patches = cv.noise(90.0, 3)[rows, cols]
    g = grain(rng, (len(rows),))
    col *= (1 + 0.07 * patches + 0.05 * g)[:, None]
    cv.albedo[rows, cols] = col


def _hedges(cv: Canvas, fields, skip, trees: Trees) -> None:
    """Tree lines and hedgerows along some field edges."""
    rng = cv.rng
    for k, f in enumerate(fields):
        if skip[k]:
            continue
        for part in _parts(f):
            ring = np.asarray(part.exterior.coords)
            for a, b in itertools.pairwise(ring):
                seg_len = np.hypot(*(b - a)) * cv.res
                if seg_len < 25 or rng.random() > 0.28:
                    continue
                dense = rng.random() < 0.45
                step = rng.uniform(2.5, 4) if dense else rng.uniform(6, 14)
                n = int(seg_len // step)
                t = (np.arange(n) + 0.5) / n
                keep = rng.random(n) < (0.85 if dense else 0.75)
                t = t[keep]
                m = len(t)
                p = a[None] + (b - a)[None] * t[:, None] + rng.normal(0, cv.px(0.7), (m, 2))
                rad = rng.uniform(1.6, 2.8, m) if dense else rng.uniform(2.5, 5.0, m)
                hgt = rng.uniform(3, 6, m) if dense else rng.uniform(8, 20, m)
                trees.add(p[:, 0], p[:, 1], rad, hgt, tree_colours(rng, m, (56, 78, 40), 0.16))


def _woods(cv: Canvas, polys, trees: Trees) -> None:
    rng = cv.rng
    for f in polys:
        x0, y0, x1, y1 = f.bounds
        step = cv.px(rng.uniform(3.8, 5.0))
        gx, gy = np.meshgrid(np.arange(x0, x1, step), np.arange(y0, y1, step))
        x = gx.ravel() + rng.uniform(-step / 2, step / 2, gx.size)
        y = gy.ravel() + rng.uniform(-step / 2, step / 2, gx.size)
        inside = contains_xy(f, x, y) & (rng.random(gx.size) < 0.9)
        x, y = x[inside], y[inside]
        n = len(x)
        conifer = rng.random() < 0.4
        cone = rng.random(n) < (0.8 if conifer else 0.08)
        base = (44, 66, 40) if conifer else (58, 80, 42)
        trees.add(x, y, rng.uniform(2.3, 4.5, n), rng.uniform(12, 26, n), tree_colours(rng, n, base, 0.15), cone)


def _orchards(cv: Canvas, polys, trees: Trees) -> None:
    rng = cv.rng
    for f in polys:
        c = np.array(f.centroid.coords[0])
        ang = rng.uniform(0, np.pi)
        sp_a, sp_b = cv.px(rng.uniform(6, 9)), cv.px(rng.uniform(4, 6))
        r = np.hypot(f.bounds[2] - f.bounds[0], f.bounds[3] - f.bounds[1])
        ia, ib = np.meshgrid(np.arange(-r / sp_a, r / sp_a), np.arange(-r / sp_b, r / sp_b))
        ea = np.array([np.cos(ang), np.sin(ang)])
        eb = np.array([-ea[1], ea[0]])
        p = c + ia.ravel()[:, None] * sp_a * ea + ib.ravel()[:, None] * sp_b * eb
        inside = contains_xy(f.buffer(-cv.px(3)), p[:, 0], p[:, 1]) & (rng.random(len(p)) < 0.93)
        p = p[inside]
        n = len(p)
        trees.add(p[:, 0], p[:, 1], rng.uniform(1.6, 2.4, n), rng.uniform(3.5, 5.5, n),
                  tree_colours(rng, n, (70, 94, 48), 0.1))


def _farmsteads(cv: Canvas, dm, roads, wm, hm) -> tuple[list, list, list]:
    """Farmyards next to roads: farmhouse, barns, sheds, silos, yard trees and an access track."""
    rng = cv.rng
    buildings: list[Building] = []
    silos = []
    out = []
    n = max(1, round(wm * hm / 1e6 * rng.uniform(1.2, 2.5)))
    cands = [r for r in roads if r.kind == "asphalt"] or roads
    placed: list[np.ndarray] = []
    for _ in range(8 * n):
        if len(placed) >= n:
            break
        r = cands[int(rng.integers(len(cands)))]
        p, t = resample_polyline(r.pts, cv.px(20))
        ok = np.flatnonzero(cv.inside(p[:, 0], p[:, 1], cv.px(60)))
        if len(ok) == 0:
            continue
        i = int(ok[rng.integers(len(ok))])
        nrm = np.array([-t[i, 1], t[i, 0]]) * rng.choice([-1, 1])
        dist = rng.uniform(35, 80)
        c = p[i] + nrm * cv.px(dist)
        if not cv.inside(c[0], c[1], cv.px(40)) or any(np.hypot(*(c - q)) < cv.px(250) for q in placed):
            continue
        placed.append(c)
        ang = float(np.arctan2(t[i, 1], t[i, 0])) + rng.normal(0, 0.1)
        yl, yd = rng.uniform(60, 100), rng.uniform(50, 80)
        yard = rect_corners(c[0], c[1], cv.px(yl), cv.px(yd), ang)
        dm.polygon(pil_xy(yard), fill=int(M.DIRT))
        inner = rect_corners(c[0], c[1], cv.px(yl * 0.6), cv.px(yd * 0.5), ang)
        dm.polygon(pil_xy(inner), fill=int(M.PAVED))
        # access track to the road
        a = c - nrm * cv.px(yd / 2)
        dm.line(pil_xy(np.array([p[i], a])), fill=int(M.DIRT), width=max(2, int(cv.px(4))))
        ea = np.array([np.cos(ang), np.sin(ang)])
        eb = np.array([-ea[1], ea[0]])
        # farmhouse near the road side, barns behind
        hc = c + ea * cv.px(rng.uniform(-0.3, 0.3) * yl) - eb * cv.px(yd * 0.3)
        buildings.append(Building([Part(hc[0], hc[1], rng.uniform(12, 17), rng.uniform(9, 11), ang,
                                        rng.uniform(8, 10), "gable")],
                                  pick_colour(rng, PITCHED_ROOFS, p=[.35, .25, .15, .15, .05, .05, 0]),
                                  pick_colour(rng, np.array([(222, 212, 188), (236, 234, 228), (196, 182, 156)],
                                                            np.float32)), None, 0.7))
        # barns in a row behind the house, along the yard's long axis
        pos = -yl / 2 + rng.uniform(3, 8)
        for _ in range(int(rng.integers(1, 4))):
            bl, bw = rng.uniform(18, 45), rng.uniform(12, 22)
            if pos + bl > yl / 2 - 3:
                break
            bc = c + ea * cv.px(pos + bl / 2) + eb * cv.px(yd / 2 - bw / 2 - rng.uniform(3, 8))
            pos += bl + rng.uniform(5, 12)
            buildings.append(Building([Part(bc[0], bc[1], bl, bw, ang, rng.uniform(7, 12), "gable")],
                                      pick_colour(rng, BARN_ROOFS), pick_colour(rng, BARN_ROOFS), None, 0.7,
                                      pitch_deg=rng.uniform(14, 22)))
        for j in range(int(rng.integers(0, 3))):
            sc = c + ea * cv.px(yl * 0.42) + eb * cv.px(rng.uniform(-0.3, 0.3) * yd + j * 8)
            silos.append((sc[0], sc[1], rng.uniform(2.5, 3.5), rng.uniform(10, 16),
                          np.array((190, 192, 194), np.float32) * rng.uniform(0.8, 1.05)))
        # yard trees on the far side of the house
        m = int(rng.integers(3, 9))
        tp = hc[None] + (ea[None] * rng.uniform(-30, 30, (m, 1)) - eb[None] * rng.uniform(8, 20, (m, 1))) / cv.res
        out.append((tp[:, 0], tp[:, 1], rng.uniform(3, 6, m), rng.uniform(9, 18, m), tree_colours(rng, m)))
    return buildings, silos, out
