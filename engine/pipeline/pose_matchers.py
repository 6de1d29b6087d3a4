"""The two ground-plane matchers the pose search can use, behind one small interface:

- LearnedMatcher: PoseNet (learned BEV and map features, camera-model lifting).
- ColourMatcher: the non-learned baseline (the photo's colours on the flat ground, masked NCC).

Both turn a map window (RGB at the model's input resolution) into features on the BEV grid, a photo into a
template, and (template, map features, headings) into a (K, A, B) score volume; `temperature` turns scores
into log-likelihoods (calibrated on held-out worlds when the model was shipped).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from engine.model.colour_bev import colour_bev, colour_score_volume
from engine.model.pose_geometry import BevGrid, rotate_templates, rotation_grids
from engine.model.pose_net import PoseConfig, PoseNet, photo_tensor

COLOUR_METHOD, LEARNED_METHOD = "colour-bev", "posenet"
#: The colour baseline's view: 32 m (a longer reach measured no better for flat colours, and costs 2.25x)
COLOUR_GRID = BevGrid.reaching(64)


@dataclass
class PhotoInput:
    rgb: np.ndarray                 # (H, W, 3) uint8, the photo as taken (after EXIF orientation)
    fov_deg: float
    eye_height_m: float


def _original_wh(photo: PhotoInput) -> torch.Tensor:
    return torch.tensor([[photo.rgb.shape[1], photo.rgb.shape[0]]], dtype=torch.float32)


class LearnedMatcher:
    method = LEARNED_METHOD

    def __init__(self, model: PoseNet) -> None:
        self.model = model.eval()
        self.config: PoseConfig = model.config
        self.temperature = float(model.metadata.get("calibration", {}).get("temperature", 1.0))

    @property
    def grid(self) -> BevGrid:
        return self.config.grid

    def map_features(self, rgb: np.ndarray) -> torch.Tensor:
        image = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None]
        return self.model.map_features(*self.model.map_trunk_features(image))

    def template(self, photo: PhotoInput):
        image = photo_tensor(photo.rgb, self.config.ground_hw)[None]
        f8, f16 = self.model.ground_trunk_features(image)
        return self.model.ground_bev(f8, f16, torch.tensor([photo.fov_deg]), _original_wh(photo),
                                     torch.tensor([photo.eye_height_m]))

    def scores(self, template, map_features: torch.Tensor, headings: torch.Tensor) -> torch.Tensor:
        return self.model.score_volume(template, map_features, headings)[0]


class ColourMatcher:
    method = COLOUR_METHOD

    def __init__(self, grid: BevGrid | None = None, map_metres_per_pixel: float = 0.5,
                 ground_hw: tuple[int, int] = (192, 288), temperature: float = 0.05) -> None:
        self.grid = grid or COLOUR_GRID
        self.config = PoseConfig(ground_hw=ground_hw, map_metres_per_pixel=map_metres_per_pixel, grid=self.grid)
        self.temperature = temperature

    def map_features(self, rgb: np.ndarray) -> torch.Tensor:
        image = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 255.0
        factor = round(self.grid.cell_m / self.config.map_metres_per_pixel)
        return F.avg_pool2d(image, factor)

    def template(self, photo: PhotoInput):
        image = photo_tensor(photo.rgb, self.config.ground_hw)[None].float() / 255.0
        return colour_bev(image, torch.tensor([photo.fov_deg]), self.grid, torch.tensor([photo.eye_height_m]),
                          _original_wh(photo))

    def scores(self, template, map_features: torch.Tensor, headings: torch.Tensor) -> torch.Tensor:
        rgb, mask = template
        return colour_score_volume(rgb, mask, map_features, headings)[0]


def bev_picture(photo: PhotoInput, heading_deg: float, grid: BevGrid, ground_hw: tuple[int, int] = (192, 288)
                ) -> np.ndarray:
    """The photo's colours on the flat ground, turned north-up at `heading_deg`: (S, S, 4) RGBA uint8."""
    image = photo_tensor(photo.rgb, ground_hw)[None].float() / 255.0
    rgb, mask = colour_bev(image, torch.tensor([photo.fov_deg]), grid, torch.tensor([photo.eye_height_m]),
                           _original_wh(photo))
    grids = rotation_grids(torch.tensor([float(heading_deg)]), grid.size_cells)
    turned = rotate_templates(torch.cat([rgb, mask], 1), grids)[0, 0]          # (4, S, S)
    rgba = turned.permute(1, 2, 0).numpy().copy()
    rgba[..., 3] = (rgba[..., 3] > 0.5) * 0.85
    return (rgba.clip(0, 1) * 255 + 0.5).astype(np.uint8)
