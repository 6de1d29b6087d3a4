"""Street-level photos of a synthetic World: a pinhole camera column-marched through the height field.

Every image column is a vertical plane through the eye. Samples along its horizontal ray (step growing with
distance) are projected to screen rows; a running minimum of those rows per column is the horizon so far, so
the pixel rows a sample covers are the ones between its own projected top and the horizon of all nearer
samples. One batched searchsorted over all columns assigns every pixel its nearest covering sample. Nothing
loops over pixels or columns in Python.

Pitch shifts the horizon vertically and roll tilts it (a per-column shift, i.e. a shear that matches a
rotation to within a pixel for rolls of a few degrees). Vertical lines stay vertical (no keystone).

Surfaces: a sample whose top is above the pixel's ray where the ray enters it is a vertical face (facade with
storeys of windows, foliage, or a terrain step), otherwise a top (albedo, Lambert-shaded). The height field
makes a crown a solid column down to the ground, so pixels below a crown are re-marched with that crown
removed and may hit its trunk instead. Sky, sun glow, clouds, haze, exposure, white balance, vignetting and
sensor noise complete the photo.

The steps live in render_march (columns, under crowns), render_shading (surfaces) and render_sky (sky, sensor).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine.synth.camera import CameraPose
from engine.synth.render_march import march_columns, see_under_crowns
from engine.synth.render_shading import shade_surfaces
from engine.synth.render_sky import Lighting, sensor_noise, sky_colour, vignette
from engine.synth.world import World

#: How far a ground camera sees terrain and objects, metres. Beyond it the sky and haze take over.
DEFAULT_MAX_RANGE_M = 800.0


@dataclass
class GroundRender:
    """A rendered ground photo and what each pixel sees."""

    image: np.ndarray          # (H, W, 3) uint8
    depth_m: np.ndarray        # (H, W) float32: distance from the eye to the surface hit; inf for sky
    hit_cell: np.ndarray       # (H, W, 2) int32: (row, col) of the world cell hit; -1 for sky / beyond the edge
    pose: CameraPose
    lighting: Lighting = field(default_factory=Lighting)

    @property
    def sky_mask(self) -> np.ndarray:
        return ~np.isfinite(self.depth_m)


def render_ground(world: World, pose: CameraPose, rng: np.random.Generator | None = None,
                  lighting: Lighting | None = None, *, max_range_m: float = DEFAULT_MAX_RANGE_M) -> GroundRender:
    """Render the street-level photo a camera at `pose` would take in `world`.

    Lighting (sun, exposure, white balance, haze, clouds) is `lighting`, else drawn from `rng`, else the
    default. Sensor noise is added only when `rng` is given, so a render without rng is deterministic.
    """
    if lighting is None:
        lighting = Lighting.random(rng) if rng is not None else Lighting()
    width, height = pose.width, pose.height
    cols = march_columns(world, pose, max_range_m)
    see_under_crowns(world, cols, width, height)
    n_samples = cols.dist.size
    k_flat = cols.first_sample.ravel()
    pix = np.flatnonzero(k_flat < n_samples)         # pixels that hit a surface
    sky_pix = np.flatnonzero(k_flat >= n_samples)
    image = np.empty((3, height * width), np.float32)
    depth = np.full(height * width, np.inf, np.float32)
    hit_cell = np.full((height * width, 2), -1, np.int32)
    if pix.size:
        hits = shade_surfaces(world, cols, pix, width, lighting)
        image[:, pix] = hits["colour"]
        depth[pix] = hits["range"]
        on_world = hits["on_world"]
        hit_cell[pix[on_world], 0] = hits["cell_row"][on_world]
        hit_cell[pix[on_world], 1] = hits["cell_col"][on_world]
    if sky_pix.size:
        image[:, sky_pix] = sky_colour(cols, sky_pix // width, sky_pix % width, lighting)

    gain = (np.float32(255.0 * lighting.exposure) * np.asarray(lighting.white_balance, np.float32))[:, None]
    image *= vignette(width, height)
    image *= gain
    if rng is not None and lighting.noise_sigma > 0:
        image += sensor_noise(image.shape, rng) * np.float32(lighting.noise_sigma)
    image += np.float32(0.5)                          # round, not truncate, to 8 bits
    np.clip(image, 0.0, 255.0, out=image)
    out = np.ascontiguousarray(image.astype(np.uint8).reshape(3, height, width).transpose(1, 2, 0))
    return GroundRender(image=out, depth_m=depth.reshape(height, width),
                        hit_cell=hit_cell.reshape(height, width, 2), pose=pose, lighting=lighting)
