"""Augmentation keeps ground, satellite, mask, camera, CWR target and heading consistent; photometric noise is
seeded; off-centre tiles keep the camera on the same ground pixel."""
import numpy as np
import pytest
import torch
from PIL import Image

from engine.data import geometry as g
from engine.data.augment import (
    AugmentConfig,
    PairGeometry,
    coarse_dropout,
    colour_jitter,
    hflip_pair,
    jpeg_compress,
    offcentre_origin,
    photometric,
    random_geometric,
    rotate_pair,
)
from engine.data.datasets.records import CrossViewItem
from engine.data.pairs import CrossViewPairs, PairConfig

TILE = (48, 48)


def make_pair(camera=(17.3, 30.6), heading=37.5, fov=70.0, tile=TILE) -> PairGeometry:
    width, height = tile
    generator = torch.Generator().manual_seed(0)
    return PairGeometry(
        ground=torch.rand(3, 16, 24, generator=generator), satellite=torch.rand(3, height, width, generator=generator),
        mask=torch.from_numpy(g.overlap_mask(tile, camera, heading, fov)), camera_px=camera,
        cwr_target_px=g.cwr_target(tile, camera, heading), heading_deg=heading, fov_deg=fov)


def assert_geometry_consistent(pair: PairGeometry) -> None:
    """The transformed mask and CWR target equal what geometry computes from the transformed camera/heading."""
    expected = g.overlap_mask(pair.tile_size, pair.camera_px, pair.heading_deg, pair.fov_deg)
    np.testing.assert_array_equal(pair.mask.numpy(), expected)
    np.testing.assert_allclose(pair.cwr_target_px, g.cwr_target(pair.tile_size, pair.camera_px, pair.heading_deg),
                               atol=1e-9)


def satellite_pixel_under(pair: PairGeometry) -> torch.Tensor:
    x, y = (int(np.floor(v)) for v in pair.camera_px)
    return pair.satellite[:, y, x]


@pytest.mark.parametrize("heading", [0.0, 37.5, 90.0, 200.25, 359.0])
def test_flip_mirrors_everything_together(heading):
    pair = make_pair(heading=heading)
    flipped = hflip_pair(pair)
    assert flipped.heading_deg == pytest.approx((360.0 - heading) % 360.0)
    assert flipped.camera_px == pytest.approx((TILE[0] - 17.3, 30.6))
    assert torch.equal(flipped.ground, pair.ground.flip(-1)) and torch.equal(flipped.satellite, pair.satellite.flip(-1))
    assert_geometry_consistent(flipped)
    assert torch.equal(satellite_pixel_under(flipped), satellite_pixel_under(pair))
    twice = hflip_pair(flipped)
    assert torch.equal(twice.mask, pair.mask) and twice.heading_deg == pytest.approx(heading % 360.0)


@pytest.mark.parametrize("turns", [1, 2, 3])
@pytest.mark.parametrize("heading", [12.0, 135.0, 271.5])
def test_rotation_turns_the_tile_and_its_targets(turns, heading):
    pair = make_pair(heading=heading)
    rotated = rotate_pair(pair, turns)
    assert rotated.heading_deg == pytest.approx((heading + 90.0 * turns) % 360.0)
    assert torch.equal(rotated.ground, pair.ground)                     # the photo does not turn
    assert_geometry_consistent(rotated)
    assert torch.equal(satellite_pixel_under(rotated), satellite_pixel_under(pair))
    assert torch.equal(rotate_pair(rotated, 4 - turns).satellite, pair.satellite)


def test_rotation_of_a_non_square_tile():
    pair = make_pair(camera=(40.2, 10.7), tile=(64, 32))
    with pytest.raises(ValueError, match="half turns"):
        rotate_pair(pair, 1)
    half = rotate_pair(pair, 2)
    assert half.tile_size == (64, 32) and half.camera_px == pytest.approx((64 - 40.2, 32 - 10.7))
    assert_geometry_consistent(half)


def test_random_geometric_is_seeded_and_consistent():
    config = AugmentConfig(flip_prob=0.5, rotate_prob=0.75)
    seen = set()
    for seed in range(24):
        out = random_geometric(make_pair(), np.random.default_rng(seed), config)
        again = random_geometric(make_pair(), np.random.default_rng(seed), config)
        assert out.heading_deg == again.heading_deg and torch.equal(out.satellite, again.satellite)
        assert_geometry_consistent(out)
        seen.add(round(out.heading_deg, 6))
    # headings reachable by flip and quarter turns: (+-37.5 + 90 k) mod 360
    assert seen <= {round((s * 37.5 + 90 * k) % 360, 6) for s in (1, -1) for k in range(4)} and len(seen) >= 6


def test_unknown_heading_survives_geometric_augmentation():
    pair = PairGeometry(torch.rand(3, 8, 8), torch.rand(3, 16, 16), torch.ones(16, 16), (8.0, 8.0), None, None, None)
    out = rotate_pair(hflip_pair(pair), 1)
    assert out.heading_deg is None and out.cwr_target_px is None and out.camera_px == (8.0, 8.0)


def test_photometric_is_seeded_and_keeps_shape_and_range():
    image = torch.rand(3, 32, 40, generator=torch.Generator().manual_seed(1))
    config = AugmentConfig(blur_sharpen_prob=1.0, jpeg_prob=1.0, dropout_prob=1.0)
    a = photometric(image, np.random.default_rng(5), config)
    b = photometric(image, np.random.default_rng(5), config)
    c = photometric(image, np.random.default_rng(6), config)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == image.shape and a.dtype == torch.float32
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    pil = Image.fromarray((image.permute(1, 2, 0).numpy() * 255).astype(np.uint8))
    out = photometric(pil, np.random.default_rng(5), config)
    assert isinstance(out, Image.Image) and out.size == (40, 32)


def test_photometric_parts():
    image = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(2))
    assert torch.allclose(colour_jitter(image, np.random.default_rng(0), 0.0, 0.0), image)
    jittered = colour_jitter(image, np.random.default_rng(0), 0.15, 0.03)
    assert 0.0 < float((jittered - image).abs().mean()) < 0.2
    smooth = torch.linspace(0, 1, 32).expand(3, 32, 32).contiguous()
    recompressed = jpeg_compress(smooth, 90)
    assert 0.0 < float((recompressed - smooth).abs().mean()) < 0.02
    dropped = coarse_dropout(image + 0.01, np.random.default_rng(3), (2, 2), (0.25, 0.25))
    zero = (dropped == 0).all(dim=0)
    assert 64 <= int(zero.sum()) <= 128 and torch.equal(dropped[:, ~zero], (image + 0.01)[:, ~zero])


def test_offcentre_origin_places_the_camera_in_the_central_fraction():
    rng = np.random.default_rng(0)
    chip, window, camera, fraction = (400, 300), (200, 150), (200.0, 150.0), 0.6
    positions = []
    for _ in range(300):
        x0, y0 = offcentre_origin(chip, window, camera, fraction, rng)
        assert 0 <= x0 <= chip[0] - window[0] and 0 <= y0 <= chip[1] - window[1]
        u, v = (camera[0] - x0) / window[0], (camera[1] - y0) / window[1]
        assert 0.2 - 1e-9 <= u <= 0.8 + 1e-9 and 0.2 - 1e-9 <= v <= 0.8 + 1e-9
        positions.append((u, v))
    positions = np.array(positions)
    assert positions.min(axis=0) == pytest.approx([0.2, 0.2], abs=0.03)
    assert positions.max(axis=0) == pytest.approx([0.8, 0.8], abs=0.03)
    # no margin: the window is the chip
    assert offcentre_origin((100, 100), (100, 100), (50.0, 50.0), 0.6, rng) == (0, 0)
    # a camera near the chip's edge limits how far the window may move
    x0, _ = offcentre_origin((400, 300), (200, 150), (30.0, 150.0), 0.6, rng)
    assert x0 == 0


def coded_chip(size: int) -> np.ndarray:
    """Every pixel holds its own coordinates: R = x, G = y (size <= 256)."""
    xs, ys = np.meshgrid(np.arange(size), np.arange(size))
    return np.stack([xs, ys, np.full_like(xs, 77)], axis=-1).astype(np.uint8)


@pytest.fixture
def coded_item(tmp_path):
    chip = coded_chip(200)
    Image.fromarray(chip).save(tmp_path / "chip.png")
    Image.fromarray(np.full((30, 40, 3), 128, np.uint8)).save(tmp_path / "ground.png")
    return CrossViewItem(item_id="coded", dataset="test", split="train", city=None,
                         ground_path=tmp_path / "ground.png", satellite_path=tmp_path / "chip.png",
                         fov_deg=80.0, heading_deg=33.0)


def test_offcentre_tiles_keep_the_camera_on_the_same_ground_pixel(coded_item):
    config = PairConfig(ground_hw=(16, 24), satellite_hw=(100, 100), tile_fraction=0.5)
    augment = AugmentConfig(flip_prob=0.0, rotate_prob=0.0, offcentre_prob=1.0, offcentre_fraction=0.8,
                            colour_jitter=0.0, hue_jitter=0.0, blur_sharpen_prob=0.0, jpeg_prob=0.0,
                            dropout_prob=0.0)
    pairs = CrossViewPairs([coded_item], config, augment, seed=1)
    cameras = []
    for epoch in range(12):
        pairs.set_epoch(epoch)
        sample = pairs[0]
        x0, y0, width, height = sample["satellite_window_px"].tolist()
        assert (width, height) == (100.0, 100.0)
        cam_x, cam_y = sample["camera_px"].tolist()
        # the camera is where the record says (chip centre, 100, 100), seen through the window
        assert (cam_x + x0, cam_y + y0) == (100.0, 100.0)
        assert 10.0 <= cam_x <= 90.0 and 10.0 <= cam_y <= 90.0
        pixel = (sample["satellite"][:, int(cam_y), int(cam_x)] * 255).round().int().tolist()
        assert pixel == [100, 100, 77]                        # the chip pixel under the camera
        np.testing.assert_array_equal(sample["overlap_mask"].numpy(),
                                      g.overlap_mask((100, 100), (cam_x, cam_y), 33.0, 80.0))
        np.testing.assert_allclose(sample["overlap_centre_px"].numpy(),
                                   g.cwr_target((100, 100), (cam_x, cam_y), 33.0), atol=1e-4)
        cameras.append((cam_x, cam_y))
    assert len(set(cameras)) >= 8
    pairs.set_epoch(3)
    assert torch.equal(pairs[0]["satellite"], pairs[0]["satellite"])      # reproducible per epoch


def test_fully_augmented_samples_stay_geometrically_consistent(coded_item):
    config = PairConfig(ground_hw=(16, 24), satellite_hw=(100, 100), tile_fraction=0.5)
    pairs = CrossViewPairs([coded_item], config, AugmentConfig(), seed=2)
    headings = set()
    for epoch in range(16):
        pairs.set_epoch(epoch)
        sample = pairs[0]
        camera = tuple(sample["camera_px"].tolist())
        heading = float(sample["heading_deg"])
        np.testing.assert_array_equal(sample["overlap_mask"].numpy(),
                                      g.overlap_mask((100, 100), camera, heading, 80.0))
        np.testing.assert_allclose(sample["overlap_centre_px"].numpy(), g.cwr_target((100, 100), camera, heading),
                                   atol=1e-3)
        headings.add(round(heading, 3))
    assert len(headings) >= 4
    evaluation = CrossViewPairs([coded_item], config)
    assert float(evaluation[0]["heading_deg"]) == 33.0 and evaluation[0]["camera_px"].tolist() == [50.0, 50.0]
