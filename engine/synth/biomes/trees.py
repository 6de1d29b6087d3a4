"""Trees: canopy colours, vectorised crown stamping, density-driven scattering."""
from __future__ import annotations

import numpy as np

from engine.synth.biomes.canvas import Canvas
from engine.synth.world import Material as M


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
