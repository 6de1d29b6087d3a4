"""Vector geometry of the layouts: rectangles, polylines and dashes, district frames, warps, Voronoi districts."""
from __future__ import annotations

from math import cos, sin

import numpy as np
from shapely import MultiPoint, Point, Polygon, box, voronoi_polygons

from engine.synth.biomes.canvas import Canvas
from engine.synth.noise import Fbm


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
