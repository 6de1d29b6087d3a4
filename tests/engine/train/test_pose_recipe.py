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
