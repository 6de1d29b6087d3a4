"""The pose recipe's data feed: cached chunks reach the trainer whole and in order."""
import torch

from engine.train.pose_data import PoseWorld, load_worlds, save_worlds
from engine.train.pose_recipe import CHUNK, ChunkFeed, chunk_paths


def _world(seed: int, photos: int = 2) -> PoseWorld:
    generator = torch.Generator().manual_seed(seed)
    return PoseWorld(
        biome="rural", seed=seed,
        map_f2=torch.rand(16, 8, 8, generator=generator).half(),
        map_f4=torch.rand(24, 4, 4, generator=generator).half(),
        ground_f8=torch.rand(photos, 40, 3, 4, generator=generator).half(),
        ground_f16=torch.rand(photos, 112, 2, 2, generator=generator).half(),
        fov_deg=torch.full((photos,), 60.0), original_wh=torch.tensor([[384.0, 256.0]] * photos),
        camera_cells=torch.rand(photos, 2, generator=generator) * 8, heading_deg=torch.rand(photos) * 360)


def test_chunks_on_disk_are_fed_in_order_without_generating(tmp_path):
    paths = chunk_paths(tmp_path, CHUNK + 1)
    assert [p.name for p in paths] == ["train-0.safetensors", "train-1.safetensors"]
    save_worlds([_world(1), _world(2)], paths[0])
    save_worlds([_world(3)], paths[1])
    feed = ChunkFeed(tmp_path, CHUNK + 1, processes=1)
    assert feed.process is None                      # nothing left to generate
    first = feed.first()
    assert [w.seed for w in first] == [1, 2, 3]      # every chunk already on disk, in order
    assert feed.ready() == []                        # handed over once
    feed.close(finished=True)


def test_a_world_round_trips_through_its_chunk_file(tmp_path):
    world = _world(7)
    save_worlds([world], tmp_path / "chunk.safetensors")
    (back,) = load_worlds(tmp_path / "chunk.safetensors")
    assert (back.biome, back.seed) == ("rural", 7)
    for name in ("map_f2", "ground_f16", "camera_cells", "heading_deg"):
        torch.testing.assert_close(getattr(back, name), getattr(world, name))


def _full_size_world(seed: int) -> PoseWorld:
    """A world with the trunk-feature shapes of the real recipe (random values: the run, not the accuracy, is
    under test)."""
    generator = torch.Generator().manual_seed(seed)
    photos = 4
    return PoseWorld(
        biome="urban", seed=seed, map_f2=torch.rand(16, 112, 112, generator=generator).half(),
        map_f4=torch.rand(24, 56, 56, generator=generator).half(),
        ground_f8=torch.rand(photos, 40, 24, 36, generator=generator).half(),
        ground_f16=torch.rand(photos, 112, 12, 18, generator=generator).half(),
        fov_deg=torch.full((photos,), 70.0), original_wh=torch.tensor([[384.0, 256.0]] * photos),
        camera_cells=torch.full((photos, 2), 56.0), heading_deg=torch.tensor([0.0, 90.0, 180.0, 270.0]))


def test_the_recipe_trains_and_saves_a_loadable_model_from_cached_chunks(tmp_path):
    from engine.model.pose_net import PoseNet
    from engine.train.pose_recipe import main

    data, out = tmp_path / "data", tmp_path / "run"
    data.mkdir()
    save_worlds([_full_size_world(1)], chunk_paths(data, 1)[0])
    save_worlds([_full_size_world(2)], data / "val.safetensors")
    assert main(["--worlds", "1", "--minutes", "0.05", "--batch", "2", "--eval-samples", "2",
                 "--data", str(data), "--out", str(out)]) == 0
    model = PoseNet.load(out / "posenet.safetensors")
    training = model.metadata["training"]
    assert training["data"]["worlds"] == 1 and training["steps"] >= 1
    assert training["evaluations"] and "median_m" in training["evaluations"][-1]
