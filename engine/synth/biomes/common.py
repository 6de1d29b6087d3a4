"""Shared machinery of the biome generators: the working canvas, road rasterisation and markings, cars,
building stamping with roof details, vectorised tree stamping, ground colouring and finishing.

Coordinates inside the generators are cell coordinates: x = column, y = row (y grows southward), cell centres
at +0.5. Lengths handed to helpers are metres unless the name ends in `_px`.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from math import ceil, cos, floor, radians, sin, tan

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage as ndi
from shapely import MultiPoint, Point, Polygon, box, voronoi_polygons

from engine.synth.noise import Fbm, auto_step, fbm, grain, upsample
from engine.synth.world import Material

M = Material

# ---------------------------------------------------------------------------------------------- palettes
#: Ground colours as seen from above: (colour A, colour B, mid-scale variation, per-cell grain).
#: A and B are mixed by a large-scale noise field, the rest multiplies brightness.
GROUND_PALETTE: dict[int, tuple[tuple[int, int, int], tuple[int, int, int], float, float]] = {
    M.GRASS: ((84, 104, 56), (126, 130, 80), 0.10, 0.08),
    M.ROAD: ((76, 78, 80), (102, 102, 100), 0.06, 0.11),
    M.PAVED: ((148, 145, 137), (182, 178, 168), 0.05, 0.08),
    M.DIRT: ((128, 108, 82), (164, 144, 112), 0.09, 0.09),
    M.FIELD: ((118, 128, 70), (170, 160, 100), 0.08, 0.06),
    M.GARDEN: ((74, 112, 50), (108, 136, 66), 0.09, 0.09),
    M.SAND: ((204, 190, 156), (228, 214, 182), 0.04, 0.05),
    M.ROCK: ((112, 106, 98), (158, 150, 136), 0.12, 0.12),
    M.WATER: ((26, 56, 76), (40, 74, 92), 0.03, 0.02),
    M.ROOF: ((120, 120, 120), (140, 140, 140), 0.05, 0.05),
    M.TREE: ((50, 72, 38), (70, 90, 46), 0.10, 0.10),
}

#: Flat roofs: tar, gravel, concrete, white membrane, dark membrane, rusty/metal, green roof.
FLAT_ROOFS = np.array([(96, 96, 98), (138, 134, 126), (160, 158, 152), (206, 206, 202), (70, 72, 76),
                       (118, 110, 100), (176, 172, 160), (92, 108, 70)], np.float32)
FLAT_ROOF_P = np.array([0.18, 0.2, 0.2, 0.16, 0.1, 0.06, 0.07, 0.03])
#: Pitched roofs: terracotta, dark red tile, brown, dark grey shingle, slate, light grey, green metal.
PITCHED_ROOFS = np.array([(168, 86, 62), (132, 64, 52), (112, 84, 66), (78, 78, 82), (92, 96, 106),
                          (150, 148, 144), (82, 104, 88)], np.float32)
#: Facades: beige, cream, white, light grey, brick, dark brick, concrete, glass blue, sand.
FACADES = np.array([(196, 182, 156), (222, 212, 188), (236, 234, 228), (176, 176, 172), (156, 86, 64),
                    (118, 70, 56), (150, 148, 142), (112, 138, 160), (204, 170, 124)], np.float32)
#: Car paints, weighted like real traffic (white, black, greys dominate).
CAR_COLOURS = np.array([(226, 226, 224), (34, 34, 38), (172, 174, 178), (112, 114, 118), (146, 30, 32),
                        (36, 58, 118), (26, 40, 70), (196, 184, 150), (60, 90, 60), (210, 170, 40)],
                       np.float32)
CAR_P = np.array([0.25, 0.2, 0.16, 0.14, 0.08, 0.06, 0.04, 0.03, 0.02, 0.02])
GLASS = np.array((28, 34, 42), np.float32)
#: Paint layer codes: colour and blend weight range (1 white paint, 2 yellow paint, 3 paving joints,
#: 4 light paving, 5 sports-field lines).
MARKING_COLOURS = {1: ((226, 226, 220), 0.6, 0.92), 2: ((214, 182, 60), 0.6, 0.92),
                   3: ((96, 94, 90), 0.3, 0.45), 4: ((214, 210, 200), 0.35, 0.5), 5: ((236, 236, 232), 0.7, 0.9)}


def pick_colour(rng: np.random.Generator, table: np.ndarray, p: np.ndarray | None = None,
                jitter: float = 0.08) -> np.ndarray:
    """A palette colour with per-object brightness and tint jitter."""
    c = table[rng.choice(len(table), p=p)]
    return np.clip(c * rng.uniform(1 - jitter, 1 + jitter) * rng.uniform(0.97, 1.03, 3), 0, 255)


# ---------------------------------------------------------------------------------------------- canvas
class Canvas:
    """Mutable working state of one world being generated."""

    def __init__(self, rng: np.random.Generator, shape: tuple[int, int], resolution_m: float):
        self.rng = rng
        self.shape = shape
        self.res = float(resolution_m)
        h, w = shape
        self.terrain = np.zeros(shape, np.float32)
        self.raised = np.zeros(shape, np.float32)           # height of buildings/trees above terrain
        self.material = np.full(shape, M.GRASS, np.uint8)
        self.albedo: np.ndarray | None = None               # float32 (H, W, 3) once the ground is painted
        self.wall = np.zeros((h, w, 3), np.uint8)
        self.object_id = np.zeros(shape, np.int32)
        self.reserved = np.zeros(shape, bool)               # streets, water: nothing may be built there
        self.paint = Image.new("L", (w, h))                  # road markings: MARKING_COLOURS codes
        self.cars = Image.new("L", (w, h))                   # car body colour index + 1, 255 glass
        self._next_id = 1
        self._tex: np.ndarray | None = None
        self.n_buildings = 0
        self.n_trees = 0
        self.max_building_m = 0.0

    # -- units and ids
    def px(self, metres: float | np.ndarray) -> float | np.ndarray:
        return metres / self.res

    def new_ids(self, n: int) -> np.ndarray:
        ids = np.arange(self._next_id, self._next_id + n, dtype=np.int32)
        self._next_id += n
        return ids

    @property
    def tex(self) -> np.ndarray:
        """Shared small-scale texture field (~1-3 m blobs), unit std; used for foliage, roofs, lawns."""
        if self._tex is None:
            self._tex = fbm(self.rng, self.shape, self.px(3.0), octaves=2)
        return self._tex

    def noise(self, scale_m: float, octaves: int = 4, persistence: float = 0.5) -> np.ndarray:
        """A fresh fractal noise raster over the world, features up to `scale_m`."""
        field = Fbm(self.rng, self.shape, self.px(scale_m), octaves, persistence)
        return field.raster(self.shape, auto_step(field.finest))

    # -- PIL drawing onto numpy layers
    @contextmanager
    def draw(self, layer: str):
        """ImageDraw on one of the canvas rasters ('material' or 'reserved'); written back on exit."""
        arr = getattr(self, layer)
        img = Image.fromarray(arr.view(np.uint8) if arr.dtype == bool else arr)
        yield ImageDraw.Draw(img)
        out = np.asarray(img)
        setattr(self, layer, out.astype(bool) if arr.dtype == bool else out.copy())

    def inside(self, x: np.ndarray, y: np.ndarray, margin_px: float = 0.0) -> np.ndarray:
        x, y = np.asarray(x), np.asarray(y)
        return ((x >= margin_px) & (x < self.shape[1] - margin_px)
                & (y >= margin_px) & (y < self.shape[0] - margin_px))


def pil_xy(pts: np.ndarray) -> list[tuple[float, float]]:
    """Cell coordinates (centres at +0.5) -> PIL coordinates (centres at integers)."""
    p = np.asarray(pts, np.float64) - 0.5
    return [(float(a), float(b)) for a, b in p]


# ---------------------------------------------------------------------------------------------- geometry
def rect_corners(cx: float, cy: float, length_px: float, width_px: float, angle: float) -> np.ndarray:
    """Corners (4, 2) of a rectangle centred at (cx, cy), `length` along direction `angle` (radians)."""
    ca, sa = cos(angle), sin(angle)
    u = np.array([ca, sa]) * length_px / 2
    v = np.array([-sa, ca]) * width_px / 2
    c = np.array([cx, cy])
    return np.array([c - u - v, c + u - v, c + u + v, c - u + v])


def polyline_normals(pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit tangents and left normals at the vertices of a polyline (N, 2)."""
    d = np.gradient(pts, axis=0) if len(pts) > 2 else np.repeat(pts[1:] - pts[:1], len(pts), axis=0)
    t = d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-9)
    return t, np.stack([-t[:, 1], t[:, 0]], axis=1)


def offset_polyline(pts: np.ndarray, d: float) -> np.ndarray:
    _, n = polyline_normals(pts)
    return pts + n * d


def resample_polyline(pts: np.ndarray, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Points every `step` along the polyline, and their unit tangents."""
    seg = np.diff(pts, axis=0)
    seg_len = np.linalg.norm(seg, axis=1)
    cum = np.concatenate([[0.0], np.cumsum(seg_len)])
    if cum[-1] <= 0:
        return pts[:1], np.array([[1.0, 0.0]])
    s = np.arange(0.0, cum[-1], step)
    x = np.interp(s, cum, pts[:, 0])
    y = np.interp(s, cum, pts[:, 1])
    k = np.clip(np.searchsorted(cum, s, side="right") - 1, 0, len(seg) - 1)
    t = seg[k] / np.maximum(seg_len[k], 1e-9)[:, None]
    return np.stack([x, y], axis=1), t


def dashes(pts: np.ndarray, dash: float, gap: float, phase: float = 0.0) -> list[np.ndarray]:
    """Split a polyline into dash pieces (each a (k, 2) polyline) of length `dash` every dash+gap."""
    seg_len = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    cum = np.concatenate([[0.0], np.cumsum(seg_len)])
    out = []
    period = dash + gap
    start = phase % period - period
    while start < cum[-1]:
        a, b = max(start, 0.0), min(start + dash, cum[-1])
        if b > a:
            inner = cum[(cum > a) & (cum < b)]
            s = np.concatenate([[a], inner, [b]])
            out.append(np.stack([np.interp(s, cum, pts[:, 0]), np.interp(s, cum, pts[:, 1])], axis=1))
        start += period
    return out


class Frame:
    """District frame: local metres (u along the grid angle, v across) <-> cell coordinates."""

    def __init__(self, origin_px: np.ndarray, angle: float, res: float):
        self.o = np.asarray(origin_px, float)
        self.angle = angle
        self.eu = np.array([np.cos(angle), np.sin(angle)]) / res
        self.ev = np.array([-np.sin(angle), np.cos(angle)]) / res
        self.res = res

    def px(self, u, v) -> np.ndarray:
        u, v = np.asarray(u, float), np.asarray(v, float)
        return self.o + u[..., None] * self.eu + v[..., None] * self.ev

    def local(self, pts: np.ndarray) -> np.ndarray:
        d = (np.asarray(pts, float) - self.o) * self.res
        return np.stack([d @ (self.eu * self.res), d @ (self.ev * self.res)], axis=-1)

    def rect(self, u0, u1, v0, v1) -> np.ndarray:
        return self.px(np.array([u0, u1, u1, u0]), np.array([v0, v0, v1, v1]))


def densify(pts: np.ndarray, step: float) -> np.ndarray:
    """Polyline resampled every `step` (cells), keeping both end points."""
    p, _ = resample_polyline(pts, step)
    if len(p) == 0 or np.hypot(*(p[-1] - pts[-1])) > 1e-6:
        p = np.vstack([p, pts[-1:]])
    return p


class Warp:
    """Smooth displacement of vector geometry (cells): straight lines become gently curving roads."""

    def __init__(self, cv: Canvas, amplitude_m: float, scale_m: float, margin_m: float = 400.0):
        self.fx = Fbm(cv.rng, cv.shape, cv.px(scale_m), 2, 0.35, margin=cv.px(margin_m))
        self.fy = Fbm(cv.rng, cv.shape, cv.px(scale_m), 2, 0.35, margin=cv.px(margin_m))
        self.a = cv.px(amplitude_m)

    def __call__(self, pts: np.ndarray) -> np.ndarray:
        pts = np.asarray(pts, float)
        x, y = pts[..., 0], pts[..., 1]
        return pts + self.a * np.stack([self.fx.at(x, y), self.fy.at(x, y)], axis=-1)


def voronoi_districts(rng: np.random.Generator, width: float, height: float, n: int,
                      min_gap: float) -> tuple[list[Polygon], np.ndarray]:
    """`n` Voronoi districts over the box [0, width] x [0, height]; seeds kept at least `min_gap` apart."""
    seeds: list[np.ndarray] = []
    for _ in range(200):
        if len(seeds) == n:
            break
        p = rng.uniform([0.1 * width, 0.1 * height], [0.9 * width, 0.9 * height])
        if all(np.hypot(*(p - s)) >= min_gap for s in seeds):
            seeds.append(p)
    pts = np.array(seeds)
    world = box(0, 0, width, height)
    if len(pts) < 2:
        return [world], pts[:1]
    cells = list(voronoi_polygons(MultiPoint(pts), extend_to=world).geoms)
    polys = []
    for p in pts:      # voronoi_polygons does not keep the input order
        cell = next(c for c in cells if c.contains(Point(p)))
        polys.append(cell.intersection(world))
    return polys, pts


def district_raster(shape: tuple[int, int], seeds: np.ndarray) -> np.ndarray:
    """Nearest-seed district index per cell (matches voronoi_districts)."""
    h, w = shape
    ys = np.arange(h, dtype=np.float32)[:, None] + 0.5
    xs = np.arange(w, dtype=np.float32)[None, :] + 0.5
    best = np.full(shape, np.inf, np.float32)
    out = np.zeros(shape, np.uint8)
    for k, (sx, sy) in enumerate(seeds):
        d = (xs - np.float32(sx)) ** 2 + (ys - np.float32(sy)) ** 2
        closer = d < best
        best = np.where(closer, d, best)
        out[closer] = k
    return out


# ---------------------------------------------------------------------------------------------- roads
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


# ---------------------------------------------------------------------------------------------- buildings
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


class Trees:
    """Collects trees from a layout and stamps them in one vectorised pass."""

    def __init__(self) -> None:
        self.cols: list[tuple[np.ndarray, ...]] = []

    def add(self, x, y, radius_m, height_m, colour, conical=False) -> None:
        x = np.atleast_1d(np.asarray(x, np.float64))
        n = len(x)
        if n == 0:
            return
        y = np.atleast_1d(np.asarray(y, np.float64))
        r = np.broadcast_to(np.asarray(radius_m, np.float64), (n,)).copy()
        h = np.broadcast_to(np.asarray(height_m, np.float64), (n,)).copy()
        c = np.broadcast_to(np.asarray(colour, np.float32).reshape(-1, 3), (n, 3)).copy()
        k = np.broadcast_to(np.asarray(conical, bool), (n,)).copy()
        self.cols.append((x, y, r, h, c, k))

    def __len__(self) -> int:
        return sum(len(c[0]) for c in self.cols)

    def stamp(self, cv: Canvas, forbid: tuple = (M.ROOF, M.WATER, M.ROAD)) -> int:
        """Stamp all trees whose trunk is inside the world and not on a `forbid` material."""
        if not self.cols:
            return 0
        x, y, r, h, c, k = (np.concatenate(a) for a in zip(*self.cols))
        ok = cv.inside(x, y)
        xi = np.clip(x.astype(int), 0, cv.shape[1] - 1)
        yi = np.clip(y.astype(int), 0, cv.shape[0] - 1)
        ok &= ~np.isin(cv.material[yi, xi], np.array(forbid, np.uint8))
        return stamp_trees(cv, x[ok], y[ok], r[ok], h[ok], c[ok], k[ok])


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


# ---------------------------------------------------------------------------------------------- trees
def tree_colours(rng: np.random.Generator, n: int, base: tuple[int, int, int] = (58, 80, 40),
                 spread: float = 0.18) -> np.ndarray:
    """Per-tree canopy colours around `base`: brightness, hue and autumn-ish variation."""
    b = np.asarray(base, np.float32)
    bright = rng.uniform(1 - spread, 1 + spread, (n, 1))
    tint = rng.normal(0, spread * 0.35, (n, 3)) + 1
    yellowish = rng.random(n) < 0.06
    c = b * bright * tint
    c[yellowish] *= np.array([1.25, 1.15, 0.9], np.float32)
    return np.clip(c, 0, 255).astype(np.float32)


def stamp_trees(cv: Canvas, x: np.ndarray, y: np.ndarray, radius_m: np.ndarray, height_m: np.ndarray,
                colour: np.ndarray, conical: np.ndarray | None = None) -> int:
    """Stamp tree canopies at once: dome (or cone) shaped crowns with lumpy outlines.

    Where crowns overlap the higher one wins (vectorised max over packed height-and-index keys); roofs are
    never covered, so every building keeps its full footprint. Returns the number of trees that are visible.
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    n = len(x)
    if n == 0:
        return 0
    h_, w_ = cv.shape
    radius_m = np.broadcast_to(np.asarray(radius_m, np.float64), (n,))
    height_m = np.broadcast_to(np.asarray(height_m, np.float64), (n,))
    conical = np.zeros(n, bool) if conical is None else np.broadcast_to(conical, (n,))
    rng = cv.rng
    rpx = radius_m / cv.res
    crown_depth = np.minimum(height_m * rng.uniform(0.45, 0.7, n), np.where(conical, height_m * 0.85,
                                                                            radius_m * 1.3))
    crown_base = height_m - crown_depth
    phase = rng.uniform(0, 2 * np.pi, n)
    lobes = rng.integers(4, 8, n)
    lump = rng.uniform(0.03, 0.09, n)
    tex = cv.tex.ravel()

    key = np.round(cv.raised * 100).astype(np.int64).ravel() << 32
    key[cv.material.ravel() == M.ROOF] = np.int64(1) << 62      # crowns never hide a building's roof (index bits 0)
    bucket = np.ceil(rpx * (1 + lump) * 1.15 + 1).astype(int)
    for b in np.unique(bucket):
        sel = np.flatnonzero(bucket == b)
        oy, ox = np.mgrid[-b:b + 1, -b:b + 1]
        ox, oy = ox.ravel(), oy.ravel()
        theta = np.arctan2(oy, ox)
        per = max(1, 3_000_000 // len(ox))
        for s in range(0, len(sel), per):
            k = sel[s:s + per]
            ix = np.floor(x[k]).astype(np.int64)
            iy = np.floor(y[k]).astype(np.int64)
            cols = ix[:, None] + ox[None, :]
            rows = iy[:, None] + oy[None, :]
            ok = (cols >= 0) & (cols < w_) & (rows >= 0) & (rows < h_)
            ddx = cols + 0.5 - x[k][:, None]
            ddy = rows + 0.5 - y[k][:, None]
            r2 = (ddx * ddx + ddy * ddy) / (rpx[k] ** 2)[:, None]
            r2 *= (1 + lump[k][:, None] * np.cos(lobes[k][:, None] * theta[None, :] + phase[k][:, None])) ** -2
            flat = np.where(ok, rows * w_ + cols, 0)
            r2 *= 1 + 0.22 * tex[flat]          # leafy, irregular crown edges
            ok &= r2 < 1
            r2 = r2[ok]
            kk = np.broadcast_to(k[:, None], ok.shape)[ok]
            dome = crown_base[kk] + crown_depth[kk] * np.sqrt(1 - r2)
            cone = crown_base[kk] + crown_depth[kk] * (1 - np.sqrt(r2))
            hrel = np.where(conical[kk], cone, dome)
            kv = (np.round(hrel * 100).astype(np.int64) << 32) | (kk + 1)
            np.maximum.at(key, flat[ok], kv)

    local = (key & 0xFFFFFFFF).astype(np.int64)
    cells = np.flatnonzero(local)
    if len(cells) == 0:
        return 0
    k = local[cells] - 1
    ids = cv.new_ids(n)
    rr, cc = np.divmod(cells, w_)
    r2 = ((cc + 0.5 - x[k]) ** 2 + (rr + 0.5 - y[k]) ** 2) / rpx[k] ** 2
    shade = 0.7 + 0.38 * np.sqrt(np.clip(1 - r2, 0, 1))
    leaf = 1 + 0.16 * cv.tex.ravel()[cells] + 0.12 * (rng.random(len(cells), np.float32) - 0.5)
    col = colour[k] * (shade * leaf)[:, None]
    hvals = (key[cells] >> 32).astype(np.float32) / 100
    cv.raised.ravel()[cells] = hvals
    cv.material.ravel()[cells] = M.TREE
    cv.object_id.ravel()[cells] = ids[k]
    cv.albedo.reshape(-1, 3)[cells] = np.clip(col, 0, 255)
    cv.wall.reshape(-1, 3)[cells] = np.clip(colour[k] * 0.78, 0, 255).astype(np.uint8)
    visible = len(np.unique(k))
    cv.n_trees += visible
    return visible


def scatter_points(rng: np.random.Generator, density: np.ndarray, n_max: int, res: float,
                   min_dist_m: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Sample up to n_max points with probability ∝ density (a raster in [0, 1]); optional thinning by a
    minimum distance on a coarse grid (one point per grid cell of that size)."""
    h, w = density.shape
    cand = n_max * 3
    xs = rng.uniform(0, w, cand)
    ys = rng.uniform(0, h, cand)
    keep = rng.random(cand) < density[ys.astype(int), xs.astype(int)]
    xs, ys = xs[keep], ys[keep]
    if min_dist_m > 0 and len(xs):
        g = max(min_dist_m / res, 1.0)
        cell = (ys // g).astype(np.int64) * (int(w / g) + 2) + (xs // g).astype(np.int64)
        _, first = np.unique(cell, return_index=True)
        first.sort()
        xs, ys = xs[first], ys[first]
    return xs[:n_max], ys[:n_max]


# ---------------------------------------------------------------------------------------------- colour
def paint_ground(cv: Canvas, palette: dict | None = None, mix: np.ndarray | None = None) -> None:
    """Colour every cell from its material: two-tone large-scale mix, mid-scale brightness, grain."""
    pal = dict(GROUND_PALETTE)
    if palette:
        pal.update(palette)
    levels = 32              # colour mix quantised into a (material, level) table: one lookup per cell
    lut = np.zeros((256, levels, 3), np.float32)
    mid = np.zeros(256, np.float32)
    grn = np.zeros(256, np.float32)
    frac = np.linspace(0, 1, levels, dtype=np.float32)[:, None]
    for m, (ca, cb, am, ag) in pal.items():
        ca, cb = np.asarray(ca, np.float32), np.asarray(cb, np.float32)
        lut[int(m)] = ca + (cb - ca) * frac
        mid[int(m)], grn[int(m)] = am, ag
    if mix is None:
        mix = cv.noise(60.0, octaves=3)
    level = np.clip((0.5 + 0.3 * mix) * (levels - 1) + 0.5, 0, levels - 1).astype(np.intp)
    mat = cv.material
    bright = 1 + mid[mat] * cv.noise(8.0, octaves=2) + grn[mat] * grain(cv.rng, cv.shape)
    alb = lut.reshape(-1, 3)[mat.astype(np.intp) * levels + level]
    alb *= bright[..., None]
    cv.albedo = alb


def apply_paint(cv: Canvas) -> None:
    """Road markings and cars onto the ground colours (call after paint_ground, before objects)."""
    paint = np.asarray(cv.paint)
    idx = np.flatnonzero(paint)
    alb = cv.albedo.reshape(-1, 3)
    walkable_under = ~np.isin(cv.material.ravel()[idx], (M.ROOF, M.TREE, M.WATER))
    idx = idx[walkable_under]
    codes = paint.ravel()[idx]
    for code, (colour, lo, hi) in MARKING_COLOURS.items():
        sel = idx[codes == code]
        wear = lo + (hi - lo) * cv.rng.random(len(sel), np.float32)
        alb[sel] = alb[sel] * (1 - wear[:, None]) + np.asarray(colour, np.float32) * wear[:, None]
    cars = np.asarray(cv.cars)
    idx = np.flatnonzero(cars)
    idx = idx[np.isin(cv.material.ravel()[idx], (M.ROAD, M.PAVED, M.DIRT))]
    codes = cars.ravel()[idx].astype(np.int64)
    body = np.where((codes == 255)[:, None], GLASS, CAR_COLOURS[np.clip(codes - 1, 0, len(CAR_COLOURS) - 1)])
    alb[idx] = body * (0.95 + 0.1 * cv.rng.random(len(idx), np.float32))[:, None]


def paint_pools(cv: Canvas, quads: list[np.ndarray], colour=(72, 172, 192)) -> None:
    """Swimming pools (quads already drawn as WATER): bright turquoise instead of the generic water colour."""
    img = Image.new("L", (cv.shape[1], cv.shape[0]))
    d = ImageDraw.Draw(img)
    for q in quads:
        d.polygon(pil_xy(q), fill=1)
    m = (np.asarray(img) > 0) & (cv.material == M.WATER)
    cv.albedo[m] = np.asarray(colour, np.float32) * (1 + 0.05 * cv.tex[m])[:, None]


def level_water(cv: Canvas, max_extent_m: float = 300.0) -> None:
    """Flat water surfaces: every pool, pond or lake smaller than `max_extent_m` gets one level (the lowest
    ground it covers). Long water bodies (streams) keep following the terrain; the sea is flat already."""
    water = cv.material == M.WATER
    if not water.any():
        return
    labels, _n = ndi.label(water)
    limit = cv.px(max_extent_m)
    for k, sl in enumerate(ndi.find_objects(labels), start=1):
        if sl is None or max(sl[0].stop - sl[0].start, sl[1].stop - sl[1].start) > limit:
            continue
        m = labels[sl] == k
        ter = cv.terrain[sl]
        ter[m] = ter[m].min()


def finish(cv: Canvas) -> dict[str, np.ndarray]:
    """Final arrays: height, uint8 colours (with sensor grain), wall colours for open ground."""
    level_water(cv)
    h = cv.terrain + cv.raised
    alb = cv.albedo
    g = 1 + 0.025 * grain(cv.rng, cv.shape)
    alb *= g[..., None]
    albedo = np.clip(alb, 0, 255).astype(np.uint8)
    ground = cv.object_id == 0
    wall = cv.wall
    # open ground: vertical faces are terrain steps (cliffs, embankments): darker soil/rock of the same hue
    wall[ground] = (albedo[ground].astype(np.uint16) * 3 // 4).astype(np.uint8)
    return {"terrain": cv.terrain.astype(np.float32), "height": h.astype(np.float32),
            "material": cv.material, "albedo": albedo, "wall_colour": wall, "object_id": cv.object_id}
