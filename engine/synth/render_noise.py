"""Cheap deterministic noise for the renderers: integer hashes and a tileable cloud texture."""
from __future__ import annotations

from functools import lru_cache

import numpy as np

_CLOUD_SIZE = 1024


def hash_unit(a: np.ndarray, b: np.ndarray, salt: int) -> np.ndarray:
    """A pseudo-random float32 in [0, 1) per integer pair (a, b), different for every salt."""
    with np.errstate(over="ignore"):
        h = np.asarray(a).astype(np.uint32) * np.uint32(0x9E3779B1)
        salt_term = np.uint32((salt * 0x27D4EB2F + 0x165667B1) & 0xFFFFFFFF)
        h ^= np.asarray(b).astype(np.uint32) * np.uint32(0x85EBCA77) + salt_term
        h ^= h >> np.uint32(15)
        h *= np.uint32(0x2C1B3C6D)
        h ^= h >> np.uint32(12)
        h *= np.uint32(0x297A2D39)
        h ^= h >> np.uint32(15)
    return (h >> np.uint32(8)).astype(np.float32) * np.float32(1.0 / (1 << 24))


@lru_cache(maxsize=1)
def _cloud_table() -> np.ndarray:
    """A tileable fractal noise image whose values are uniformly distributed in [0, 1]."""
    rng = np.random.default_rng(20240611)
    freq = np.fft.fftfreq(_CLOUD_SIZE)
    radius = np.hypot(freq[:, None], freq[None, :])
    radius[0, 0] = 1.0
    spectrum = (rng.standard_normal((_CLOUD_SIZE, _CLOUD_SIZE))
                + 1j * rng.standard_normal((_CLOUD_SIZE, _CLOUD_SIZE))) / radius ** 1.6
    spectrum[0, 0] = 0.0
    field = np.fft.ifft2(spectrum).real
    # Rank-normalise so a threshold of 1 - cover leaves exactly `cover` of the sky clouded.
    ranks = np.empty(field.size, np.float32)
    ranks[np.argsort(field.ravel())] = np.linspace(0.0, 1.0, field.size, dtype=np.float32)
    return ranks.reshape(field.shape)


def cloud_texture(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Cloud density in [0, 1] at texture coordinates (one period per unit), nearest texel, float32."""
    n = _CLOUD_SIZE
    col = (np.mod(u, 1.0) * n).astype(np.int32)
    row = (np.mod(v, 1.0) * n).astype(np.int32)
    np.minimum(col, n - 1, out=col)
    np.minimum(row, n - 1, out=row)
    return np.take(_cloud_table().ravel(), row * n + col)
