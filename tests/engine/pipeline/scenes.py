"""Small synthetic scenes and models shared by the index, pipeline and export tests (import the fixtures)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.warp import Resampling, calculate_default_transform, reproject

from engine.pipeline import Localizer, LocalizerConfig
from engine.synth.export import export_scene
from engine.synth.generate import generate_world
from engine.synth.photos import PhotoSpec
from tests.engine.model.conftest import small_model

SCENE_PHOTOS = 4


def make_scene(folder: Path):
    world = generate_world("suburban", 3, size_m=300.0, resolution_m=0.5)
    return export_scene(world, PhotoSpec(SCENE_PHOTOS, (50.0, 90.0), (192, 128), border_margin_m=50.0), 3, folder)


def write_coarse_map(path: Path, side_px: int = 4) -> Path:
    """A small 30 m/px UTM GeoTIFF of noise: far coarser than any model, so the index plan refuses it."""
    from affine import Affine
    with rasterio.open(path, "w", driver="GTiff", width=side_px, height=side_px, count=3, dtype="uint8",
                       crs="EPSG:32616", transform=Affine(30.0, 0, 500000, 0, -30.0, 3770000)) as dst:
        dst.write(np.random.default_rng(0).integers(0, 255, (3, side_px, side_px), dtype=np.uint8))
    return path


def geographic_copy(source: Path, target: Path) -> Path:
    """The map reprojected to EPSG:4326 (lon/lat degrees), nodata outside the warped footprint."""
    with rasterio.open(source) as src:
        transform, width, height = calculate_default_transform(src.crs, "EPSG:4326", src.width, src.height,
                                                               *src.bounds)
        profile = {"driver": "GTiff", "width": width, "height": height, "count": 3, "dtype": "uint8",
                   "crs": "EPSG:4326", "transform": transform, "nodata": 0, "compress": "deflate"}
        with rasterio.open(target, "w", **profile) as dst:
            for band in (1, 2, 3):
                reproject(rasterio.band(src, band), rasterio.band(dst, band), resampling=Resampling.bilinear)
    return target


@pytest.fixture(scope="session")
def scene(tmp_path_factory):
    return make_scene(tmp_path_factory.mktemp("scene") / "scene")


@pytest.fixture(scope="session")
def small_checkpoint(tmp_path_factory) -> Path:
    return small_model(seed=0).save(tmp_path_factory.mktemp("model") / "small.safetensors")


def small_localizer(checkpoint: Path, cache_dir: Path, **config) -> Localizer:
    return Localizer(checkpoint, device="cpu", config=LocalizerConfig(cache_dir=cache_dir, **config))


def truth_xy(scene, name: str) -> np.ndarray:
    truth = next(t for t in scene.photos if t.name == name)
    return np.array([truth.x, truth.y])
