"""Roads: rasterised carriageways and sidewalks, markings, cars and parking lots, cut-and-fill grading."""
from __future__ import annotations

from dataclasses import dataclass
from math import cos, sin

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage as ndi

from engine.synth.biomes.canvas import Canvas, pil_xy
from engine.synth.biomes.geometry import dashes, densify, offset_polyline, rect_corners, resample_polyline
from engine.synth.biomes.palettes import CAR_COLOURS, CAR_P
from engine.synth.noise import upsample
from engine.synth.world import Material as M


@dataclass
class Road:
    """A road centre line (cell coordinates) and how it looks."""

    pts: np.ndarray
    width: float                 # carriageway width, m
    kind: str = "asphalt"        # 'asphalt' or 'dirt'
    sidewalk: float = 0.0        # paved sidewalk each side, m
    centre: str = "none"         # 'none', 'dashed', 'solid', 'double_yellow'
    lane_lines: bool = False     # dashed white lane dividers (multi-lane roads)
    edge_lines: bool = False     # solid white lines near the edges (rural/coastal roads)
    round_ends: bool = True

    @property
    def total_width(self) -> float:
        return self.width + 2 * self.sidewalk


def draw_roads(cv: Canvas, roads: list[Road]) -> None:
    """Rasterise roads: sidewalks (PAVED) first, then carriageways (ROAD / DIRT); all become reserved."""
    def _line(d, r: Road, width_m: float, fill: int) -> None:
        wpx = max(1, round(cv.px(width_m)))
        xy = pil_xy(r.pts)
        d.line(xy, fill=fill, width=wpx, joint="curve")
        if r.round_ends:
            rr = wpx / 2
            for x, y in (xy[0], xy[-1]):
                d.ellipse([x - rr, y - rr, x + rr, y + rr], fill=fill)

    with cv.draw("material") as d:
        for r in roads:
            if r.sidewalk > 0:
                _line(d, r, r.total_width, int(M.PAVED))
        for r in roads:
            _line(d, r, r.width, int(M.ROAD if r.kind == "asphalt" else M.DIRT))
    with cv.draw("reserved") as d:
        for r in roads:
            _line(d, r, r.total_width, 1)


def draw_markings(cv: Canvas, roads: list[Road]) -> None:
    """Centre lines, lane dividers and edge lines into the paint layer (drawn 1 cell wide)."""
    d = ImageDraw.Draw(cv.paint)
    for r in roads:
        if r.kind != "asphalt":
            continue
        p = r.pts
        if r.centre == "dashed":
            for piece in dashes(p, cv.px(3.0), cv.px(6.0)):
                d.line(pil_xy(piece), fill=1, width=1)
        elif r.centre == "solid":
            d.line(pil_xy(p), fill=1, width=1)
        elif r.centre == "double_yellow":
            for off in (-0.3, 0.3):
                d.line(pil_xy(offset_polyline(p, cv.px(off))), fill=2, width=1)
        if r.lane_lines:
            for off in (-r.width / 4, r.width / 4):
                for piece in dashes(offset_polyline(p, cv.px(off)), cv.px(3.0), cv.px(9.0)):
                    d.line(pil_xy(piece), fill=1, width=1)
        if r.edge_lines:
            for off in (-(r.width / 2 - 0.4), r.width / 2 - 0.4):
                d.line(pil_xy(offset_polyline(p, cv.px(off))), fill=1, width=1)


def draw_car(d: ImageDraw.ImageDraw, cv: Canvas, x: float, y: float, angle: float, colour_code: int,
             length: float = 4.5, width: float = 1.85) -> None:
    """A car seen from above: body plus windscreen and rear window (glass)."""
    lp, wp = cv.px(length) - 1, cv.px(width) - 1      # PIL fills the outline too: one cell smaller
    d.polygon(pil_xy(rect_corners(x, y, lp, wp, angle)), fill=colour_code)
    ca, sa = cos(angle), sin(angle)
    for frac, glen in ((0.18, 0.22), (-0.3, 0.13)):   # windscreen ahead of centre, rear window behind
        gx, gy = x + ca * lp * frac, y + sa * lp * frac
        d.polygon(pil_xy(rect_corners(gx, gy, lp * glen, wp * 0.8, angle)), fill=255)


def cars_along(cv: Canvas, pts: np.ndarray, offset_m: float, spacing_m: float, occupancy: float) -> None:
    """Parked or queued cars along a polyline at a lateral offset."""
    rng = cv.rng
    line = offset_polyline(pts, cv.px(offset_m))
    p, t = resample_polyline(line, cv.px(spacing_m))
    if len(p) < 3:
        return
    keep = rng.random(len(p)) < occupancy
    keep[[0, -1]] = False
    d = ImageDraw.Draw(cv.cars)
    codes = rng.choice(len(CAR_COLOURS), size=len(p), p=CAR_P) + 1
    jitter = rng.normal(0, cv.px(0.4), len(p))
    for k in np.flatnonzero(keep):
        ang = float(np.arctan2(t[k, 1], t[k, 0]))
        draw_car(d, cv, p[k, 0] + t[k, 0] * jitter[k], p[k, 1] + t[k, 1] * jitter[k], ang, int(codes[k]),
                 length=rng.uniform(4.1, 4.9))


def parking_lot(cv: Canvas, dm: ImageDraw.ImageDraw, cx: float, cy: float, length: float, depth: float,
                angle: float, occupancy: float, surface: int = M.ROAD) -> None:
    """A rectangular parking lot drawn with `dm` (material layer): asphalt, bays of stalls with white lines
    (two rows back to back around an aisle), parked cars."""
    rng = cv.rng
    lp, dp = cv.px(length), cv.px(depth)
    dm.polygon(pil_xy(rect_corners(cx, cy, lp, dp, angle)), fill=int(surface))
    ca, sa = cos(angle), sin(angle)
    u = np.array([ca, sa])
    v = np.array([-sa, ca])
    c = np.array([cx, cy])
    dpaint = ImageDraw.Draw(cv.paint)
    dcars = ImageDraw.Draw(cv.cars)
    stall_w, stall_d, aisle = cv.px(2.6), cv.px(5.0), cv.px(6.5)
    bay = 2 * stall_d + aisle
    n_bays = int((dp - cv.px(1.0)) // bay)
    n_st = int((lp - cv.px(2.0)) // stall_w)
    if n_bays < 1 or n_st < 1:
        return
    v_first = -n_bays * bay / 2
    us = (-n_st / 2 + np.arange(n_st + 1)) * stall_w
    for b in range(n_bays):
        for v0 in (v_first + b * bay, v_first + b * bay + stall_d + aisle):
            for uu in us:       # stall separator lines
                a = c + u * uu + v * v0
                dpaint.line(pil_xy(np.array([a, a + v * stall_d])), fill=1, width=1)
            for uu in us[:-1] + stall_w / 2:
                if rng.random() < occupancy:
                    p = c + u * uu + v * (v0 + stall_d / 2)
                    ang = angle + np.pi / 2 + (np.pi if rng.random() < 0.5 else 0) + rng.normal(0, 0.03)
                    draw_car(dcars, cv, p[0], p[1], ang, int(rng.choice(len(CAR_COLOURS), p=CAR_P) + 1),
                             length=rng.uniform(4.1, 4.9))


def level_roads(cv: Canvas, roads: list[Road], shoulder_m: float = 3.0, bank_m: float = 10.0) -> None:
    """Cut and fill: every road gets a surface that is level across and smooth along it, and the ground
    beside it is blended into that surface over `bank_m` (embankments and cuttings). Water is left alone."""
    if not roads:
        return
    h, w = cv.shape
    step = 4
    small = ndi.gaussian_filter(cv.terrain[::step, ::step], cv.px(6.0) / step, mode="nearest")
    zimg = Image.new("F", (w, h))
    wimg = Image.new("L", (w, h))
    dz, dw = ImageDraw.Draw(zimg), ImageDraw.Draw(wimg)
    for r in roads:
        p = densify(r.pts, cv.px(2.0))
        z = ndi.map_coordinates(small, [(p[:, 1] - step / 2) / step, (p[:, 0] - step / 2) / step], order=1,
                                mode="nearest")
        k = max(1, int(40.0 / 2.0))           # smooth the profile over ~80 m: gentle grades, cuts and fills
        z = np.convolve(np.pad(z, k, mode="edge"), np.ones(2 * k + 1) / (2 * k + 1), "valid")
        wpx = max(1, round(cv.px(r.total_width + 2 * shoulder_m)))
        xy = pil_xy(p)
        for i in range(len(p) - 1):
            seg = [xy[i], xy[i + 1]]
            dz.line(seg, fill=float(0.5 * (z[i] + z[i + 1])), width=wpx)
            dw.line(seg, fill=1, width=wpx)
    zarr = np.asarray(zimg, np.float32)
    warr = np.asarray(wimg).astype(np.float32)
    on = warr > 0
    if not on.any():
        return
    # normalised blurs: a fine one for the road surface, a coarse one to extend it under the banks
    num = ndi.gaussian_filter(zarr[::step, ::step] * warr[::step, ::step], cv.px(bank_m) / step)
    den = ndi.gaussian_filter(warr[::step, ::step], cv.px(bank_m) / step)
    ext = upsample((num / np.maximum(den, 1e-6)).astype(np.float32), cv.shape, step)
    bank = upsample(np.clip(den * 3.0, 0, 1).astype(np.float32), cv.shape, step)
    rows, cols = np.nonzero(on)
    r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    sig = cv.px(1.5)
    num_f = ndi.gaussian_filter(zarr[r0:r1, c0:c1] * warr[r0:r1, c0:c1], sig)
    den_f = ndi.gaussian_filter(warr[r0:r1, c0:c1], sig)
    surf = ext.copy()
    surf[r0:r1, c0:c1] = np.where(den_f > 0.05, num_f / np.maximum(den_f, 1e-6), ext[r0:r1, c0:c1])
    bank[on] = 1.0
    bank[cv.material == M.WATER] = 0.0
    cv.terrain += (surf - cv.terrain) * bank
