"""A CVNAF-layout dataset: one folder per world ("city"), chips centred on each camera, CVNAF CSVs.

CSV columns (no header): name, longitude, latitude, fov, compass, city, ground path, satellite path, the
paths relative to the dataset root. Exact truth (occlusion-aware overlap polygons) goes beside the CSVs in
truth.geojson, and the chip geometry in dataset.json; CVNAF readers can ignore both.
"""
from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from PIL import Image

from engine.atomic import write_bytes_atomic, write_text_atomic
from engine.geo.geojson import write_geojson
from engine.geo.geotiff import write_geotiff
from engine.synth.export.common import (
    ProgressCallback,
    crop_chip,
    orthophoto_of,
    save_photo,
    split_indices,
    truth_frame,
    world_name,
    world_summary,
    write_json,
)
from engine.synth.export.staging import staged_output_folder
from engine.synth.photos import PhotoSpec, generate_photos
from engine.synth.world import World

TRAIN_CSV = "img_info_train.csv"
EVAL_CSV = "img_info_eval.csv"


def _jpeg_bytes(image, quality: int = 95) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _csv_text(rows: list[list]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def export_cvnaf(worlds: list[World], spec: PhotoSpec, seed: int, out: str | os.PathLike, *,
                 chip_px: int = 384, chip_metres_per_px: float | None = None, eval_fraction: float = 0.2,
                 force: bool = False, progress: ProgressCallback | None = None) -> Path:
    """Write a CVNAF-layout dataset with `spec.count` photos per world; returns the dataset root."""
    out = Path(out)
    with staged_output_folder(out, force) as root:
        cities = []
        for world_index, world in enumerate(worlds):
            city = world_name(world)
            chip_mpp = chip_metres_per_px or world.resolution_m
            (root / city / "ground").mkdir(parents=True)
            (root / city / "satellite").mkdir()
            ortho = orthophoto_of(world)
            write_geotiff(root / city / "map.tif", ortho, world.transform, world.crs)
            margin = max(spec.border_margin_m, chip_px * chip_mpp / 2.0)
            world_spec = PhotoSpec(spec.count, spec.fov_range, spec.size, margin, spec.overlap_range_m)
            step = (lambda d, t, c=city: progress(f"photos {c}", d, t)) if progress else None
            truths, rows = [], []
            for truth, image in generate_photos(world, world_spec, seed + world_index, city, progress=step):
                ground_rel = f"{city}/ground/{truth.name}"
                sat_rel = f"{city}/satellite/{Path(truth.name).stem}_sat.jpg"
                save_photo(root / ground_rel, image, truth)
                chip = crop_chip(ortho, world, truth.x, truth.y, chip_px, chip_mpp)
                write_bytes_atomic(root / sat_rel, _jpeg_bytes(chip))
                rows.append([Path(truth.name).stem, f"{truth.lon:.8f}", f"{truth.lat:.8f}",
                             f"{truth.fov_deg:.3f}", f"{truth.heading_deg:.3f}", city, ground_rel, sat_rel])
                truths.append(truth)
            is_eval = split_indices(len(rows), eval_fraction, seed + world_index)
            write_text_atomic(root / city / TRAIN_CSV, _csv_text([r for r, e in zip(rows, is_eval) if not e]))
            write_text_atomic(root / city / EVAL_CSV, _csv_text([r for r, e in zip(rows, is_eval) if e]))
            write_geojson(truth_frame(truths, world), root / city / "truth.geojson")
            cities.append({**world_summary(world), "chip_px": chip_px, "chip_metres_per_px": chip_mpp,
                           "train": int((~is_eval).sum()), "eval": int(is_eval.sum())})
        write_json(root / "dataset.json", {"layout": "cvnaf", "generator": "viewfinder synth", "seed": seed,
                                           "fov_range": list(spec.fov_range), "cities": cities})
    return out
