"""Pose estimation on held-out synthetic worlds: the GPS prior alone, the non-learned colour BEV baseline, the
previous CAFR fine head and the new PoseNet, side by side on the same photos and the same noisy priors.

Worlds: every biome, seeds from HELD_OUT_FIRST_SEED (never used in training), written as GeoTIFF scenes at
two cell sizes (0.5 and 0.3 m) and read back through MapRaster like any map. Photos FoV 40-110 degrees; FoV
from their EXIF; eye height unknown to the engine. Priors: GPS sigma 10 and 25 m (search +-3 sigma), with and
without a compass prior (sigma 15 degrees). Image only: exhaustive pose search over 1 km maps.

Environment: VIEWFINDER_POSE_MODEL (checkpoint, default the shipped one), VIEWFINDER_POSE_PREVIOUS_MODEL (an
earlier PoseNet checkpoint run as one more arm on the same photos; unset: no such arm),
VIEWFINDER_BENCH_POSE_PHOTOS (photos per world, default 10), VIEWFINDER_BENCH_POSE_IMAGE_ONLY (photos per
1 km map, default 8; 0 skips).
"""
from __future__ import annotations

import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from shapely.geometry import Point

from engine.data.geometry import map_to_lonlat
from engine.geo.photo import load_photo
from engine.geo.priors import PriorOverrides, resolve_priors
from engine.geo.raster import MapRaster
from engine.pipeline import Localizer, LocalizerConfig
from engine.pipeline.pose_matchers import PhotoInput
from engine.pipeline.pose_model import COLOUR_BASELINE, load_pose_matcher
from engine.pipeline.pose_search import HeadingPriorDeg, PoseSearch, PositionPriorXY, prior_window
from engine.pipeline.pose_volume import summarise
from engine.synth.biomes.registry import biome_names
from engine.synth.export import export_scene
from engine.synth.export.scene import SCENE_PHOTOS
from engine.synth.generate import generate_world
from engine.synth.photos import PhotoSpec
from engine.train.pose_data import HELD_OUT_FIRST_SEED

THREADS = 2
SIGMAS_M = (10.0, 25.0)
COMPASS_SIGMA_DEG = 15.0
WORLD_SIZE_M = 400.0
RESOLUTIONS_M = (0.5, 0.3)
IMAGE_ONLY_SIZE_M = 1000.0
POSITION_RECALL_M = (1, 3, 5, 10)
HEADING_RECALL_DEG = (5, 10)
GPS_ARM, COLOUR_ARM, CAFR_ARM = "GPS alone", "colour BEV (non-learned)", "CAFR fine head (previous)"
PREVIOUS_ARM, NEW_ARM = "PoseNet (previous)", "PoseNet (new)"
ARMS = (GPS_ARM, COLOUR_ARM, CAFR_ARM, PREVIOUS_ARM, NEW_ARM)     # table order
#: pose arms scored by a PoseSearch: arm label -> key of the search
POSE_ARMS = ((COLOUR_ARM, "colour"), (PREVIOUS_ARM, "previous"), (NEW_ARM, "learned"))


def _scenes(work: Path, photos: int):
    for b, biome in enumerate(biome_names()):
        for r, resolution in enumerate(RESOLUTIONS_M):
            seed = HELD_OUT_FIRST_SEED + 10 * b + r
            world = generate_world(biome, seed, size_m=WORLD_SIZE_M, resolution_m=resolution)
            spec = PhotoSpec(photos, (40.0, 110.0), (512, 384) if r else (384, 256), border_margin_m=40.0)
            yield biome, export_scene(world, spec, seed, work / f"{biome}-{seed}"), world


def _photo_input(path: Path, eye_height_m: float) -> tuple[PhotoInput, float | None]:
    photo = load_photo(path)
    priors = resolve_priors(photo.exif, PriorOverrides(use_exif_position=False, use_exif_heading=False))
    fov = priors.fov_deg if priors.fov_deg is not None else 65.0
    return PhotoInput(photo.rgb, float(fov), eye_height_m), priors.fov_deg


def _heading_error(a: float, b: float) -> float:
    return abs((a - b + 180.0) % 360.0 - 180.0)


def _row(label: str, errors: list[float], heading_errors: list[float], covered: list[bool], ms: list[float]
         ) -> dict:
    e = np.asarray(errors, dtype=float)
    h = np.asarray(heading_errors, dtype=float)
    row = {"arm": label, "photos": len(e), "median m": float(np.median(e))}
    row.update({f"<= {t} m %": 100.0 * float((e <= t).mean()) for t in POSITION_RECALL_M})
    if h.size and np.isfinite(h).all():
        row["heading median deg"] = float(np.median(h))
        row.update({f"heading <= {t} deg %": 100.0 * float((h <= t).mean()) for t in HEADING_RECALL_DEG})
    if covered:
        row["95 % region holds truth %"] = 100.0 * float(np.mean(covered))
    if ms:
        row["ms / photo"] = float(np.median(ms))
    return row


def _run_pose_arm(search: PoseSearch, raster: MapRaster, photo: PhotoInput, truth, prior: PositionPriorXY,
                  heading: HeadingPriorDeg | None, scored_cache: dict, key) -> tuple[float, float, bool, float,
                                                                                       float]:
    if key not in scored_cache:      # the same volume serves the runs with and without a compass
        start = time.perf_counter()
        scored_cache[key] = (search.score(raster, photo, [prior_window(prior)]), time.perf_counter() - start)
    scored, score_s = scored_cache[key]
    start = time.perf_counter()
    posterior, profile = search.posterior(scored, prior, heading)
    summary = summarise(posterior, profile)
    ms = (score_s + time.perf_counter() - start) * 1000.0
    error = math.hypot(summary.x - truth.x, summary.y - truth.y)
    region = summary.credible_region
    covered = bool(region is not None and region.buffer(1e-6).contains(Point(truth.x, truth.y)))
    return error, _heading_error(summary.heading_deg, truth.heading_deg), covered, ms, summary.confidence


def run() -> list[dict]:
    torch.set_num_threads(THREADS)
    photos_per_world = int(os.environ.get("VIEWFINDER_BENCH_POSE_PHOTOS", "10"))
    image_only_photos = int(os.environ.get("VIEWFINDER_BENCH_POSE_IMAGE_ONLY", "8"))
    model_source = os.environ.get("VIEWFINDER_POSE_MODEL") or None
    learned, learned_name = load_pose_matcher(model_source)
    colour, _ = load_pose_matcher(COLOUR_BASELINE)
    searches = {"colour": PoseSearch(colour), "learned": PoseSearch(learned)}
    previous_source = os.environ.get("VIEWFINDER_POSE_PREVIOUS_MODEL")
    previous_text = ""
    if previous_source:
        previous, _ = load_pose_matcher(previous_source)
        searches["previous"] = PoseSearch(previous)
        previous_text = f" PoseNet (previous): {Path(previous_source).name}."
    eye = learned.config.eye_height_m
    cafr = Localizer(config=LocalizerConfig(pose=False, use_cache=False, score_surface=False))
    rng = np.random.default_rng(2024)

    # results[(sigma, compass)][biome][arm] -> lists
    results: dict = {}
    reliability: list[tuple[float, bool]] = []
    with tempfile.TemporaryDirectory(prefix="vf-bench-pose-") as tmp:
        for biome, scene, world in _scenes(Path(tmp), photos_per_world):
            raster = MapRaster(scene.map_path)
            gallery = cafr.index_map(scene.map_path)
            for truth in scene.photos:
                path = scene.folder / SCENE_PHOTOS / truth.name
                photo, _ = _photo_input(path, eye)
                scored_cache: dict = {}
                for sigma in SIGMAS_M:
                    dx, dy = rng.normal(0.0, sigma, 2)
                    prior = PositionPriorXY(truth.x + dx, truth.y + dy, sigma)
                    compass = HeadingPriorDeg((truth.heading_deg + rng.normal(0.0, COMPASS_SIGMA_DEG)) % 360.0,
                                              COMPASS_SIGMA_DEG)
                    lon, lat = map_to_lonlat(world.crs, prior.x, prior.y)
                    for use_compass in (False, True):
                        bucket = results.setdefault((sigma, use_compass), {}).setdefault(biome, {})
                        heading = compass if use_compass else None

                        def add(arm, error, herr, covered=None, ms=None, bucket=bucket):
                            entry = bucket.setdefault(arm, {"e": [], "h": [], "c": [], "ms": []})
                            entry["e"].append(error)
                            entry["h"].append(herr)
                            if covered is not None:
                                entry["c"].append(covered)
                            if ms is not None:
                                entry["ms"].append(ms)

                        add(GPS_ARM, math.hypot(dx, dy),
                            _heading_error(compass.heading_deg, truth.heading_deg) if use_compass else math.nan)
                        for arm, name in POSE_ARMS:
                            if name not in searches:
                                continue
                            error, herr, covered, ms, confidence = _run_pose_arm(
                                searches[name], raster, photo, truth, prior, heading, scored_cache, (name, sigma))
                            add(arm, error, herr, covered, ms)
                            if name == "learned" and sigma == SIGMAS_M[0] and not use_compass:
                                reliability.append((confidence, error <= 5.0))
                        if use_compass:
                            continue     # the previous pipeline is slow; it runs without a compass only
                        start = time.perf_counter()
                        overrides = PriorOverrides(lonlat=(float(lon), float(lat)), radius_m=3 * sigma,
                                                   use_exif_position=False, use_exif_heading=False)
                        old = cafr.localize(path, gallery, overrides)
                        best = old.best
                        add(CAFR_ARM, math.hypot(best.position.x - truth.x, best.position.y - truth.y),
                            _heading_error(best.heading_deg, truth.heading_deg), None,
                            (time.perf_counter() - start) * 1000.0)
            raster.close()
        image_only = _image_only(searches["learned"], Path(tmp), image_only_photos, eye) if image_only_photos else []

    sections = []
    for (sigma, use_compass), by_biome in results.items():
        rows = []
        for biome in biome_names():
            for arm in ARMS:
                entry = by_biome.get(biome, {}).get(arm)
                if entry:
                    h = entry["h"] if (arm != GPS_ARM or use_compass) else []
                    rows.append({"biome": biome, **_row(arm, entry["e"], h, entry["c"], entry["ms"])})
        for arm in ARMS:
            entries = [by_biome[b][arm] for b in biome_names() if arm in by_biome.get(b, {})]
            if not entries:
                continue
            medians = [float(np.median(e["e"])) for e in entries]
            within5 = [100.0 * float((np.asarray(e["e"]) <= 5).mean()) for e in entries]
            rows.append({"biome": "mean over biomes", "arm": arm, "median m": float(np.mean(medians)),
                         "<= 5 m %": float(np.mean(within5))})
        compass_text = f"compass prior sigma {COMPASS_SIGMA_DEG:.0f} deg" if use_compass else "no compass prior"
        sections.append({
            "section": f"Pose: GPS prior sigma {sigma:.0f} m, {compass_text}", "rows": rows,
            "notes": (f"PoseNet (new): {learned_name}.{previous_text} Held-out worlds {WORLD_SIZE_M:.0f} m, cells "
                      f"{' and '.join(str(r) for r in RESOLUTIONS_M)} m, {photos_per_world} photos each; "
                      f"search +-3 sigma around the noisy prior, 64 headings; GPS alone is the prior's centre. "
                      f"ms / photo for the pose arms is the pose search only (score volume + posterior); for the "
                      f"previous CAFR pipeline the whole localisation (it runs without a compass only).")})
    sections.append(_reliability_section(reliability))
    if image_only:
        sections.append({"section": "Pose: image only, exhaustive search over 1 km maps", "rows": image_only,
                         "notes": "No prior at all: every placement of the map and 64 headings; top-1 = the "
                                  "posterior's arg-max."})
    return sections


def _reliability_section(pairs: list[tuple[float, bool]]) -> dict:
    rows = []
    edges = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0001]
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = [(c, ok) for c, ok in pairs if lo <= c < hi]
        if inside:
            rows.append({"confidence bin": f"{lo:.1f}-{min(hi, 1.0):.1f}", "photos": len(inside),
                         "mean confidence": float(np.mean([c for c, _ in inside])),
                         "share within 5 m": float(np.mean([ok for _, ok in inside]))})
    return {"section": "Pose: reliability of the confidence (PoseNet, GPS sigma 10 m, no compass)", "rows": rows,
            "notes": "confidence = posterior mass within 5 m of the answer; calibrated when it matches the share."}


def _image_only(search: PoseSearch, work: Path, photos: int, eye: float) -> list[dict]:
    rows = []
    for b, biome in enumerate(biome_names()):
        seed = HELD_OUT_FIRST_SEED + 500 + b
        world = generate_world(biome, seed, size_m=IMAGE_ONLY_SIZE_M, resolution_m=0.5)
        scene = export_scene(world, PhotoSpec(photos, (40.0, 110.0), (384, 256), border_margin_m=40.0), seed,
                             work / f"image-only-{biome}")
        raster = MapRaster(scene.map_path)
        errors, ms = [], []
        for truth in scene.photos:
            photo, _ = _photo_input(scene.folder / SCENE_PHOTOS / truth.name, eye)
            start = time.perf_counter()
            result = search.search(raster, photo, [raster.bounds])
            ms.append((time.perf_counter() - start) * 1000.0)
            errors.append(math.hypot(result.summary.x - truth.x, result.summary.y - truth.y))
        raster.close()
        e = np.asarray(errors)
        rows.append({"biome": biome, "photos": len(e), "top-1 within 25 m %": 100.0 * float((e <= 25).mean()),
                     "top-1 within 50 m %": 100.0 * float((e <= 50).mean()), "median m": float(np.median(e)),
                     "s / photo": float(np.median(ms)) / 1000.0})
    return rows
