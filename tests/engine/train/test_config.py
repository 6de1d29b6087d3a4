"""TOML training configs: the shipped ones load, mistakes name the file and key, paths and overrides."""
from __future__ import annotations

from pathlib import Path

import pytest

from engine.train import ConfigError, TrainConfig, load_train_config, parse_override

CONFIGS = sorted((Path(__file__).resolve().parents[3] / "configs").glob("*.toml"))


def test_repository_configs_exist():
    assert {p.name for p in CONFIGS} >= {"tiny-cpu.toml", "synthetic-cafr.toml", "synthetic-infonce.toml",
                                         "cvnaf.toml", "vigor.toml"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_repository_configs_load(path):
    config = load_train_config(path, {"data.root": "/data/somewhere"} if path.stem in ("cvnaf", "vigor") else {})
    assert config.source == path
    assert config.train.out.is_absolute() or config.train.out.parts[0] != ".."
    assert TrainConfig.from_dict(config.to_dict()).to_dict() == config.to_dict()


def test_benchmark_arms_differ_only_in_the_loss():
    cafr = load_train_config(CONFIGS[0].parent / "synthetic-cafr.toml").to_dict()
    infonce = load_train_config(CONFIGS[0].parent / "synthetic-infonce.toml").to_dict()
    # the fine pose is PoseNet's job now (engine.model.pose_net): neither retrieval arm trains the old fine head
    assert cafr["loss"]["cafr_weight"] > 0 and cafr["loss"]["fine_weight"] == 0
    assert infonce["loss"]["cafr_weight"] == 0 and infonce["loss"]["fine_weight"] == 0
    for table in cafr:
        if table != "loss":
            expected = dict(cafr[table])
            if table == "train":
                expected["out"] = expected["out"].replace("synthetic-cafr", "synthetic-infonce")
            assert infonce[table] == expected, table


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.toml"
    path.write_text(text)
    return path


def test_relative_paths_follow_the_config_file(tmp_path):
    path = write(tmp_path, '[data]\nroot = "data/train"\n[train]\nout = "../runs/x"\n')
    config = load_train_config(path)
    assert config.data.root == tmp_path / "data" / "train"
    assert config.train.out == tmp_path.parent / "runs" / "x"


def test_unknown_keys_and_tables_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match=r"run.toml: unknown key\(s\) in \[optim\]: learning_rate"):
        load_train_config(write(tmp_path, '[data]\nroot = "d"\n[optim]\nlearning_rate = 1\n'))
    with pytest.raises(ConfigError, match=r"run.toml: unknown table\(s\) optimiser"):
        load_train_config(write(tmp_path, '[data]\nroot = "d"\n[optimiser]\nlr = 1\n'))
    with pytest.raises(ConfigError, match="run.toml: unknown ModelConfig fields: widht"):
        load_train_config(write(tmp_path, '[data]\nroot = "d"\n[model]\nwidht = 3\n'))
    with pytest.raises(ConfigError, match="run.toml: not valid TOML"):
        load_train_config(write(tmp_path, "[data\n"))
    with pytest.raises(ConfigError, match="nothing.toml: no such config file"):
        load_train_config(tmp_path / "nothing.toml")


def test_invalid_values_are_refused(tmp_path):
    cases = [('[optim]\noptimizer = "adam"\n', "optim.optimizer must be one of adamw, sgd"),
             ("[train]\nbatch_size = 1\n", "batch_size must be at least 2"),
             ('[pairs]\nsatellite_hw = [64, 64]\n', r"\[pairs\] satellite_hw come from \[model\]"),
             ('[pairs]\nmask_source = "fuzzy"\n', "mask_source must be one of"),
             ('[augment]\nflip_prob = 2.0\n', "flip_prob must be in"),
             ('[sampler]\nmode = "shuffled"\n', "sampler.mode"),
             ('[eval]\ngallery_scope = "world"\n', "gallery_scope"),
             ('[data.generate]\nbiomes = ["lunar"]\n', "unknown biome")]
    for text, message in cases:
        with pytest.raises(ConfigError, match=message):
            load_train_config(write(tmp_path, '[data]\nroot = "d"\n' + text))
    with pytest.raises(ConfigError, match="data.root is required"):
        load_train_config(write(tmp_path, "[train]\nepochs = 2\n"))


def test_overrides_replace_file_values(tmp_path):
    path = write(tmp_path, '[data]\nroot = "d"\n[optim]\nlr = 0.1\n[augment]\nenabled = false\n')
    config = load_train_config(path, dict(parse_override(t) for t in (
        "optim.lr=3e-4", "train.epochs = 7", "model.ground_hw=[64, 96]", "train.device=cuda:1",
        "data.root=elsewhere")))
    assert config.optim.lr == 3e-4 and config.train.epochs == 7 and config.model.ground_hw == (64, 96)
    assert config.train.device == "cuda:1" and config.augment is None
    assert config.data.root == Path("elsewhere").absolute()   # command-line paths: relative to the cwd
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_override("optim.lr")
    with pytest.raises(ConfigError, match="must name a table"):
        parse_override("lr=3")
