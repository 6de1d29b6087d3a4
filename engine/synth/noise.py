"""Fast vectorised procedural noise for the world generator.

Fractal value noise: random lattices at several scales, smoothly interpolated (quintic fade) and summed.
A `Fbm` field is defined over continuous cell coordinates (x = column, y = row, in cells), so the same field
can be rasterised over the whole world or evaluated at arbitrary points (road vertices, tree centres).
Everything is drawn from a numpy Generator, so equal generator states give bit-identical fields.
"""
from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage as ndi

# Standard deviation of one octave (uniform(-1, 1) lattice, quintic interpolation); measured once, used to
# scale sums of octaves to roughly unit standard deviation.
_OCTAVE_STD = 0.452


def _fade(t: np.ndarray) -> np.ndarray:
    return t * t * t * (t * (t * 6.0 - 15.0) + 10.0)


class Fbm:
    """Fractal value noise over cell coordinates, roughly zero mean and unit standard deviation.

    scale: size in cells of the largest features (lattice spacing of the first octave).
    extent: (height, width) in cells the field must cover; points outside it (by up to `margin` cells) are
    still valid, which lets vector geometry that pokes out of the world be warped smoothly.
    """

    def __init__(self, rng: np.random.Generator, extent: tuple[int, int], scale: float, octaves: int = 4,
                 persistence: float = 0.5, lacunarity: float = 2.0, margin: float = 0.0):
        self.scale = float(scale)
        self.margin = float(margin)
        self.octaves: list[tuple[float, float, np.ndarray, np.ndarray]] = []
        h, w = extent
        amp, cell, total = 1.0, float(scale), 0.0
        for _ in range(max(1, octaves)):
            cell = max(cell, 1.0)
            offset = rng.uniform(0.0, cell, 2) + self.margin      # random phase hides lattice alignment
            gh = int(np.ceil((h + 2 * self.margin) / cell)) + 3
            gw = int(np.ceil((w + 2 * self.margin) / cell)) + 3
            lattice = rng.uniform(-1.0, 1.0, (gh, gw)).astype(np.float32)
            self.octaves.append((cell, amp, offset, lattice))
            total += amp * amp
            amp *= persistence
            cell /= lacunarity
        self.norm = np.float32(1.0 / (_OCTAVE_STD * np.sqrt(total)))

    @property
    def finest(self) -> float:
        return self.octaves[-1][0]

    def at(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Evaluate at points (cell coordinates, x = column, y = row); float32, same shape as x."""
        x = np.asarray(x, np.float64)
        y = np.asarray(y, np.float64)
        out = np.zeros(np.broadcast(x, y).shape, np.float32)
        for cell, amp, offset, lattice in self.octaves:
            gx = np.clip((x + offset[1]) / cell, 0, lattice.shape[1] - 2.001)
            gy = np.clip((y + offset[0]) / cell, 0, lattice.shape[0] - 2.001)
            ix = gx.astype(np.intp)
            iy = gy.astype(np.intp)
            fx = _fade(gx - ix).astype(np.float32)
            fy = _fade(gy - iy).astype(np.float32)
            top = lattice[iy, ix] * (1 - fx) + lattice[iy, ix + 1] * fx
            bot = lattice[iy + 1, ix] * (1 - fx) + lattice[iy + 1, ix + 1] * fx
            out += np.float32(amp) * (top * (1 - fy) + bot * fy)
        return out * self.norm

    def raster(self, shape: tuple[int, int], step: int = 1) -> np.ndarray:
        """The field at cell centres of a (H, W) grid, float32.

        step > 1 evaluates on a grid `step` times coarser and upsamples bilinearly; use it when the finest
        octave is several cells wide anyway (much faster, visually identical).
        """
        h, w = shape
        if step > 1:
            ch, cw = -(-h // step), -(-w // step)
            coarse = self._grid(ch, cw, step)
            return upsample(coarse, shape, step)
        return self._grid(h, w, 1)

    def _grid(self, h: int, w: int, step: int) -> np.ndarray:
        out = np.zeros((h, w), np.float32)
        xs = (np.arange(w, dtype=np.float64) + 0.5) * step
        ys = (np.arange(h, dtype=np.float64) + 0.5) * step
        for cell, amp, offset, lattice in self.octaves:
            gx = (xs + offset[1]) / cell
            gy = (ys + offset[0]) / cell
            ix = gx.astype(np.intp)
            iy = gy.astype(np.intp)
            fx = _fade(gx - ix).astype(np.float32)
            fy = _fade(gy - iy).astype(np.float32)[:, None]
            lat = lattice[: iy[-1] + 2]
            rows = lat[:, ix] * (1 - fx) + lat[:, ix + 1] * fx         # (gh, w): interpolate along x first
            out += np.float32(amp) * (rows[iy] * (1 - fy) + rows[iy + 1] * fy)
        out *= self.norm
        return out


def upsample(coarse: np.ndarray, shape: tuple[int, int], step: int) -> np.ndarray:
    """Bilinear upsampling (float32) of a grid sampled every `step` cells at coarse cell centres, cropped to
    `shape`. PIL's resampler is pixel-centre aligned and about twice as fast as scipy.ndimage.zoom."""
    h, w = shape
    ch, cw = coarse.shape
    img = Image.fromarray(np.ascontiguousarray(coarse, np.float32), "F")
    out = np.array(img.resize((cw * step, ch * step), Image.BILINEAR))
    return out[:h, :w] if out.shape != (h, w) else out


def fbm(rng: np.random.Generator, shape: tuple[int, int], scale: float, octaves: int = 4,
        persistence: float = 0.5, lacunarity: float = 2.0) -> np.ndarray:
    """Fractal noise raster of `shape` (cells), features up to `scale` cells; ~zero mean, unit std."""
    field = Fbm(rng, shape, scale, octaves, persistence, lacunarity)
    return field.raster(shape, auto_step(field.finest))


def auto_step(finest_cell: float) -> int:
    """Coarse evaluation step that keeps at least ~3 samples per finest lattice cell."""
    step = 1
    while step * 2 * 3 <= finest_cell and step < 16:
        step *= 2
    return step


def ridged(noise: np.ndarray) -> np.ndarray:
    """Ridge transform of unit-std noise: sharp crests where the noise crosses zero, in [0, 1]."""
    return (1.0 - np.minimum(np.abs(noise) * 0.8, 1.0)) ** 2


def grain(rng: np.random.Generator, shape: tuple[int, ...], blur: float = 0.0) -> np.ndarray:
    """Per-cell white noise in [-1, 1] (float32); blur > 0 gives slightly clumpy grain of that sigma (cells)."""
    g = rng.random(shape, dtype=np.float32) * 2.0 - 1.0
    if blur > 0:
        g = ndi.gaussian_filter(g, blur)
        g /= max(float(np.abs(g[:: max(1, g.shape[0] // 256)]).max()), 1e-6)
    return g


def quantile_threshold(field: np.ndarray, fraction: float) -> float:
    """Threshold t so that about `fraction` of the field's cells are above t (computed on a subsample)."""
    sub = field[:: max(1, field.shape[0] // 512), :: max(1, field.shape[1] // 512)]
    return float(np.quantile(sub, 1.0 - np.clip(fraction, 0.0, 1.0)))


def smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    """0 below edge0, 1 above edge1, smooth in between (a step at edge0 when the edges coincide)."""
    span = edge1 - edge0
    if span == 0:
        return (np.asarray(x) >= edge0).astype(np.float32)
    t = np.clip((x - edge0) / span, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)
