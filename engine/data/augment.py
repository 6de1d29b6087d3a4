"""Training augmentation that keeps cross-view geometry consistent, plus photometric noise.

Geometric (the satellite tile and everything measured on it move together):
- horizontal flip of ground + satellite + overlap mask: x -> W - x, heading h -> 360 - h (east <-> west);
- satellite rotation by k quarter turns clockwise: mask, camera position and CWR target rotate with the
  tile, the ground image is unchanged, so the heading relative to the tile's north grows by 90 k degrees;
- off-centre tiles: the tile window is placed in a larger chip so that the camera lands anywhere inside
  a central fraction of the tile, as in the app's gallery tiles.
Photometric: colour jitter, blur or sharpen, JPEG re-compression (quality 90-100), coarse dropout.
Every random choice comes from an explicit numpy Generator, so a seed reproduces a sample exactly.
Images are float tensors (C, H, W) in [0, 1]; photometric functions also take and return PIL images.
"""
from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF
from PIL import Image
from torch import Tensor

from engine.data.geometry import normalize_heading


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and strengths; set a probability to 0 to switch that augmentation off."""

    flip_prob: float = 0.5
    rotate_prob: float = 0.75
    #: Off-centre tiles: probability, and the central fraction of the tile (per axis) the camera may land in.
    offcentre_prob: float = 0.5
    offcentre_fraction: float = 0.6
    colour_jitter: float = 0.15          # brightness, contrast and saturation factors in 1 +- this
    hue_jitter: float = 0.03             # hue shift in +- this fraction of the colour circle
    blur_sharpen_prob: float = 0.3
    jpeg_prob: float = 0.5
    jpeg_quality: tuple[int, int] = (90, 100)
    dropout_prob: float = 0.3
    dropout_holes: tuple[int, int] = (1, 6)
    dropout_size: tuple[float, float] = (0.04, 0.12)   # hole side as a fraction of the image side

    def __post_init__(self) -> None:
        for name in ("flip_prob", "rotate_prob", "offcentre_prob", "offcentre_fraction", "blur_sharpen_prob",
                     "jpeg_prob", "dropout_prob"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"AugmentConfig.{name} must be in [0, 1], got {value}")
        lo, hi = self.jpeg_quality
        if not 1 <= lo <= hi <= 100:
            raise ValueError(f"JPEG quality range must lie in 1-100, got {self.jpeg_quality}")


@dataclass(frozen=True)
class PairGeometry:
    """A training pair and the geometry measured on its satellite tile (tile pixels, x right, y down)."""

    ground: Tensor                              # (C, h, w)
    satellite: Tensor                           # (C, H, W)
    mask: Tensor                                # (H, W) overlap mask
    camera_px: tuple[float, float]
    cwr_target_px: tuple[float, float] | None   # None when the heading is unknown
    heading_deg: float | None
    fov_deg: float | None

    @property
    def tile_size(self) -> tuple[int, int]:
        """(width, height) of the satellite tile."""
        return int(self.satellite.shape[-1]), int(self.satellite.shape[-2])


# ---------------------------------------------------------------- geometric
def hflip_pair(pair: PairGeometry) -> PairGeometry:
    """Mirror ground, satellite and mask left-right; x -> W - x and heading h -> 360 - h."""
    width = pair.tile_size[0]
    cwr = None if pair.cwr_target_px is None else (width - pair.cwr_target_px[0], pair.cwr_target_px[1])
    heading = None if pair.heading_deg is None else float(normalize_heading(-pair.heading_deg))
    return dataclasses.replace(
        pair, ground=pair.ground.flip(-1), satellite=pair.satellite.flip(-1), mask=pair.mask.flip(-1),
        camera_px=(width - pair.camera_px[0], pair.camera_px[1]), cwr_target_px=cwr, heading_deg=heading)


def _rotate_point_cw(point: tuple[float, float], width: int, height: int, turns: int) -> tuple[float, float]:
    """(x, y) on a width x height image -> its place after `turns` clockwise quarter turns of the image."""
    x, y = point
    for _ in range(turns):
        x, y = height - y, x
        width, height = height, width
    return float(x), float(y)


def rotate_pair(pair: PairGeometry, quarter_turns: int) -> PairGeometry:
    """Rotate the satellite tile (and mask, camera, CWR target) clockwise by `quarter_turns` x 90 degrees.

    The ground is unchanged, so the heading grows by 90 degrees per turn. A non-square tile only takes
    half turns (a quarter turn would change its shape).
    """
    turns = int(quarter_turns) % 4
    width, height = pair.tile_size
    if turns % 2 and width != height:
        raise ValueError(f"a {width}x{height} tile can only be rotated by half turns")
    cwr = None if pair.cwr_target_px is None else _rotate_point_cw(pair.cwr_target_px, width, height, turns)
    heading = None if pair.heading_deg is None else float(normalize_heading(pair.heading_deg + 90.0 * turns))
    return dataclasses.replace(
        pair, satellite=torch.rot90(pair.satellite, -turns, dims=(-2, -1)),
        mask=torch.rot90(pair.mask, -turns, dims=(-2, -1)),
        camera_px=_rotate_point_cw(pair.camera_px, width, height, turns), cwr_target_px=cwr,
        heading_deg=heading)


def random_geometric(pair: PairGeometry, rng: np.random.Generator, config: AugmentConfig) -> PairGeometry:
    """Flip with config.flip_prob, then rotate by 1-3 quarter turns (half turns for non-square tiles)."""
    if rng.random() < config.flip_prob:
        pair = hflip_pair(pair)
    if rng.random() < config.rotate_prob:
        width, height = pair.tile_size
        pair = rotate_pair(pair, int(rng.integers(1, 4)) if width == height else 2)
    return pair


def offcentre_origin(chip_size: tuple[int, int], window_size: tuple[int, int], camera_px: tuple[float, float],
                     fraction: float, rng: np.random.Generator) -> tuple[int, int]:
    """Top-left (integer chip pixels) of a `window_size` window in a `chip_size` chip, placed so that the
    camera lands uniformly within the central `fraction` of the window on each axis, as far as the chip
    allows.

    Where the chip leaves no room for that (no margin), the window is as close to centring the camera as fits.
    """
    origin = []
    for size, window, camera in zip(chip_size, window_size, camera_px):
        low_u, high_u = 0.5 - fraction / 2.0, 0.5 + fraction / 2.0
        low = max(camera - high_u * window, 0.0)             # camera at high_u of the window
        high = min(camera - low_u * window, size - window)   # camera at low_u of the window
        first, last = int(np.ceil(low)), int(np.floor(high))
        if first <= last:
            origin.append(int(rng.integers(first, last + 1)))
        else:
            origin.append(int(np.clip(round(camera - window / 2.0), 0, max(size - window, 0))))
    return origin[0], origin[1]


# ---------------------------------------------------------------- photometric
def _as_tensor(image: Tensor | Image.Image) -> tuple[Tensor, bool]:
    if isinstance(image, Image.Image):
        return TF.to_dtype(TF.pil_to_tensor(image.convert("RGB")), torch.float32, scale=True), True
    return image, False


def _like_input(image: Tensor, was_pil: bool) -> Tensor | Image.Image:
    return TF.to_pil_image(TF.to_dtype(image.clamp(0, 1), torch.uint8, scale=True)) if was_pil else image


def colour_jitter(image: Tensor, rng: np.random.Generator, strength: float, hue: float) -> Tensor:
    """Brightness, contrast and saturation scaled by factors in 1 +- strength, hue shifted by +- hue."""
    low, high = max(0.0, 1.0 - strength), 1.0 + strength
    image = TF.adjust_brightness(image, float(rng.uniform(low, high)))
    image = TF.adjust_contrast(image, float(rng.uniform(low, high)))
    image = TF.adjust_saturation(image, float(rng.uniform(low, high)))
    if hue > 0:
        image = TF.adjust_hue(image, float(rng.uniform(-hue, hue)))
    return image.clamp(0.0, 1.0)


def blur_or_sharpen(image: Tensor, rng: np.random.Generator) -> Tensor:
    """Either a light Gaussian blur (3 or 5 px kernel) or a sharpening, with equal odds."""
    if rng.random() < 0.5:
        kernel = int(rng.choice([3, 5]))
        return TF.gaussian_blur(image, [kernel, kernel], [float(rng.uniform(0.3, 1.2))] * 2)
    return TF.adjust_sharpness(image, float(rng.uniform(1.5, 3.0))).clamp(0.0, 1.0)


def jpeg_compress(image: Tensor, quality: int) -> Tensor:
    """Encode an RGB image as JPEG at `quality` and decode it again (the artefacts of a re-saved photo)."""
    buffer = io.BytesIO()
    _like_input(image, was_pil=True).save(buffer, format="JPEG", quality=int(quality))
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return _as_tensor(decoded)[0]


def coarse_dropout(image: Tensor, rng: np.random.Generator, holes: tuple[int, int],
                   size: tuple[float, float]) -> Tensor:
    """Black out a few rectangles, each side a random fraction in `size` of the image side."""
    image = image.clone()
    height, width = image.shape[-2:]
    for _ in range(int(rng.integers(holes[0], holes[1] + 1))):
        hole_h = max(1, round(height * rng.uniform(*size)))
        hole_w = max(1, round(width * rng.uniform(*size)))
        top, left = int(rng.integers(0, height - hole_h + 1)), int(rng.integers(0, width - hole_w + 1))
        image[..., top:top + hole_h, left:left + hole_w] = 0.0
    return image


def photometric(image: Tensor | Image.Image, rng: np.random.Generator,
                config: AugmentConfig) -> Tensor | Image.Image:
    """Colour jitter, then (each with its probability) blur/sharpen, JPEG, coarse dropout; no geometry."""
    tensor, was_pil = _as_tensor(image)
    if config.colour_jitter > 0 or config.hue_jitter > 0:
        tensor = colour_jitter(tensor, rng, config.colour_jitter, config.hue_jitter)
    if rng.random() < config.blur_sharpen_prob:
        tensor = blur_or_sharpen(tensor, rng)
    if rng.random() < config.jpeg_prob:
        tensor = jpeg_compress(tensor, int(rng.integers(config.jpeg_quality[0], config.jpeg_quality[1] + 1)))
    if rng.random() < config.dropout_prob:
        tensor = coarse_dropout(tensor, rng, config.dropout_holes, config.dropout_size)
    return _like_input(tensor, was_pil)
