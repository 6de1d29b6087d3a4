"""District styles of the urban biome and the fillers that build one city block in each: perimeter blocks,
rows, towers on podiums, big boxes, parking lots, parks and plazas."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine.synth.biomes.buildings import Building, Part
from engine.synth.biomes.canvas import pil_xy
from engine.synth.biomes.palettes import FACADES, FLAT_ROOF_P, FLAT_ROOFS, PITCHED_ROOFS, pick_colour
from engine.synth.biomes.roads import parking_lot
from engine.synth.biomes.trees import tree_colours
from engine.synth.world import Material as M


@dataclass(frozen=True)
class Style:
    """How one kind of district looks: street grid, building heights, roofs and the mix of block kinds."""

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


def _paved_plaza(cv, dm, fr, rect, plazas, joint_spacing_m: tuple[float, float]) -> None:
    """Pave the whole block; its paving joints are drawn later, spaced as drawn from `joint_spacing_m`."""
    _ground(dm, fr, rect, M.PAVED)
    plazas.append((fr, rect, cv.rng.uniform(*joint_spacing_m)))


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
    _paved_plaza(cv, dm, fr, rect, plazas, (3.0, 6.0))
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
    _paved_plaza(cv, dm, fr, rect, plazas, (2.0, 5.0))
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
