"""The bundled demo scene (resources/demo) and phone-like GPS noise for synthetic photos.

    python -m engine.synth.make_demo resources/demo [--force]

A 600 m urban world (seed 7) with 8 ground photos. Synthetic photos carry their exact camera position in
EXIF; real phones do not, so the demo's EXIF GPS is moved by Gaussian noise (sigma 10 m, recorded as
GPSHPositioningError). truth.csv / truth.geojson keep the exact positions.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image

from engine.atomic import write_bytes_atomic
from engine.data.geometry import lonlat_to_map, map_to_lonlat
from engine.geo.exif import build_exif, read_exif
from engine.synth.export import export_scene
from engine.synth.export.scene import SCENE_PHOTOS, SceneExport
from engine.synth.generate import generate_world
from engine.synth.photos import PhotoSpec

DEMO_BIOME, DEMO_SEED, DEMO_SIZE_M, DEMO_RESOLUTION_M = "urban", 7, 600.0, 0.5
DEMO_PHOTOS = PhotoSpec(8, (50.0, 90.0), (512, 384), border_margin_m=40.0)
DEMO_GPS_SIGMA_M = 10.0

_APP0, _APP1, _SOS = b"\xff\xe0", b"\xff\xe1", b"\xff\xda"


def replace_jpeg_exif(data: bytes, exif: Image.Exif) -> bytes:
    """The JPEG bytes with their EXIF (APP1) segment replaced, without re-encoding the image."""
    if data[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG file")
    payload = b"Exif\x00\x00" + exif.tobytes()
    segment = _APP1 + (len(payload) + 2).to_bytes(2, "big") + payload
    position, insert_at = 2, 2
    while position + 4 <= len(data) and data[position:position + 2] != _SOS:
        length = int.from_bytes(data[position + 2:position + 4], "big")
        marker_end = position + 2 + length
        if data[position:position + 2] == _APP1 and data[position + 4:position + 10] == b"Exif\x00\x00":
            return data[:position] + segment + data[marker_end:]
        if data[position:position + 2] == _APP0:      # keep JFIF first, EXIF right after it
            insert_at = marker_end
        position = marker_end
    return data[:insert_at] + segment + data[insert_at:]


def add_gps_noise(photo: str | os.PathLike, crs, sigma_m: float, rng: np.random.Generator) -> float:
    """Move a photo's EXIF GPS by Gaussian noise of `sigma_m` (metres, in `crs`) and record sigma as
    GPSHPositioningError; heading, focal length and time are kept. Returns the displacement in metres."""
    path = Path(photo)
    meta = read_exif(path)
    if not meta.has_position:
        raise ValueError(f"{path}: has no EXIF GPS position to perturb")
    x, y = lonlat_to_map(crs, meta.lon, meta.lat)
    dx, dy = rng.normal(0.0, sigma_m, 2)
    lon, lat = map_to_lonlat(crs, float(x) + dx, float(y) + dy)
    with Image.open(path) as image:
        original = image.getexif()
    exif = build_exif(lon=float(lon), lat=float(lat), heading_deg=meta.heading_deg or 0.0,
                      fov_deg=meta.fov_deg or 60.0, taken=meta.datetime_original, gps_error_m=sigma_m,
                      make=str(original.get(ExifTags.Base.Make, "")), model=str(original.get(ExifTags.Base.Model, "")))
    write_bytes_atomic(path, replace_jpeg_exif(path.read_bytes(), exif))
    return float(np.hypot(dx, dy))


def make_demo_scene(out: str | os.PathLike, force: bool = False, gps_sigma_m: float = DEMO_GPS_SIGMA_M
                    ) -> SceneExport:
    """Write the demo scene (map.tif, photos/ with noisy EXIF GPS, truth.geojson, truth.csv) into `out`."""
    world = generate_world(DEMO_BIOME, DEMO_SEED, size_m=DEMO_SIZE_M, resolution_m=DEMO_RESOLUTION_M)
    scene = export_scene(world, DEMO_PHOTOS, DEMO_SEED, out, force=force)
    rng = np.random.default_rng([DEMO_SEED, 0x6E5])
    for truth in scene.photos:
        add_gps_noise(Path(out) / SCENE_PHOTOS / truth.name, world.crs, gps_sigma_m, rng)
    return scene


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.synth.make_demo", description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--force", action="store_true", help="replace an existing folder")
    args = parser.parse_args(argv)
    scene = make_demo_scene(args.out, args.force)
    print(f"demo scene written to {scene.folder}: {len(scene.photos)} photos")
    return 0


if __name__ == "__main__":
    sys.exit(main())
