"""Top-down orthophoto of a synthetic World: albedo, Lambert shading, cast shadows, sensor blur and noise."""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from engine.synth.world import World

#: Sky light reaching a cell in full shadow, relative to direct sun on flat ground.
AMBIENT = 0.42
#: A cell is in shadow only if the shadow volume passes this far above it (hides discretisation jitter).
SHADOW_TOLERANCE_M = 0.08
#: Steepest slope used for shading: building edges would otherwise be shaded like facades.
MAX_SHADING_SLOPE = 1.5


def render_orthophoto(world: World, sun_azimuth_deg: float = 135.0, sun_elevation_deg: float = 50.0,
                      rng: np.random.Generator | None = None) -> np.ndarray:
    """(H, W, 3) uint8 north-up orthophoto of `world`, one pixel per world cell.

    sun_azimuth_deg: compass direction towards the sun; shadows fall the opposite way. sun_elevation_deg:
    degrees above the horizon. Sensor noise is added when `rng` is given; the slight optical blur always.
    """
    if not 0.0 < sun_elevation_deg <= 90.0:
        raise ValueError(f"sun_elevation_deg must be in (0, 90], got {sun_elevation_deg}")
    height = np.ascontiguousarray(world.height, dtype=np.float32)
    light = sunlight(height, world.resolution_m, sun_azimuth_deg, sun_elevation_deg)
    shade = cast_shadows(height, world.resolution_m, sun_azimuth_deg, sun_elevation_deg)
    # Soft shadow edges: the sun is a disc, not a point.
    shade = ndimage.uniform_filter(shade.astype(np.float32), 3)
    sun_el = np.deg2rad(sun_elevation_deg)
    # Direct light where not shadowed, plus sky light; flat sunlit ground comes out at 1.
    light *= 1.0 - shade
    light += np.float32(AMBIENT)
    light *= np.float32(1.0 / (np.sin(sun_el) + AMBIENT))

    out = np.empty(world.albedo.shape, np.uint8)
    haze = np.array([0.80, 0.84, 0.90], np.float32) * 255.0
    for channel in range(3):
        plane = world.albedo[..., channel].astype(np.float32)
        plane *= light
        # A thin veil of atmosphere, as in real satellite imagery.
        plane *= np.float32(0.94)
        plane += np.float32(0.06 * haze[channel])
        plane = _blur121(plane)
        if rng is not None:
            plane += rng.standard_normal(plane.shape, dtype=np.float32) * np.float32(1.6)
        np.clip(plane, 0.0, 255.0, out=plane)
        out[..., channel] = plane
    return out


def sunlight(height: np.ndarray, resolution_m: float, sun_azimuth_deg: float, sun_elevation_deg: float
             ) -> np.ndarray:
    """Lambert term max(0, n . sun) of the height field's normals, (H, W) float32."""
    az, el = np.deg2rad(sun_azimuth_deg), np.deg2rad(sun_elevation_deg)
    sun_e, sun_n, sun_u = np.sin(az) * np.cos(el), np.cos(az) * np.cos(el), np.sin(el)
    d_row, d_col = np.gradient(height, resolution_m)
    # Rows grow southwards: d/dnorth = -d/drow.
    slope_e = np.clip(d_col, -MAX_SHADING_SLOPE, MAX_SHADING_SLOPE)
    slope_n = np.clip(-d_row, -MAX_SHADING_SLOPE, MAX_SHADING_SLOPE)
    # n = (-slope_e, -slope_n, 1) / |.|
    light = (np.float32(sun_u) - slope_e * np.float32(sun_e) - slope_n * np.float32(sun_n))
    light /= np.sqrt(slope_e * slope_e + slope_n * slope_n + np.float32(1.0))
    np.maximum(light, 0.0, out=light)
    return light.astype(np.float32, copy=False)


def cast_shadows(height: np.ndarray, resolution_m: float, sun_azimuth_deg: float, sun_elevation_deg: float
                 ) -> np.ndarray:
    """(H, W) bool: cells that some surface between them and the sun shadows.

    One sweep across the grid, moving away from the sun one row (or column) at a time, carries the top of
    the shadow volume along discrete lines parallel to the sun direction: each step it sinks by the sun's
    slope over the distance travelled and is raised to the surface wherever the surface is higher. Exact up
    to the line rasterisation, linear in the number of cells, and vectorised across each row.
    """
    az = np.deg2rad(sun_azimuth_deg)
    # Direction towards the sun in (col, row) steps: east = +col, north = -row.
    to_sun_col, to_sun_row = np.sin(az), -np.cos(az)
    view = height
    transposed = abs(to_sun_col) > abs(to_sun_row)
    if transposed:                      # make rows the dominant axis
        view = view.T
        to_sun_col, to_sun_row = to_sun_row, to_sun_col
    flip_rows = to_sun_row > 0          # make the sun lie towards row 0
    if flip_rows:
        view = view[::-1]
        to_sun_row = -to_sun_row
    view = np.ascontiguousarray(view)
    shift_per_row = to_sun_col / -to_sun_row          # column change per row towards the sun, |.| <= 1
    drop_per_row = np.float32(resolution_m * np.hypot(1.0, shift_per_row) * np.tan(np.deg2rad(sun_elevation_deg)))

    rows, cols = view.shape
    shadow = np.zeros((rows, cols), bool)
    volume = view[0].copy()             # top of the shadow volume arriving at the current row
    carried = np.empty(cols, np.float32)
    previous_offset = 0
    tolerance = np.float32(SHADOW_TOLERANCE_M)
    for row in range(1, rows):
        # Sun lines are j + round(row * shift_per_row) = const, so the sun-ward neighbour of (row, j) is
        # (row - 1, j + shift).
        offset = int(np.floor(row * shift_per_row + 0.5))
        shift = offset - previous_offset
        previous_offset = offset
        carried.fill(-np.inf)
        if shift == 0:
            carried[:] = volume
        elif shift > 0:
            carried[:-shift] = volume[shift:]
        else:
            carried[-shift:] = volume[:shift]
        carried -= drop_per_row
        surface = view[row]
        shadow[row] = carried > surface + tolerance
        np.maximum(carried, surface, out=volume)
    if flip_rows:
        shadow = shadow[::-1]
    if transposed:
        shadow = shadow.T
    return np.ascontiguousarray(shadow)


def _blur121(plane: np.ndarray) -> np.ndarray:
    """Separable [1, 2, 1] / 4 blur: the slight softness of a real sensor's optics."""
    out = ndimage.correlate1d(plane, np.array([0.25, 0.5, 0.25], np.float32), axis=0, mode="nearest")
    return ndimage.correlate1d(out, np.array([0.25, 0.5, 0.25], np.float32), axis=1, mode="nearest")
