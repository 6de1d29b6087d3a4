"""CrossViewNet outputs: shapes at several (non-square) sizes, value ranges, broadcasting, CWR geometry."""
from __future__ import annotations

import math

import pytest
import torch

from engine.model import ModelConfig
from engine.model.cafr_attention import CafrAttention, weighted_cell_centres
from engine.model.encoder import ViewEmbedding
from tests.engine.model.conftest import random_images, small_model


@pytest.fixture(scope="module")
def model():
    return small_model().eval()


def cells(size: int, stride: int) -> int:
    return math.ceil(size / stride)


@pytest.mark.parametrize("ground_hw", [(96, 160), (160, 96), (64, 64), (100, 148)])
def test_ground_embedding_shapes(model, ground_hw):
    with torch.inference_mode():
        ground = model.embed_ground(random_images(3, ground_hw))
    assert ground.descriptor.shape == (3, 48)
    assert ground.descriptor.dtype == torch.float32
    torch.testing.assert_close(ground.descriptor.norm(dim=-1), torch.ones(3))
    assert ground.strides == (32,)
    assert ground.pyramid[0].shape == (3, 32, cells(ground_hw[0], 32), cells(ground_hw[1], 32))
    assert ground.image_hw == ground_hw


@pytest.mark.parametrize("satellite_hw", [(128, 128), (192, 128), (200, 200)])
@pytest.mark.parametrize("ground_hw", [(96, 160), (128, 64)])
def test_satellite_attention_and_fine_outputs(model, satellite_hw, ground_hw):
    batch = 2
    with torch.inference_mode():
        ground = model.embed_ground(random_images(batch, ground_hw, seed=1))
        satellite = model.embed_satellite(random_images(batch, satellite_hw, seed=2))
        attention = model.attend(ground, satellite)
        fine = model.localize_fine(ground, satellite)
    height, width = satellite_hw
    assert satellite.descriptor.shape == (batch, 48)
    assert satellite.strides == (8, 16, 32)
    for level, stride in zip(satellite.pyramid, (8, 16, 32)):
        assert level.shape == (batch, 32, cells(height, stride), cells(width, stride))

    assert attention.strides == (8, 16, 32, 64)
    for attention_map, stride in zip(attention.maps, (8, 16, 32, 64)):
        assert attention_map.shape == (batch, cells(height, stride), cells(width, stride))
        torch.testing.assert_close(attention_map.sum(dim=(1, 2)), torch.ones(batch))
    assert attention.points_px.shape == (batch, 4, 2)
    for level, attention_map in enumerate(attention.maps):
        rows, cols = attention_map.shape[-2:]
        assert attention.cell_size_px[level].tolist() == pytest.approx([width / cols, height / rows])
    torch.testing.assert_close(attention.points_px, attention.points_cells * attention.cell_size_px)
    assert bool((attention.points_px[..., 0] >= 0).all() and (attention.points_px[..., 0] <= width).all())
    assert bool((attention.points_px[..., 1] >= 0).all() and (attention.points_px[..., 1] <= height).all())

    assert fine.probabilities.shape == (batch, 4, 4)
    torch.testing.assert_close(fine.probabilities.sum(dim=(1, 2)), torch.ones(batch))
    assert fine.cell_size_px == (width / 4, height / 4)
    assert fine.position_px.shape == (batch, 2)
    assert bool((fine.position_px[:, 0] <= width).all() and (fine.position_px[:, 1] <= height).all())
    assert bool((fine.position_px >= 0).all())
    assert bool(((fine.heading_deg >= 0) & (fine.heading_deg < 360)).all())
    torch.testing.assert_close(fine.heading_vectors.norm(dim=-1), torch.ones(batch, 16))


def test_fine_position_is_the_argmax_cell_plus_its_offset(model):
    with torch.inference_mode():
        ground = model.embed_ground(random_images(3, (96, 160)))
        satellite = model.embed_satellite(random_images(3, (128, 128), seed=5))
        fine = model.localize_fine(ground, satellite)
    for i in range(3):
        best = int(fine.cell_logits[i].argmax())
        row, col = divmod(best, 4)
        expected = ((col + fine.offsets[i, best, 0]) * 32.0, (row + fine.offsets[i, best, 1]) * 32.0)
        assert fine.position_px[i].tolist() == pytest.approx([float(v) for v in expected])
        sin, cos = fine.heading_vectors[i, best].tolist()
        assert float(fine.heading_deg[i]) == pytest.approx(math.degrees(math.atan2(sin, cos)) % 360, abs=1e-4)


def test_one_ground_photo_against_many_tiles_broadcasts(model):
    with torch.inference_mode():
        ground = model.embed_ground(random_images(1, (96, 160)))
        satellite = model.embed_satellite(random_images(4, (128, 128), seed=3))
        attention = model.attend(ground, satellite)
        fine = model.localize_fine(ground, satellite)
        repeated = ViewEmbedding(ground.descriptor.expand(4, -1),
                                 tuple(level.expand(4, -1, -1, -1) for level in ground.pyramid),
                                 ground.strides, ground.image_hw)
        attention_repeated = model.attend(repeated, satellite)
        fine_repeated = model.localize_fine(repeated, satellite)
    for a, b in zip(attention.maps, attention_repeated.maps):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(fine.cell_logits, fine_repeated.cell_logits)
    with pytest.raises(ValueError, match="does not pair"):
        model.attend(ViewEmbedding(torch.randn(3, 48), None, (), (96, 160)), satellite)


def test_descriptor_only_embedding_skips_the_pyramid(model):
    images = random_images(2, (128, 128))
    with torch.inference_mode():
        full = model.embed_satellite(images)
        bare = model.embed_satellite(images, with_pyramid=False)
    assert bare.pyramid is None
    torch.testing.assert_close(bare.descriptor, full.descriptor)
    with pytest.raises(ValueError, match="no stride-8 map"):
        bare.level(8)


def test_uint8_images_equal_their_float_version(model):
    images = (random_images(1, (96, 160)) * 255).round().to(torch.uint8)
    with torch.inference_mode():
        from_uint8 = model.embed_ground(images).descriptor
        from_float = model.embed_ground(images.float() / 255).descriptor
    torch.testing.assert_close(from_uint8, from_float)


@pytest.mark.parametrize("rows,cols", [(5, 7), (1, 1), (32, 32)])
def test_cwr_of_one_hot_attention_is_the_cell_centre(rows, cols):
    for index in [0, rows * cols - 1, (rows * cols) // 2]:
        attention = torch.zeros(1, rows * cols)
        attention[0, index] = 1.0
        row, col = divmod(index, cols)
        point = weighted_cell_centres(attention.view(1, rows, cols))
        assert point.tolist() == [[col + 0.5, row + 0.5]]


def test_attend_reports_one_hot_cwr_points_at_cell_centres_in_pixels():
    """Make one satellite cell identical to the query and all others orthogonal: attention becomes one-hot."""
    dim = 16
    attention = CafrAttention(dim, dim, (8, 16, 32, 64), (128, 96), temperature=0.001,
                              learn_temperature=False)
    with torch.no_grad():
        for projection in attention.cell_projections:
            projection.weight.copy_(torch.eye(dim))
            projection.bias.zero_()
        for table in list(attention.row_tables) + list(attention.col_tables):
            table.zero_()
    query = torch.zeros(1, dim)
    query[0, 0] = 1.0
    other = torch.zeros(dim)
    other[1] = 1.0
    # stride 8: 16 rows x 12 cols; the hot cell at row 5, col 9
    maps = []
    for stride in (8, 16, 32):
        level = other.view(1, dim, 1, 1).repeat(1, 1, 128 // stride, 96 // stride)
        level[0, :, 5 * 8 // stride, 9 * 8 // stride] = query[0]
        maps.append(level)
    # the stride-64 level average-pools the stride-32 map; its hot cell must still win
    satellite = ViewEmbedding(torch.zeros(1, dim), tuple(maps), (8, 16, 32), (128, 96))
    with torch.no_grad():
        result = attention(query, satellite)
    for level, (stride, attention_map) in enumerate(zip((8, 16, 32, 64), result.maps)):
        row, col = 5 * 8 // stride, 9 * 8 // stride
        assert float(attention_map[0, row, col]) == 1.0
        # 96 px / 64 is not whole: that level has 2 columns of 48 px covering the tile
        cell_w, cell_h = 96 / attention_map.shape[2], 128 / attention_map.shape[1]
        assert (cell_w, cell_h) == ((stride, stride) if stride < 64 else (48.0, 64.0))
        assert result.points_px[0, level].tolist() == [(col + 0.5) * cell_w, (row + 0.5) * cell_h]


def test_attention_temperature_can_be_learned():
    model = small_model(learn_attention_temperature=True, attention_temperature=0.01)
    names = [name for name, _ in model.named_parameters()]
    assert "attention.log_temperature" in names
    assert float(model.attention.temperature.detach()) == pytest.approx(0.01)
    fixed = small_model()
    assert "attention.log_temperature" not in [name for name, _ in fixed.named_parameters()]


def test_separate_branches_have_their_own_weights():
    model = small_model(shared_backbone=False)
    assert model.ground_encoder is not model.satellite_encoder
    shared = small_model()
    assert shared.ground_encoder is shared.satellite_encoder
    assert model.parameter_count() > shared.parameter_count()


def test_config_round_trips_through_a_dict():
    config = ModelConfig(backbone_weights=None, ground_hw=[200, 300], attention_strides=[8, 16, 32])
    again = ModelConfig.from_dict(config.to_dict())
    assert again == config
    assert again.ground_hw == (200, 300)
    with pytest.raises(ValueError, match="unknown ModelConfig fields: colour"):
        ModelConfig.from_dict({**config.to_dict(), "colour": 1})


@pytest.mark.parametrize("bad", [{"attention_strides": (16, 8)}, {"attention_strides": (8, 24)},
                                 {"fine_dim": 30, "fine_heads": 4}, {"satellite_hw": (16, 16)},
                                 {"metres_per_pixel": 0}, {"fine_satellite_stride": 64}])
def test_invalid_configs_are_refused(bad):
    with pytest.raises(ValueError):
        ModelConfig(backbone_weights=None, **bad)
