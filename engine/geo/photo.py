"""Loading query photos: any size, JPEG/PNG/TIFF, EXIF orientation applied, greyscale/CMYK/alpha -> RGB."""
from __future__ import annotations

import hashlib
import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from engine.geo.errors import GeoInputError
from engine.geo.exif import PhotoExif, exif_from_image

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp")
#: larger photos are refused (250 MP: above the 200 MP phone sensors); everything below decodes
MAX_PIXELS = 250_000_000
#: photos are decoded with their longer side reduced to about this (JPEG draft: 1/2, 1/4, 1/8 scaling in the
#: decoder, so a 108 MP photo never exists in memory at full size); the model's input is 384 x 256
DECODE_MAX_SIDE = 4096
#: below this many pixels on the short side a photo holds too little to localise
MIN_USEFUL_SIDE = 64
WORLD_FILE_SUFFIXES = (".wld", ".jgw", ".jpgw", ".pgw", ".pngw", ".tfw", ".tifw", ".aux.xml")
GEOTIFF_TAGS = (33550, 33922, 34264, 34735)    # ModelPixelScale, ModelTiepoint, ModelTransformation, GeoKeys

# Pillow's decompression-bomb guard (89 MP warning, 179 MP error) would call a 108 MP phone photo corrupt;
# the engine applies its own MAX_PIXELS before decoding instead.
Image.MAX_IMAGE_PIXELS = max(Image.MAX_IMAGE_PIXELS or 0, MAX_PIXELS)


class PhotoError(GeoInputError):
    """A photo cannot be read."""


@dataclass(frozen=True)
class Photo:
    path: Path
    rgb: np.ndarray           # (H, W, 3) uint8, upright; reduced when the file is larger than DECODE_MAX_SIDE
    exif: PhotoExif
    sha256: str
    warnings: tuple[str, ...] = ()           # too small, not a ground photo, ...; the result should show them
    original_size: tuple[int, int] | None = None   # (width, height) of the upright photo at full size

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def is_ground_photo(self) -> bool:
        """False when the file is evidently a map (georeferenced), not a photo taken on the ground."""
        return not any(w.startswith(NOT_GROUND_PHOTO) for w in self.warnings)


NOT_GROUND_PHOTO = "not a ground photo"
TOO_SMALL = "too small to localise reliably"


def load_photo(path: str | os.PathLike, max_side: int | None = DECODE_MAX_SIDE) -> Photo:
    """Read a photo fully (a truncated file is an error, not a grey band) and make it upright RGB.

    max_side: decode reduced so the longer side is at most about this (None: full size)."""
    path = Path(path)
    if not path.is_file():
        raise PhotoError(path, "file not found")
    data = path.read_bytes()
    if not data:
        raise PhotoError(path, "file is empty (0 bytes)")
    warnings_found: list[str] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                stored = image.size
                if stored[0] * stored[1] > MAX_PIXELS:
                    raise PhotoError(path, f"image too large ({stored[0]} x {stored[1]} px = "
                                           f"{stored[0] * stored[1] / 1e6:.0f} MP; the limit is "
                                           f"{MAX_PIXELS / 1e6:.0f} MP)")
                if _is_georeferenced(image) or _world_file(path) is not None:
                    warnings_found.append(_map_warning(path))
                exif = exif_from_image(image, stored)
                image = _reduced(image, max_side)
                image.load()
                upright = ImageOps.exif_transpose(image)
                if upright.mode in ("RGBA", "LA", "PA") or (upright.mode == "P" and "transparency" in upright.info):
                    background = Image.new("RGB", upright.size, (0, 0, 0))
                    background.paste(upright.convert("RGBA"), mask=upright.convert("RGBA").getchannel("A"))
                    upright = background
                elif upright.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                    upright = _stretch_to_8bit(upright)
                rgb = np.asarray(upright.convert("RGB"))
    except UnidentifiedImageError:
        raise PhotoError(path, "not an image file Pillow can read") from None
    except Image.DecompressionBombError as exc:
        raise PhotoError(path, f"image too large ({exc})") from None
    except (OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, PhotoError):
            raise
        raise PhotoError(path, f"corrupt or truncated image ({exc})") from None
    original = exif.upright_size or (rgb.shape[1], rgb.shape[0])
    if min(original) < MIN_USEFUL_SIDE:
        warnings_found.append(f"{TOO_SMALL}: {original[0]} x {original[1]} px (at least {MIN_USEFUL_SIDE} px "
                              "on the short side are needed)")
    return Photo(path, np.ascontiguousarray(rgb), exif, hashlib.sha256(data).hexdigest(), tuple(warnings_found),
                 (int(original[0]), int(original[1])))


def _reduced(image: Image.Image, max_side: int | None) -> Image.Image:
    """Decode at a reduced size when the photo is much larger than needed: JPEG in the decoder (draft),
    other formats by box-reducing after decoding."""
    if max_side is None or max(image.size) <= max_side:
        return image
    if image.format == "JPEG":
        scale = max(image.size) / max_side
        image.draft(image.mode if image.mode in ("RGB", "L", "CMYK") else "RGB",
                    (int(image.size[0] / scale), int(image.size[1] / scale)))
        return image
    image.load()
    factor = int(max(image.size) // max_side)
    return image.reduce(factor) if factor >= 2 and image.mode not in ("P", "1") else image


def _is_georeferenced(image: Image.Image) -> bool:
    tags = getattr(image, "tag_v2", None)
    return tags is not None and any(tag in tags for tag in GEOTIFF_TAGS)


def _world_file(path: Path) -> Path | None:
    for suffix in WORLD_FILE_SUFFIXES:
        for candidate in (path.with_suffix(suffix), path.with_name(path.name + suffix)):
            if candidate.is_file():
                return candidate
    return None


def _map_warning(path: Path) -> str:
    return (f"{NOT_GROUND_PHOTO}: {path.name} is georeferenced (GeoTIFF tags or a world file), so it is a map or "
            "an aerial image; give it as --map, not as a photo")


def _stretch_to_8bit(image: Image.Image) -> Image.Image:
    values = np.asarray(image, dtype=np.float64)
    low, high = np.percentile(values, (0.5, 99.5))
    scaled = np.clip((values - low) / max(high - low, 1e-9) * 255.0, 0, 255).astype(np.uint8)
    return Image.fromarray(scaled, mode="L")


def find_photos(paths: list[str | os.PathLike]) -> list[Path]:
    """Expand files and folders (non-recursive into hidden entries) into a sorted list of photo paths."""
    found: list[Path] = []
    for item in map(Path, paths):
        if item.is_dir():
            found += sorted(p for p in item.rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES
                            and not any(part.startswith(".") for part in p.relative_to(item).parts))
        else:
            found.append(item)
    return found
