"""Training/evaluation samples from CrossViewItems: images loaded, cropped and resized, with the CAFR targets.

A sample (dict) holds:
    ground            (3, Hg, Wg) float32 RGB in [0, 1]; a panorama is first cut to `panorama_fov_deg`
    satellite         (3, Hs, Ws) float32 RGB in [0, 1], north up (before rotation augmentation)
    overlap_mask      (Hs, Ws) float32: the photo's FoV sector on the tile (geometry.overlap_mask; inside 1,
                      outside 1e-4), or the exact synthetic overlap polygon with mask_source="exact";
                      all ones when the heading is unknown
    overlap_centre_px (2,) CWR target (x, y) in tile pixels (geometry.cwr_target); NaN when heading unknown
    camera_px         (2,) camera (x, y) in tile pixels, for the fine head
    heading_deg       () compass heading relative to the tile's north; NaN when unknown
    fov_deg           () horizontal FoV of the ground image (a panorama crop: its width in degrees)
    has_heading       () bool
    metres_per_px     () ground size of a tile pixel; NaN when the dataset does not give it
    satellite_window_px (4,) the window (x0, y0, width, height) cut from the satellite image, its pixels
    index             () position of the item in `items`;  item_id: str

The satellite window: with `metres_per_px` set and the item's resolution known, it spans the same ground
as a model tile; otherwise `tile_fraction` of the image (CVNAF public code: 373/384). Off-centre
augmentation moves the window inside the image so that the camera is not always at the tile centre.
An image that does not decode is reported by name (logged, listed in `skipped`) and its sample is None;
`collate_pairs` leaves such samples out of the batch.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from shapely import affinity
from torch.utils.data import Dataset, default_collate

from engine.data.augment import AugmentConfig, PairGeometry, offcentre_origin, photometric, random_geometric
from engine.data.datasets.base import IMAGE_ERRORS
from engine.data.datasets.panorama import choose_panorama_crop, crop_panorama
from engine.data.datasets.records import CrossViewItem, stable_item_key
from engine.data.errors import EmptyDatasetError, SkippedFile, UnusableItemError
from engine.data.geometry import cwr_target, overlap_mask, polygon_mask

logger = logging.getLogger(__name__)
MASK_SOURCES = ("sector", "exact")


@dataclass(frozen=True)
class PairConfig:
    """Sizes are (height, width) like the model's config; resolutions in metres per pixel."""

    ground_hw: tuple[int, int] = (256, 384)
    satellite_hw: tuple[int, int] = (256, 256)
    #: Ground resolution of the model tile; used where the item's satellite resolution is known.
    metres_per_px: float | None = None
    #: Otherwise the tile spans this fraction of the satellite image's shorter side.
    tile_fraction: float = 1.0
    #: FoV of the crops cut from panoramas (360 = the whole panorama, at a seeded orientation).
    panorama_fov_deg: float = 360.0
    crop_seed: int = 0
    random_orientation: bool = True
    mask_source: str = "sector"
    mask_supersample: int = 1

    def __post_init__(self) -> None:
        if self.mask_source not in MASK_SOURCES:
            raise ValueError(f"mask_source must be one of {MASK_SOURCES}, got {self.mask_source!r}")
        if not 0.0 < self.tile_fraction <= 1.0:
            raise ValueError(f"tile_fraction must be in (0, 1], got {self.tile_fraction}")
        if self.metres_per_px is not None and self.metres_per_px <= 0:
            raise ValueError(f"metres_per_px must be positive, got {self.metres_per_px}")
        if not 0.0 < self.panorama_fov_deg <= 360.0:
            raise ValueError(f"panorama_fov_deg must be in (0, 360], got {self.panorama_fov_deg}")


def load_rgb(path) -> np.ndarray:
    """An image file as an (H, W, 3) uint8 array; UnusableItemError naming the file if it does not decode."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except IMAGE_ERRORS as exc:
        raise UnusableItemError(path, f"unreadable image ({type(exc).__name__}: {exc})") from None


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1).float().div_(255.0)


def _resize(image: np.ndarray, size_wh: tuple[int, int], box=None) -> np.ndarray:
    return np.asarray(Image.fromarray(image).resize(size_wh, Image.Resampling.BILINEAR, box=box))


class CrossViewPairs(Dataset):
    """A torch Dataset of samples (see the module docstring) over reader items.

    Without `augment` a sample depends only on the item, the config and crop_seed (evaluation is
    repeatable). With `augment`, random choices come from a generator seeded by (seed, item, epoch):
    call set_epoch(e) at each epoch for fresh, still reproducible, augmentation and panorama crops.
    """

    def __init__(self, items: Sequence[CrossViewItem], config: PairConfig = PairConfig(),
                 augment: AugmentConfig | None = None, *, seed: int = 0) -> None:
        self.items = list(items)
        if not self.items:
            raise EmptyDatasetError("CrossViewPairs: no items to load")
        self.config = config
        self.augment = augment
        self.seed = int(seed)
        self.epoch = 0
        self.skipped: list[SkippedFile] = []
        self._reported: set = set()

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict | None:
        try:
            return self.sample(index)
        except UnusableItemError as exc:
            if (exc.path, exc.reason) not in self._reported:
                self._reported.add((exc.path, exc.reason))
                self.skipped.append(SkippedFile(exc.path, exc.reason))
                logger.warning("skipped sample %d: %s", index, exc)
            return None

    # ------------------------------------------------------------ building one sample
    def _ground(self, item: CrossViewItem) -> tuple[np.ndarray, float | None, float | None]:
        """Ground image (cropped when a panorama), its heading and FoV."""
        image = load_rgb(item.ground_path)
        if not item.is_panorama:
            return image, item.heading_deg, item.fov_deg
        crop = choose_panorama_crop(
            image.shape[1], self.config.panorama_fov_deg, self.config.crop_seed, item.item_id,
            item.north_x_fraction, epoch=self.epoch if self.augment is not None else 0,
            random_orientation=self.config.random_orientation)
        return crop_panorama(image, crop), crop.heading_deg, crop.fov_deg

    def _window(self, item: CrossViewItem, chip_wh: tuple[int, int], camera: tuple[float, float],
                rng: np.random.Generator) -> tuple[int, int, int, int]:
        """(x0, y0, width, height) of the satellite window, in pixels of the loaded image."""
        out_h, out_w = self.config.satellite_hw
        chip_w, chip_h = chip_wh
        fits = min(chip_w / out_w, chip_h / out_h)
        if self.config.metres_per_px is not None and item.metres_per_px is not None:
            loaded_mpp = item.metres_per_px / item.offset_scale(chip_wh)[0]
            scale = min(self.config.metres_per_px / loaded_mpp, fits)
        else:
            scale = self.config.tile_fraction * fits
        win_w, win_h = max(1, min(chip_w, round(out_w * scale))), max(1, min(chip_h, round(out_h * scale)))
        if self.augment is not None and rng.random() < self.augment.offcentre_prob:
            x0, y0 = offcentre_origin(chip_wh, (win_w, win_h), camera, self.augment.offcentre_fraction, rng)
        else:
            # centred in the image, shifted only as far as needed to keep the camera inside
            x0 = int(np.clip((chip_w - win_w) // 2, np.ceil(camera[0] - win_w), np.floor(camera[0])))
            y0 = int(np.clip((chip_h - win_h) // 2, np.ceil(camera[1] - win_h), np.floor(camera[1])))
            x0, y0 = int(np.clip(x0, 0, chip_w - win_w)), int(np.clip(y0, 0, chip_h - win_h))
        return x0, y0, win_w, win_h

    def sample(self, index: int) -> dict:
        """The sample of item `index`; raises UnusableItemError when its files cannot be used."""
        item = self.items[index]
        config = self.config
        rng = np.random.default_rng([self.seed, stable_item_key(item.item_id), self.epoch])
        ground, heading, fov = self._ground(item)
        chip = load_rgb(item.satellite_path)
        chip_wh = (chip.shape[1], chip.shape[0])
        camera = item.camera_px(chip_wh)
        x0, y0, win_w, win_h = self._window(item, chip_wh, camera, rng)
        out_h, out_w = config.satellite_hw
        zoom_x, zoom_y = out_w / win_w, out_h / win_h
        camera_tile = ((camera[0] - x0) * zoom_x, (camera[1] - y0) * zoom_y)
        if not (0.0 <= camera_tile[0] <= out_w and 0.0 <= camera_tile[1] <= out_h):
            raise UnusableItemError(item.satellite_path, f"camera {camera} lies outside the satellite image")
        satellite = _resize(chip, (out_w, out_h), box=(x0, y0, x0 + win_w, y0 + win_h))
        ground = _resize(ground, (config.ground_hw[1], config.ground_hw[0]))

        has_heading = heading is not None and fov is not None
        if config.mask_source == "exact" and item.overlap_px is not None:
            sx, sy = item.offset_scale(chip_wh)
            region = affinity.affine_transform(
                item.overlap_px, [sx * zoom_x, 0.0, 0.0, sy * zoom_y, -x0 * zoom_x, -y0 * zoom_y])
            mask = polygon_mask((out_w, out_h), region, supersample=config.mask_supersample)
        elif has_heading:
            mask = overlap_mask((out_w, out_h), camera_tile, heading, fov,
                                supersample=config.mask_supersample)
        else:
            mask = np.ones((out_h, out_w), dtype=np.float32)
        target = cwr_target((out_w, out_h), camera_tile, heading) if has_heading else None

        pair = PairGeometry(_to_tensor(ground), _to_tensor(satellite), torch.from_numpy(mask), camera_tile,
                            target, heading if has_heading else None, fov)
        if self.augment is not None:
            pair = random_geometric(pair, rng, self.augment)
            pair = PairGeometry(photometric(pair.ground, rng, self.augment),
                                photometric(pair.satellite, rng, self.augment), pair.mask, pair.camera_px,
                                pair.cwr_target_px, pair.heading_deg, pair.fov_deg)

        metres = np.nan
        if item.metres_per_px is not None:
            metres = item.metres_per_px / item.offset_scale(chip_wh)[0] / zoom_x
        nan2 = (np.nan, np.nan)
        return {
            "ground": pair.ground.contiguous(),
            "satellite": pair.satellite.contiguous(),
            "overlap_mask": pair.mask.contiguous().float(),
            "overlap_centre_px": torch.tensor(pair.cwr_target_px or nan2, dtype=torch.float32),
            "camera_px": torch.tensor(pair.camera_px, dtype=torch.float32),
            "heading_deg": torch.tensor(np.nan if pair.heading_deg is None else pair.heading_deg,
                                        dtype=torch.float32),
            "fov_deg": torch.tensor(np.nan if fov is None else fov, dtype=torch.float32),
            "has_heading": torch.tensor(pair.heading_deg is not None),
            "metres_per_px": torch.tensor(metres, dtype=torch.float32),
            "satellite_window_px": torch.tensor([x0, y0, win_w, win_h], dtype=torch.float32),
            "index": torch.tensor(index, dtype=torch.int64),
            "item_id": item.item_id,
        }


def collate_pairs(batch: list[dict | None]) -> dict | None:
    """default_collate over the usable samples; None when none of the batch could be loaded."""
    usable = [sample for sample in batch if sample is not None]
    return default_collate(usable) if usable else None
