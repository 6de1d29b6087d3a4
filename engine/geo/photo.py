"""Loading query photos: any size, JPEG/PNG/TIFF, EXIF orientation applied, greyscale/CMYK/alpha -> RGB."""
from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from engine.geo.errors import GeoInputError
from engine.geo.exif import PhotoExif, exif_from_image

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp")
MAX_PIXELS = 200_000_000


class PhotoError(GeoInputError):
    """A photo cannot be read."""


@dataclass(frozen=True)
class Photo:
    path: Path
    rgb: np.ndarray           # (H, W, 3) uint8, upright
    exif: PhotoExif
    sha256: str

    @property
    def name(self) -> str:
        return self.path.name


def load_photo(path: str | os.PathLike) -> Photo:
    """Read a photo fully (a truncated file is an error, not a grey band) and make it upright RGB."""
    path = Path(path)
    if not path.is_file():
        raise PhotoError(path, "file not found")
    data = path.read_bytes()
    if not data:
        raise PhotoError(path, "file is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                if image.width * image.height > MAX_PIXELS:
                    raise PhotoError(path, f"image too large ({image.width}x{image.height} px)")
                image.load()
                exif = exif_from_image(image)
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
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning) as exc:
        if isinstance(exc, PhotoError):
            raise
        raise PhotoError(path, f"corrupt or truncated image ({exc})") from None
    return Photo(path, np.ascontiguousarray(rgb), exif, hashlib.sha256(data).hexdigest())


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
