"""Ground colour from materials, road paint and cars laid over it, swimming pools."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from engine.synth.biomes.canvas import Canvas, pil_xy
from engine.synth.biomes.palettes import CAR_COLOURS, GLASS, GROUND_PALETTE, MARKING_COLOURS
from engine.synth.noise import grain
from engine.synth.world import Material as M


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
