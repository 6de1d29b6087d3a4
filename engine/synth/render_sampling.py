"""World fields read by the ground renderer: at flat cell indices, between cell centres, their gradients."""
from __future__ import annotations

import numpy as np


def flat_view(array: np.ndarray) -> np.ndarray:
    """A C-contiguous 1-D view of a world array (a copy only if the world's array is not contiguous)."""
    return np.ascontiguousarray(array).reshape(-1)


def gather_rgb(rgb: np.ndarray, index: np.ndarray) -> np.ndarray:
    """(3, N) float32 in [0, 1] of an (H, W, 3) uint8 world map at flat cell indices (channel planes)."""
    flat = flat_view(rgb)
    base = index * 3
    out = np.empty((3, index.size), np.float32)
    for channel in range(3):
        out[channel] = np.take(flat, base + channel)
    out *= np.float32(1.0 / 255.0)
    return out


def _bilinear_corners(shape: tuple[int, int], colf: np.ndarray, rowf: np.ndarray
                      ) -> list[tuple[np.ndarray, np.ndarray]]:
    """(flat cell index, weight) of the four cell centres around continuous cell coordinates."""
    rows_w, cols_w = shape
    x = colf - np.float32(0.5)
    y = rowf - np.float32(0.5)
    x0 = np.floor(x)
    y0 = np.floor(y)
    fx = x - x0
    fy = y - y0
    x0 = x0.astype(np.int32)
    y0 = y0.astype(np.int32)
    xa = np.clip(x0, 0, cols_w - 1)
    xb = np.clip(x0 + 1, 0, cols_w - 1)
    ya = np.clip(y0, 0, rows_w - 1) * np.int32(cols_w)
    yb = np.clip(y0 + 1, 0, rows_w - 1) * np.int32(cols_w)
    return [(ya + xa, (1 - fx) * (1 - fy)), (ya + xb, fx * (1 - fy)), (yb + xa, (1 - fx) * fy), (yb + xb, fx * fy)]


def bilinear_rgb(rgb: np.ndarray, colf: np.ndarray, rowf: np.ndarray) -> np.ndarray:
    """(3, N) float32 colour of an (H, W, 3) uint8 world map interpolated between cell centres."""
    corners = _bilinear_corners(rgb.shape[:2], colf, rowf)
    index, weight = corners[0]
    out = gather_rgb(rgb, index) * weight
    for index, weight in corners[1:]:
        out += gather_rgb(rgb, index) * weight
    return out


def bilinear(field: np.ndarray, colf: np.ndarray, rowf: np.ndarray) -> np.ndarray:
    """A world field (H, W) interpolated between cell centres at continuous cell coordinates."""
    flat = flat_view(field)
    corners = _bilinear_corners(field.shape, colf, rowf)
    index, weight = corners[0]
    out = np.take(flat, index) * weight
    for index, weight in corners[1:]:
        out += np.take(flat, index) * weight
    return out


def gradient(field: np.ndarray, row: np.ndarray, col: np.ndarray, resolution_m: np.float32
              ) -> tuple[np.ndarray, np.ndarray]:
    """(d/d east, d/d north) of a world field at cells, central differences clamped at the edges."""
    rows_w, cols_w = field.shape
    flat = flat_view(field)
    inv2res = np.float32(0.5) / resolution_m
    base = row * cols_w
    gx = (np.take(flat, base + np.minimum(col + 1, cols_w - 1)) - np.take(flat, base + np.maximum(col - 1, 0)))
    gy = (np.take(flat, np.maximum(row - 1, 0) * cols_w + col)
          - np.take(flat, np.minimum(row + 1, rows_w - 1) * cols_w + col))
    return gx * inv2res, gy * inv2res
