"""A scene: the map GeoTIFF, a folder of ground photos with EXIF, and the truth as GeoJSON + CSV."""
from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path

from engine.atomic import write_text_atomic
from engine.geo.geojson import write_geojson
from engine.geo.geotiff import write_geotiff
from engine.synth.export.common import (
    ProgressCallback,
    orthophoto_of,
    save_photo,
    truth_frame,
    world_name,
    world_summary,
    write_json,
)
from engine.synth.export.staging import staged_output_folder
from engine.synth.photos import PhotoSpec, PhotoTruth, generate_photos
from engine.synth.world import World

SCENE_MAP = "map.tif"
SCENE_PHOTOS = "photos"
SCENE_TRUTH = "truth.geojson"
SCENE_TRUTH_CSV = "truth.csv"
SCENE_META = "scene.json"


@dataclass(frozen=True)
class SceneExport:
    folder: Path
    map_path: Path
    photos: list[PhotoTruth]


def _truth_csv(truths: list[PhotoTruth]) -> str:
    buffer = io.StringIO()
    rows = [t.properties() for t in truths]
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def export_scene(world: World, spec: PhotoSpec, seed: int, out: str | os.PathLike, *, force: bool = False,
                 progress: ProgressCallback | None = None) -> SceneExport:
    """Write map.tif, photos/*.jpg, truth.geojson, truth.csv and scene.json into `out` (atomically)."""
    out = Path(out)
    with staged_output_folder(out, force) as staging:
        if progress:
            progress("orthophoto", 0, 1)
        write_geotiff(staging / SCENE_MAP, orthophoto_of(world), world.transform, world.crs)
        if progress:
            progress("orthophoto", 1, 1)
        (staging / SCENE_PHOTOS).mkdir()
        truths = []
        step = (lambda done, total: progress("photos", done, total)) if progress else None
        for truth, image in generate_photos(world, spec, seed, name_prefix=world_name(world), progress=step):
            save_photo(staging / SCENE_PHOTOS / truth.name, image, truth)
            truths.append(truth)
        write_geojson(truth_frame(truths, world), staging / SCENE_TRUTH)
        write_text_atomic(staging / SCENE_TRUTH_CSV, _truth_csv(truths))
        write_json(staging / SCENE_META, {
            "layout": "scene", "world": world_summary(world), "photo_seed": seed, "photos": len(truths),
            "fov_range": list(spec.fov_range), "photo_size": list(spec.size),
            "overlap_range_m": spec.overlap_range_m, "map": SCENE_MAP, "truth": SCENE_TRUTH})
    return SceneExport(out, out / SCENE_MAP, truths)
