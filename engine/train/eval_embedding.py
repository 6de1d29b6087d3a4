"""The embedding passes of an evaluation: gallery tiles cut like untransformed training samples, and the
queries (descriptor, fine-head pose, CWR point) with their truth, moved off the tile centre where asked.

Gallery tiles are cut from each satellite image centred, at the model's ground resolution, the way
training samples are without augmentation, so a CVNAF query's positive tile is exactly its own chip.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from engine.data.augment import AugmentConfig
from engine.data.datasets.base import IMAGE_ERRORS
from engine.data.datasets.records import CrossViewItem
from engine.data.errors import EmptyDatasetError
from engine.data.pairs import CrossViewPairs, PairConfig, collate_pairs, load_rgb
from engine.progress import CancelToken, ProgressCallback
from engine.train.eval_config import EvalConfig
from engine.train.loading import loadable


@dataclass(frozen=True)
class GalleryTile:
    path: Path
    city: str | None
    #: Native metres per pixel and size of the image as the layout defines it (None when unknown).
    metres_per_px: float | None = None
    native_size_px: tuple[int, int] | None = None


def gallery_window(image_wh: tuple[int, int], config: PairConfig, native_metres_per_px: float | None,
                   native_size_px: tuple[int, int] | None) -> tuple[int, int, int, int]:
    """(x0, y0, width, height) of the centred tile window, sized like CrossViewPairs sizes its windows."""
    out_h, out_w = config.satellite_hw
    image_w, image_h = image_wh
    fits = min(image_w / out_w, image_h / out_h)
    if config.metres_per_px is not None and native_metres_per_px is not None:
        scale_x = image_w / native_size_px[0] if native_size_px else 1.0
        scale = min(config.metres_per_px / (native_metres_per_px / scale_x), fits)
    else:
        scale = config.tile_fraction * fits
    width = max(1, min(image_w, round(out_w * scale)))
    height = max(1, min(image_h, round(out_h * scale)))
    return (image_w - width) // 2, (image_h - height) // 2, width, height


class GalleryTiles(Dataset):
    """Model-ready satellite tiles (3, H, W) in [0, 1]; an unreadable image gives None (left out)."""

    def __init__(self, tiles: Sequence[GalleryTile], config: PairConfig) -> None:
        self.tiles = list(tiles)
        self.config = config

    def __len__(self) -> int:
        return len(self.tiles)

    def __getitem__(self, index: int) -> dict | None:
        tile = self.tiles[index]
        try:
            image = load_rgb(tile.path)
        except (ValueError, *IMAGE_ERRORS):   # UnusableItemError is a ValueError
            return None
        x0, y0, width, height = gallery_window((image.shape[1], image.shape[0]), self.config,
                                               tile.metres_per_px, tile.native_size_px)
        out_h, out_w = self.config.satellite_hw
        resized = Image.fromarray(image).resize((out_w, out_h), Image.Resampling.BILINEAR,
                                                box=(x0, y0, x0 + width, y0 + height))
        tensor = torch.from_numpy(np.array(resized, dtype=np.uint8)).permute(2, 0, 1).float().div_(255.0)
        return {"satellite": tensor, "index": torch.tensor(index, dtype=torch.int64)}


def gallery_tiles(items: Sequence[CrossViewItem], gallery_paths: Sequence[Path]) -> list[GalleryTile]:
    """Gallery entries with the city and native resolution the items know for each path (VIGOR tiles that
    no query uses get the resolution of their city's other tiles)."""
    by_path: dict[Path, CrossViewItem] = {}
    for item in items:
        by_path.setdefault(Path(item.satellite_path), item)
        for semi in item.semi_positives:
            by_path.setdefault(Path(semi.path), item)
    city_resolution = {item.city: (item.metres_per_px, item.satellite_size_px) for item in items}
    cities = {item.city for item in items}
    tiles = []
    for path in gallery_paths:
        path = Path(path)
        item = by_path.get(path)
        if item is not None:
            tiles.append(GalleryTile(path, item.city, item.metres_per_px, item.satellite_size_px))
            continue
        city = path.parent.parent.name if path.parent.parent.name in cities else None
        mpp, size = city_resolution.get(city, (None, None))
        tiles.append(GalleryTile(path, city, mpp, size))
    return tiles


def offcentre_only(fraction: float) -> AugmentConfig:
    """An augmentation that only moves the camera off the tile centre (within `fraction` of the tile)."""
    return AugmentConfig(flip_prob=0.0, rotate_prob=0.0, offcentre_prob=1.0, offcentre_fraction=fraction,
                         colour_jitter=0.0, hue_jitter=0.0, blur_sharpen_prob=0.0, jpeg_prob=0.0,
                         dropout_prob=0.0)


def _loader(dataset: Dataset, config: EvalConfig) -> DataLoader:
    return DataLoader(loadable(dataset, config.num_workers), batch_size=config.batch_size, shuffle=False,
                      num_workers=config.num_workers, collate_fn=collate_pairs)


def embed_gallery(model, tiles: list[GalleryTile], pair_config: PairConfig, config: EvalConfig,
                  progress: ProgressCallback | None, cancel: CancelToken | None) -> tuple[torch.Tensor, np.ndarray]:
    """(descriptor per tile, whether the tile could be read); unread tiles keep a zero descriptor."""
    descriptors = torch.zeros(len(tiles), model.config.descriptor_dim)
    ok = np.zeros(len(tiles), dtype=bool)
    done = 0
    with torch.inference_mode():
        for batch in _loader(GalleryTiles(tiles, pair_config), config):
            if cancel is not None:
                cancel.raise_if_cancelled()
            if batch is not None:
                index = batch["index"]
                embedding = model.embed_satellite(batch["satellite"], with_pyramid=False)
                descriptors[index] = embedding.descriptor.float().cpu()
                ok[index.numpy()] = True
                done += len(index)
            if progress is not None:
                progress("gallery tiles", min(done, len(tiles)), len(tiles))
    if progress is not None:
        progress("gallery tiles", len(tiles), len(tiles))
    return descriptors, ok


def embed_queries(model, items: list[CrossViewItem], pair_config: PairConfig, config: EvalConfig,
                  progress: ProgressCallback | None, cancel: CancelToken | None) -> dict[str, np.ndarray]:
    """Per loaded query (rows in loading order, "index" into `items`): descriptor, FoV, heading, truth and
    the model's fine-head pose and CWR point, in tile pixels."""
    augment = offcentre_only(config.offcentre_fraction) if config.offcentre_fraction > 0 else None
    pairs = CrossViewPairs(items, pair_config, augment, seed=config.seed)
    parts: dict[str, list] = {key: [] for key in (
        "index", "descriptor", "fov", "camera_px", "fine_px", "metres_per_px", "cwr_target_px", "cwr_px",
        "heading", "fine_heading", "tile_wh")}
    done = 0
    level = config.cwr_level
    with torch.inference_mode():
        for batch in _loader(pairs, config):
            if cancel is not None:
                cancel.raise_if_cancelled()
            if batch is None:
                continue
            ground = model.embed_ground(batch["ground"])
            satellite = model.embed_satellite(batch["satellite"])
            attention = model.attend(ground, satellite)
            fine = model.localize_fine(ground, satellite)
            if not -len(attention.strides) <= level < len(attention.strides):
                raise ValueError(f"cwr_level {level} does not exist; the model has {len(attention.strides)} levels")
            tile_h, tile_w = batch["satellite"].shape[-2:]
            parts["index"].append(batch["index"].numpy())
            parts["descriptor"].append(ground.descriptor.float().cpu())
            parts["fov"].append(batch["fov_deg"].numpy())
            parts["camera_px"].append(batch["camera_px"].numpy())
            parts["fine_px"].append(fine.position_px.float().cpu().numpy())
            parts["metres_per_px"].append(batch["metres_per_px"].numpy())
            parts["cwr_target_px"].append(batch["overlap_centre_px"].numpy())
            parts["cwr_px"].append(attention.points_px[:, level].float().cpu().numpy())
            parts["heading"].append(batch["heading_deg"].numpy())
            parts["fine_heading"].append(fine.heading_deg.float().cpu().numpy())
            parts["tile_wh"].append(np.tile([tile_w, tile_h], (len(batch["index"]), 1)))
            done += len(batch["index"])
            if progress is not None:
                progress("queries", done, len(items))
    if not parts["index"]:
        raise EmptyDatasetError("evaluate: no query could be loaded")
    return {key: (torch.cat(value) if key == "descriptor" else np.concatenate(value))
            for key, value in parts.items()}
