"""Daylight and camera response of a ground photo: the Lighting, the sky (gradient, sun glow, clouds), the
haze colour, vignetting and sensor noise."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from engine.synth.render_march import Columns
from engine.synth.render_noise import cloud_texture

#: Size of the bank sensor noise is sliced from.
_NOISE_BANK_SIZE = 1 << 21


@dataclass(frozen=True)
class Lighting:
    """Illumination and camera response of one photo."""

    sun_azimuth_deg: float = 135.0
    sun_elevation_deg: float = 45.0
    exposure: float = 1.0                                    # overall brightness gain
    white_balance: tuple[float, float, float] = (1.0, 1.0, 1.0)
    haze_distance_m: float = 2500.0                          # e-folding distance of the aerial perspective
    horizon_rgb: tuple[float, float, float] = (0.80, 0.85, 0.92)
    zenith_rgb: tuple[float, float, float] = (0.30, 0.48, 0.80)
    ambient: float = 0.4                                     # sky light relative to direct sun on flat ground
    cloud_cover: float = 0.3                                 # 0 clear .. 1 overcast
    cloud_offset: tuple[float, float] = (0.0, 0.0)          # where in the cloud pattern this photo looks
    noise_sigma: float = 1.5                                 # sensor noise, 8-bit levels (needs an rng)

    @classmethod
    def random(cls, rng: np.random.Generator) -> Lighting:
        """Daylight drawn from plausible ranges: sun, exposure, white balance, haze, sky tint, clouds."""
        haze = float(np.exp(rng.uniform(np.log(700.0), np.log(6000.0))))
        blue = rng.uniform(0.0, 1.0)            # 0: milky sky, 1: deep blue
        horizon = np.array([0.82, 0.86, 0.92]) + rng.normal(0.0, 0.02, 3)
        zenith = np.array([0.45, 0.58, 0.80]) * (1 - blue) + np.array([0.20, 0.40, 0.78]) * blue
        warm = rng.normal(0.0, 0.04)
        wb = (1.0 + warm + rng.normal(0.0, 0.015), 1.0 + rng.normal(0.0, 0.015), 1.0 - warm + rng.normal(0.0, 0.015))
        return cls(sun_azimuth_deg=float(rng.uniform(0.0, 360.0)),
                   sun_elevation_deg=float(rng.uniform(15.0, 70.0)),
                   exposure=float(rng.uniform(0.85, 1.15)),
                   white_balance=tuple(float(v) for v in wb),
                   haze_distance_m=haze,
                   horizon_rgb=tuple(float(v) for v in np.clip(horizon, 0.0, 1.0)),
                   zenith_rgb=tuple(float(v) for v in np.clip(zenith, 0.0, 1.0)),
                   ambient=float(rng.uniform(0.3, 0.55)),
                   cloud_cover=float(rng.uniform(0.0, 0.7)),
                   cloud_offset=(float(rng.uniform(0.0, 1e5)), float(rng.uniform(0.0, 1e5))),
                   noise_sigma=float(rng.uniform(0.8, 2.5)))

    def sun_vector(self) -> np.ndarray:
        """Unit vector towards the sun in (east, north, up)."""
        az, el = np.deg2rad(self.sun_azimuth_deg), np.deg2rad(self.sun_elevation_deg)
        return np.array([np.sin(az) * np.cos(el), np.cos(az) * np.cos(el), np.sin(el)], dtype=np.float32)


def haze_rgb(lighting: Lighting) -> np.ndarray:
    return np.asarray(lighting.horizon_rgb, np.float32) * np.float32(0.97)


def sky_colour(cols: Columns, sky_r: np.ndarray, sky_c: np.ndarray, lighting: Lighting) -> np.ndarray:
    """(3, N) sky: gradient from the hazy horizon to the zenith, a glow around the sun, a layer of clouds."""
    cos_off = np.take(cols.cos_off, sky_c)
    tan_elev = (np.take(cols.horizon_row, sky_c) - (sky_r.astype(np.float32) + np.float32(0.5))) * (
        cos_off / np.float32(cols.focal))
    elev = np.arctan(tan_elev)
    t = np.float32(1.0) - np.exp(np.maximum(elev, np.float32(0.0)) * np.float32(-1.0 / 0.35))
    haze = haze_rgb(lighting)[:, None]
    zenith = np.asarray(lighting.zenith_rgb, np.float32)[:, None]
    colour = haze + (zenith - haze) * t
    sun = lighting.sun_vector()
    bearing = np.take(cols.bearing, sky_c)
    cos_e = np.cos(elev)
    sin_b = np.sin(bearing)
    cos_b = np.cos(bearing)
    cos_sun = (sin_b * sun[0] + cos_b * sun[1]) * cos_e + np.sin(elev) * sun[2]
    glow = np.float32(0.5) * np.exp((cos_sun - np.float32(1.0)) * np.float32(250.0)) + np.float32(0.15) * np.exp(
        (cos_sun - np.float32(1.0)) * np.float32(6.0))
    colour += np.array([1.0, 0.95, 0.85], np.float32)[:, None] * glow

    if lighting.cloud_cover > 0.0:
        # Clouds on a flat layer 1.5 km up, seen ever flatter towards the horizon where they fade out.
        reach = np.float32(1500.0 / 2500.0) / np.maximum(tan_elev, np.float32(0.02))
        density = cloud_texture(np.float32(lighting.cloud_offset[0] / 2500.0) + sin_b * reach,
                                np.float32(lighting.cloud_offset[1] / 2500.0) + cos_b * reach)
        threshold = np.float32(1.0 - lighting.cloud_cover)
        alpha = np.clip((density - threshold) * np.float32(1.0 / 0.12), 0.0, 1.0)
        alpha *= np.clip((elev - np.float32(0.02)) * np.float32(8.0), 0.0, 0.95)
        shade = np.clip(np.float32(1.05) - np.float32(0.5) * (density - threshold), 0.6, 1.05)
        cloud = np.array([0.96, 0.96, 0.98], np.float32)[:, None] * shade
        colour += (cloud - colour) * alpha
    return colour


@lru_cache(maxsize=8)
def vignette(width: int, height: int) -> np.ndarray:
    """Gentle lens fall-off towards the corners, flat (H*W,) float32."""
    y = (np.arange(height, dtype=np.float32) + 0.5 - height / 2) / (width / 2)
    x = (np.arange(width, dtype=np.float32) + 0.5 - width / 2) / (width / 2)
    return (1.0 - 0.12 * (x[None, :] ** 2 + y[:, None] ** 2)).astype(np.float32).ravel()


def sensor_noise(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Unit Gaussian noise of `shape`, float32: a random slice of a fixed bank, drawn afresh for huge images."""
    n = int(np.prod(shape))
    if n <= _NOISE_BANK_SIZE // 2:
        start = int(rng.integers(0, _NOISE_BANK_SIZE - n))
        return _noise_bank()[start:start + n].reshape(shape)
    return rng.standard_normal(shape, dtype=np.float32)


@lru_cache(maxsize=1)
def _noise_bank() -> np.ndarray:
    """Gaussian sensor noise to slice from at a random offset: much cheaper than drawing it per photo."""
    return np.random.default_rng(7).standard_normal(_NOISE_BANK_SIZE, dtype=np.float32)
