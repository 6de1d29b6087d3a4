"""The pose recipe's data feed: cached chunks reach the trainer whole and in order."""
import torch

from engine.train.pose_data import PoseWorld, load_worlds, save_worlds
from engine.train.pose_recipe import CHUNK, ChunkFeed, chunk_paths


def _world(seed: int, photos: int = 2, map_cells: int = 8, photo_hw: tuple[int, int] = (4, 6)) -> PoseWorld:
    """A world of random trunk features (the feed and the run are under test, not the accuracy)."""
    generator = torch.Generator().manual_seed(seed)
    h, w = photo_hw
    return PoseWorld(
        biome="rural", seed=seed,
        map_f2=torch.rand(16, map_cells, map_cells, generator=generator).half(),
        map_f4=torch.rand(24, map_cells // 2, map_cells // 2, generator=generator).half(),
        ground_f8=torch.rand(photos, 40, h, w, generator=generator).half(),
        ground_f16=torch.rand(photos, 112, h // 2, w // 2, generator=generator).half(),
        fov_deg=torch.full((photos,), 60.0), original_wh=torch.tensor([[384.0, 256.0]] * photos),
        camera_cells=torch.full((photos, 2), map_cells / 2.0),
        heading_deg=torch.rand(photos, generator=generator) * 360)


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


def test_the_recipe_trains_and_saves_a_loadable_model_from_cached_chunks(tmp_path):
    from engine.model.pose_net import PoseNet
    from engine.train.pose_recipe import main

    data, out = tmp_path / "data", tmp_path / "run"
    data.mkdir()
    save_worlds([_world(1, photos=4, map_cells=144, photo_hw=(24, 36))], chunk_paths(data, 1)[0])
    save_worlds([_world(2, photos=4, map_cells=144, photo_hw=(24, 36))], data / "val.safetensors")
    assert main(["--worlds", "1", "--minutes", "0.05", "--batch", "2", "--eval-samples", "2",
                 "--data", str(data), "--out", str(out)]) == 0
    model = PoseNet.load(out / "posenet.safetensors")
    training = model.metadata["training"]
    assert training["data"]["worlds"] == 1 and training["steps"] >= 1
    assert training["evaluations"] and "median_m" in training["evaluations"][-1]


def test_later_chunks_hold_later_seeds():
    from pathlib import Path
    assert [p.name for p in chunk_paths(Path("d"), CHUNK + 1, first_chunk=4)] == ["train-4.safetensors",
                                                                               "train-5.safetensors"]


def test_a_warm_start_continues_a_checkpoint_on_a_longer_bev_and_keeps_its_history(tmp_path):
    from engine.model.pose_net import PoseNet
    from engine.train.pose_recipe import main

    data, first, second = tmp_path / "data", tmp_path / "first", tmp_path / "second"
    data.mkdir()
    save_worlds([_world(1, photos=4, map_cells=144, photo_hw=(24, 36))], chunk_paths(data, 1)[0])
    save_worlds([_world(3, photos=4, map_cells=144, photo_hw=(24, 36))], chunk_paths(data, 1, first_chunk=1)[0])
    save_worlds([_world(2, photos=4, map_cells=144, photo_hw=(24, 36))], data / "val.safetensors")
    common = ["--worlds", "1", "--minutes", "0.03", "--batch", "2", "--eval-samples", "2", "--data", str(data)]
    assert main([*common, "--out", str(first), "--bev-cells", "64"]) == 0
    start = PoseNet.load(first / "posenet.safetensors")
    assert start.config.grid.size_cells == 64
    with torch.no_grad():
        start.depth_prior_scale.fill_(7.0)       # a mark no fresh model carries
    start.save(first / "marked.safetensors")
    assert main([*common, "--out", str(second), "--first-chunk", "1", "--init",
                 str(first / "marked.safetensors")]) == 0
    continued = PoseNet.load(second / "posenet.safetensors")
    assert continued.config.grid.size_cells == 96           # carried onto the recipe's default, longer BEV
    training = continued.metadata["training"]
    assert training["data"]["first_seed"] == 20_000 + CHUNK
    assert [run["steps"] for run in training["earlier"]] == [start.metadata["training"]["steps"]]
    assert 6.9 < float(continued.depth_prior_scale) < 7.1       # trained on from the checkpoint's weights
    assert "calibration" not in continued.metadata                # the old calibration is not carried over


def test_a_bev_too_wide_for_the_cached_worlds_is_refused_before_any_work(tmp_path, capsys):
    import pytest

    from engine.train.pose_recipe import main

    with pytest.raises(SystemExit) as stopped:
        main(["--bev-cells", "128", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run")])
    assert stopped.value.code == 2
    assert "--bev-cells 128" in capsys.readouterr().err and not (tmp_path / "data").exists()
