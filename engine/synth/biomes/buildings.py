"""Buildings: rectangular parts with flat, gable or hip roofs and roof details; round silos and tanks."""
from __future__ import annotations

from dataclasses import dataclass
from math import ceil, cos, floor, radians, sin, tan

import numpy as np

from engine.synth.biomes.canvas import Canvas
from engine.synth.biomes.palettes import GLASS
from engine.synth.world import Material as M


def stamp_building(cv: Canvas, cx: float, cy: float, length: float, width: float, angle: float,
                   height: float, roof: str, roof_rgb: np.ndarray, wall_rgb: np.ndarray, *,
                   obj_id: int = 0, base: float | None = None, min_fill: float = 0.8,
                   allow: np.ndarray | None = None, pitch_deg: float = 32.0, details: bool = True,
                   max_height: float = 60.0) -> tuple[int, float]:
    """Stamp a rectangular building (or one part of a building when `obj_id` is given).

    roof: 'flat', 'gable' (ridge along the length) or 'hip'. `height` is the top of the roof above the pad.
    The pad (terrain under the footprint) is levelled to `base` (default: mean terrain there).
    Cells that are reserved, taken by another object or not in `allow` are left out; when less than
    `min_fill` of the footprint remains the building is skipped. Returns (id, base) or (0, 0).
    """
    res = cv.res
    lp, wp = length / res, width / res
    ca, sa = cos(angle), sin(angle)
    ex = 0.5 * (abs(ca) * lp + abs(sa) * wp) + 1
    ey = 0.5 * (abs(sa) * lp + abs(ca) * wp) + 1
    h_, w_ = cv.shape
    c0, c1 = max(floor(cx - ex), 0), min(ceil(cx + ex), w_)
    r0, r1 = max(floor(cy - ey), 0), min(ceil(cy + ey), h_)
    if c1 - c0 < 2 or r1 - r0 < 2:
        return 0, 0.0
    win = (slice(r0, r1), slice(c0, c1))
    dx = (np.arange(c0, c1, dtype=np.float32) + 0.5 - cx)[None, :]
    dy = (np.arange(r0, r1, dtype=np.float32) + 0.5 - cy)[:, None]
    u = (dx * ca + dy * sa) * res
    v = (-dx * sa + dy * ca) * res
    inside = (np.abs(u) <= length / 2) & (np.abs(v) <= width / 2)
    n_in = int(inside.sum())
    if n_in < 4:
        return 0, 0.0
    oid = cv.object_id[win]
    free = ~cv.reserved[win] & ((oid == 0) | (oid == obj_id) if obj_id else (oid == 0))
    if allow is not None:
        free &= allow[win]
    mask = inside & free
    if mask.sum() < min_fill * n_in:
        return 0, 0.0
    if not obj_id:
        obj_id = int(cv.new_ids(1)[0])
        cv.n_buildings += 1
    terr = cv.terrain[win]
    if base is None:
        base = float(terr[mask].mean())
    rng = cv.rng
    height = float(min(height, max_height))

    # roof shape (height above pad) and per-face shading
    shade = np.ones(u.shape, np.float32)
    if roof in ("gable", "hip"):
        half = width / 2
        rise = min(half * tan(radians(pitch_deg)), max(height - 2.5, 0.5))
        eave = height - rise
        across = 1 - np.abs(v) / half
        if roof == "hip":
            along = (length / 2 - np.abs(u)) / half
            slope = np.clip(np.minimum(across, along), 0, 1)
            end_face = along < across
            shade = np.where(end_face, np.where(u > 0, 1.0, 0.88), np.where(v > 0, 1.06, 0.9))
        else:
            slope = np.clip(across, 0, 1)
            shade = np.where(v > 0, 1.06, 0.9)
        top = eave + rise * slope
        shade = shade.astype(np.float32)
        shade[np.abs(v) < 0.35] *= 1.12                                 # ridge cap
        edge = (np.abs(v) > half - 0.4) | (np.abs(u) > length / 2 - 0.4)
        shade[edge] *= 0.85                                               # gutters / eaves
    else:
        top = np.full(u.shape, height, np.float32)
        edge = (np.abs(v) > width / 2 - 0.5) | (np.abs(u) > length / 2 - 0.5)
        parapet = edge & (min(length, width) > 6)
        shade[parapet] = 1.1
        top = np.where(parapet, min(height + 0.6, max_height), top)
    top = top.astype(np.float32)

    tex = cv.tex[win]
    col = roof_rgb[None, None, :] * (shade * (1 + 0.05 * tex + 0.05 * (rng.random(u.shape, np.float32) - 0.5))
                                     )[..., None]
    if details and roof == "flat" and min(length, width) > 7:
        _flat_roof_details(cv, u, v, length, width, height, top, col, max_height)
    elif details and roof in ("gable", "hip") and length > 6 and width > 4 and rng.random() < 0.35:
        # skylights / dormers: small dark rectangles on one slope
        for _ in range(rng.integers(1, 4)):
            su = rng.uniform(-length / 2 + 1.5, length / 2 - 1.5)
            sv = rng.choice([-1, 1]) * rng.uniform(0.25, 0.55) * width / 2
            box_m = (np.abs(u - su) < 0.6) & (np.abs(v - sv) < 0.5)
            col[box_m] = GLASS * 1.4
    if roof == "flat" and details and rng.random() < 0.03 and 10 < min(length, width) and length * width < 1500:
        _solar_panels(cv, u, v, length, width, col)

    ter = cv.terrain[win]
    ter[mask] = base
    cv.raised[win][mask] = top[mask]
    cv.material[win][mask] = M.ROOF
    cv.object_id[win][mask] = obj_id
    cv.wall[win][mask] = np.clip(wall_rgb * rng.uniform(0.95, 1.05), 0, 255).astype(np.uint8)
    cv.albedo[win][mask] = np.clip(col[mask], 0, 255)
    cv.max_building_m = max(cv.max_building_m, float(top[mask].max()))
    return obj_id, base


def _flat_roof_details(cv: Canvas, u, v, length, width, height, top, col, max_height) -> None:
    """AC units, vents and a stair housing on a flat roof (raised boxes with light/dark colours)."""
    rng = cv.rng
    area = length * width
    n = int(min(rng.poisson(area / 180.0) + 1, 14))
    for k in range(n):
        if k == 0 and area > 400 and rng.random() < 0.6:
            bl, bw, bh = rng.uniform(3, 6), rng.uniform(3, 5), 2.4          # stair / lift housing
            c = np.array((150, 150, 146), np.float32)
        else:
            bl, bw, bh = rng.uniform(1.0, 3.0), rng.uniform(1.0, 2.2), rng.uniform(0.8, 1.6)
            c = np.array((196, 198, 198), np.float32) * rng.uniform(0.85, 1.05)
        if length - bl < 3 or width - bw < 3:
            continue
        su = rng.uniform(-length / 2 + bl / 2 + 1, length / 2 - bl / 2 - 1)
        sv = rng.uniform(-width / 2 + bw / 2 + 1, width / 2 - bw / 2 - 1)
        m = (np.abs(u - su) < bl / 2) & (np.abs(v - sv) < bw / 2)
        top[m] = min(height + bh, max_height)
        col[m] = c
        # dark rim on the south-east side of the box reads as a small shadow at 0.5 m/px
        rim = (np.abs(u - su - 0.5) < bl / 2) & (np.abs(v - sv - 0.5) < bw / 2) & ~m
        col[rim] *= 0.7


def _solar_panels(cv: Canvas, u, v, length, width, col) -> None:
    rows = np.floor((v + width / 2 - 1.5) / 2.2)
    band = ((v + width / 2 - 1.5) % 2.2) < 1.6
    m = band & (rows >= 0) & (np.abs(u) < length / 2 - 1.5) & (np.abs(v) < width / 2 - 1.5)
    col[m] = np.array((52, 60, 78), np.float32) * (1 + 0.08 * ((u[m] // 1.0) % 2))[:, None]


@dataclass
class Part:
    """One rectangular part of a building, in cell coordinates (centre) and metres (sizes)."""

    cx: float
    cy: float
    length: float
    width: float
    angle: float
    height: float
    roof: str = "flat"
    roof_rgb: np.ndarray | None = None      # None: the building's roof colour


@dataclass
class Building:
    parts: list[Part]
    roof_rgb: np.ndarray
    wall_rgb: np.ndarray
    allow: np.ndarray | None = None         # cells it may occupy (e.g. its district)
    min_fill: float = 0.8
    pitch_deg: float = 32.0


def stamp_buildings(cv: Canvas, buildings: list[Building], max_height: float = 60.0) -> int:
    """Stamp buildings part by part (later parts of a building may rise above earlier ones)."""
    n = 0
    for b in buildings:
        oid, base = 0, None
        for k, p in enumerate(b.parts):
            got, got_base = stamp_building(
                cv, p.cx, p.cy, p.length, p.width, p.angle, p.height, p.roof,
                b.roof_rgb if p.roof_rgb is None else p.roof_rgb, b.wall_rgb, obj_id=oid, base=base,
                min_fill=b.min_fill if k == 0 else 0.3, allow=b.allow, pitch_deg=b.pitch_deg,
                max_height=max_height)
            if k == 0:
                if not got:
                    break
                oid, base = got, got_base
                n += 1
    return n


def stamp_round_building(cv: Canvas, cx: float, cy: float, radius: float, height: float,
                         roof_rgb: np.ndarray, wall_rgb: np.ndarray) -> int:
    """A silo or round tank: a shallow cone roof."""
    r = cv.px(radius)
    h_, w_ = cv.shape
    c0, c1 = max(int(cx - r - 1), 0), min(int(cx + r + 2), w_)
    r0, r1 = max(int(cy - r - 1), 0), min(int(cy + r + 2), h_)
    if c1 - c0 < 2 or r1 - r0 < 2:
        return 0
    win = (slice(r0, r1), slice(c0, c1))
    dx = np.arange(c0, c1) + 0.5 - cx
    dy = (np.arange(r0, r1) + 0.5 - cy)[:, None]
    rr = np.hypot(dx, dy) / r
    mask = (rr <= 1) & ~cv.reserved[win] & (cv.object_id[win] == 0)
    if mask.sum() < 4:
        return 0
    oid = int(cv.new_ids(1)[0])
    cv.n_buildings += 1
    base = float(cv.terrain[win][mask].mean())
    top = height - 1.5 * rr
    shade = 1.05 - 0.2 * (dx[None, :] + dy) / (r * 1.5)
    cv.terrain[win][mask] = base
    cv.raised[win][mask] = top[mask]
    cv.material[win][mask] = M.ROOF
    cv.object_id[win][mask] = oid
    cv.wall[win][mask] = wall_rgb.astype(np.uint8)
    cv.albedo[win][mask] = np.clip(roof_rgb * shade[mask][:, None], 0, 255)
    cv.max_building_m = max(cv.max_building_m, float(height))
    return oid
