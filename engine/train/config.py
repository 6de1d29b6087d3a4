"""Training configuration: TOML files (configs/*.toml) -> TrainConfig, a tree of plain dataclasses.

Tables: [data] (+ [data.generate] / [data.val_generate] for synthetic data made on demand), [model]
(ModelConfig overrides), [loss] (LossConfig overrides), [pairs] (PairConfig overrides; sizes come from the
model), [augment] (AugmentConfig overrides, `enabled = false` for none), [optim], [sampler], [eval]
(EvalConfig) and [train] (run settings). Relative paths are relative to the config file's folder.
Unknown keys are errors that name the file and the key, so a typo never trains the wrong thing silently.
"""
from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.data.augment import AugmentConfig
from engine.data.datasets import dataset_kinds
from engine.data.pairs import PairConfig
from engine.errors import ViewfinderError
from engine.model.config import LossConfig, ModelConfig, unknown_fields
from engine.train.eval_config import EvalConfig
from engine.train.synthetic import SyntheticDataSpec

OPTIMIZERS = ("adamw", "sgd")
CLIP_MODES = ("norm", "value")
SAMPLER_MODES = ("neighbours", "gps", "random")
#: PairConfig fields the model decides (input sizes, ground resolution).
MODEL_PAIR_FIELDS = ("ground_hw", "satellite_hw", "metres_per_px")


class ConfigError(ViewfinderError, ValueError):
    """A training configuration that cannot be used; the message names the file and the key."""


@dataclass
class DataConfig:
    kind: str = "synthetic-cvnaf"
    root: Path | None = None
    #: Split read for training; None -> the layout's training split.
    split: str | None = None
    cities: list[str] | None = None
    vigor_mode: str = "same_area"
    #: Validation data; None -> the same root and kind, the layout's evaluation split.
    val_root: Path | None = None
    val_kind: str | None = None
    val_split: str | None = None
    val_cities: list[str] | None = None
    check_images: bool = False
    #: Synthetic datasets made (once, cached) at root / val_root when these are given.
    generate: SyntheticDataSpec | None = None
    val_generate: SyntheticDataSpec | None = None


@dataclass
class OptimConfig:
    optimizer: str = "adamw"
    lr: float = 1e-4
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    momentum: float = 0.9            # SGD only
    warmup_epochs: float = 1.0
    #: Cosine decay ends at lr * min_lr_ratio.
    min_lr_ratio: float = 0.0
    #: 0 or None: no clipping
    grad_clip: float | None = 5.0
    grad_clip_mode: str = "norm"
    #: Mixed precision on CUDA (bf16 where supported, else fp16 with a grad scaler); ignored on CPU.
    amp: bool = True


@dataclass
class SamplerConfig:
    """Sample4Geo batches: anchor + its neighbours (GPS in the first epoch, then mined visual hard negatives).

    neighbours_per_anchor: None -> min(64, batch_size // 2) (Sample4Geo: 64 for batches of 128);
    half are the closest, half drawn at random from ranks up to neighbour_range (None -> twice that).
    """

    mode: str = "neighbours"
    pool: int = 128
    neighbours_per_anchor: int | None = None
    neighbour_range: int | None = None
    #: Re-mine visual hard negatives after every this many epochs.
    mine_every: int = 1


@dataclass
class RunConfig:
    epochs: int = 10
    batch_size: int = 16
    seed: int = 1
    num_workers: int = 2
    device: str = "auto"
    out: Path = Path("runs/train")
    #: Cap on optimiser steps per epoch (0: the whole epoch), for quick runs.
    max_steps_per_epoch: int = 0
    #: Stop (with a checkpoint) after this much wall time; 0: no limit.
    time_budget_min: float = 0.0
    #: Validate every this many epochs (0: never; the best checkpoint then follows the training loss).
    validate_every: int = 1
    deterministic: bool = True
    #: CPU threads for torch during the run (0: leave as is). Float sums depend on it: an exact resume
    #: needs the same count.
    threads: int = 0
    keep_epoch_checkpoints: bool = False
    #: Start from the weights (and architecture) of a saved model: fine-tuning.
    init_from: Path | None = None


@dataclass
class TrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    #: PairConfig overrides other than sizes and resolution (mask_source, tile_fraction, panorama_fov_deg...).
    pairs: dict[str, Any] = field(default_factory=dict)
    augment: AugmentConfig | None = field(default_factory=AugmentConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    train: RunConfig = field(default_factory=RunConfig)
    #: The TOML file this came from (None when built in code).
    source: Path | None = None

    def pair_config(self) -> PairConfig:
        return PairConfig(ground_hw=self.model.ground_hw, satellite_hw=self.model.satellite_hw,
                          metres_per_px=self.model.metres_per_pixel, **self.pairs)

    def validate(self) -> None:
        where = str(self.source) if self.source else "training config"
        kinds = dataset_kinds()
        checks = [
            (self.data.kind in kinds, f"data.kind must be one of {', '.join(kinds)}"),
            (self.data.val_kind in (None, *kinds), f"data.val_kind must be one of {kinds}"),
            (self.data.root is not None, "data.root is required (set it in [data] or pass --data-root)"),
            (self.optim.optimizer in OPTIMIZERS, f"optim.optimizer must be one of {', '.join(OPTIMIZERS)}"),
            (self.optim.grad_clip_mode in CLIP_MODES, f"optim.grad_clip_mode must be one of {CLIP_MODES}"),
            (self.optim.lr > 0, "optim.lr must be positive"),
            (self.optim.warmup_epochs >= 0, "optim.warmup_epochs must be >= 0"),
            (0.0 <= self.optim.min_lr_ratio <= 1.0, "optim.min_lr_ratio must be in [0, 1]"),
            (self.optim.grad_clip is None or self.optim.grad_clip >= 0, "optim.grad_clip must be >= 0"),
            (self.sampler.mode in SAMPLER_MODES, f"sampler.mode must be one of {', '.join(SAMPLER_MODES)}"),
            (self.sampler.pool >= 1 and self.sampler.mine_every >= 1, "sampler.pool and mine_every must be >= 1"),
            (self.train.epochs >= 1, "train.epochs must be at least 1"),
            (self.train.batch_size >= 2, "train.batch_size must be at least 2 (InfoNCE needs negatives)"),
            (self.train.num_workers >= 0 and self.train.max_steps_per_epoch >= 0
             and self.train.time_budget_min >= 0 and self.train.validate_every >= 0,
             "train.num_workers, max_steps_per_epoch, time_budget_min and validate_every must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"{where}: {message}")
        try:
            self.pair_config()
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: [pairs]: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (stored with checkpoints; TrainConfig.from_dict reads it back)."""
        return {
            "data": _plain(dataclasses.asdict(self.data)),
            "model": self.model.to_dict(),
            "loss": self.loss.to_dict(),
            "pairs": _plain(dict(self.pairs)),
            "augment": ({"enabled": False} if self.augment is None
                        else _plain(dataclasses.asdict(self.augment))),
            "optim": _plain(dataclasses.asdict(self.optim)),
            "sampler": _plain(dataclasses.asdict(self.sampler)),
            "eval": _plain(dataclasses.asdict(self.eval)),
            "train": _plain(dataclasses.asdict(self.train)),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], base_dir: Path | None = None,
                  source: Path | None = None) -> TrainConfig:
        where = str(source) if source else "training config"
        base = Path(base_dir) if base_dir is not None else Path.cwd()
        sections = {"data", "model", "loss", "pairs", "augment", "optim", "sampler", "eval", "train"}
        unknown = sorted(set(data) - sections)
        if unknown:
            raise ConfigError(f"{where}: unknown table(s) {', '.join(unknown)}; known: {', '.join(sorted(sections))}")
        try:
            config = cls(
                data=_data_config(dict(data.get("data", {})), base, where),
                model=ModelConfig.from_dict(_model_values(dict(data.get("model", {})))),
                loss=LossConfig.from_dict(dict(data.get("loss", {}))),
                pairs=_pair_overrides(dict(data.get("pairs", {})), where),
                augment=_augment(dict(data.get("augment", {})), where),
                optim=_build(OptimConfig, data.get("optim", {}), "optim", where),
                sampler=_build(SamplerConfig, data.get("sampler", {}), "sampler", where),
                eval=_build(EvalConfig, data.get("eval", {}), "eval", where),
                train=_run_config(dict(data.get("train", {})), base, where),
                source=source)
        except ConfigError:
            raise
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: {exc}") from None
        config.validate()
        return config


def load_train_config(path: str | Path, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Read a TOML training config. `overrides` maps dotted keys ("train.epochs", "data.root") to values and
    replaces what the file says (the CLI's --set); relative paths in overrides are relative to the cwd."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: unreadable ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    for key, value in (overrides or {}).items():
        set_dotted(raw, key, _absolute_if_path(key, value), where=str(path))
    return TrainConfig.from_dict(raw, base_dir=path.parent, source=path)


def parse_override(text: str) -> tuple[str, Any]:
    """'section.key=value' -> (key, value); the value is read as TOML (numbers, booleans, arrays, strings)
    and taken as a plain string when it is not valid TOML."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not KEY=VALUE")
    key, value_text = (part.strip() for part in text.split("=", 1))
    if "." not in key:
        raise ConfigError(f"override key {key!r} must name a table and a key, e.g. train.epochs")
    try:
        value = tomllib.loads(f"value = {value_text}")["value"]
    except tomllib.TOMLDecodeError:
        value = value_text
    return key, value


def set_dotted(raw: dict, key: str, value: Any, where: str = "config") -> None:
    parts = key.split(".")
    node = raw
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{where}: {key}: {part} is not a table")
        node = child
    node[parts[-1]] = value


# ---------------------------------------------------------------- helpers
_PATH_KEYS = {"data.root", "data.val_root", "train.out", "train.init_from"}


def _absolute_if_path(key: str, value: Any) -> Any:
    return str(Path(value).absolute()) if key in _PATH_KEYS and isinstance(value, str) else value


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _build(cls, values: Any, table: str, where: str):
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: [{table}] must be a table")
    unknown = unknown_fields(cls, values)
    if unknown:
        known = (f.name for f in dataclasses.fields(cls))
        raise ConfigError(f"{where}: unknown key(s) in [{table}]: {', '.join(unknown)}; "
                          f"known: {', '.join(sorted(known))}")
    converted = {}
    for key, value in values.items():
        default = getattr(cls(), key) if _has_default(cls) else None
        converted[key] = tuple(_tuple_if_list(v) for v in value) if isinstance(default, tuple) else value
    try:
        return cls(**converted)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: [{table}]: {exc}") from None


def _tuple_if_list(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _has_default(cls) -> bool:
    return all(f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
               for f in dataclasses.fields(cls))


def _path(value: Any, base: Path) -> Path | None:
    if value is None or value == "":
        return None
    path = Path(str(value)).expanduser()
    return path if path.is_absolute() else Path(os.path.normpath(base / path))


def _data_config(values: dict, base: Path, where: str) -> DataConfig:
    for key in ("generate", "val_generate"):
        if values.get(key) is not None:
            spec = values[key]
            if not isinstance(spec, dict):
                raise ConfigError(f"{where}: [data.{key}] must be a table")
            try:
                values[key] = SyntheticDataSpec.from_dict(spec)
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"{where}: [data.{key}]: {exc}") from None
    for key in ("root", "val_root"):
        if key in values:
            values[key] = _path(values[key], base)
    config = _build(DataConfig, values, "data", where)
    if config.generate is not None and config.kind != "synthetic-cvnaf":
        raise ConfigError(f"{where}: [data.generate] makes synthetic-cvnaf data; data.kind is {config.kind!r}")
    return config


def _model_values(values: dict) -> dict:
    # TOML has no null: backbone_weights = "none" means a randomly initialised backbone
    weights = values.get("backbone_weights")
    if isinstance(weights, str) and weights.lower() == "none":
        values["backbone_weights"] = None
    return values


def _run_config(values: dict, base: Path, where: str) -> RunConfig:
    if "out" in values:
        values["out"] = _path(values["out"], base)
    if "init_from" in values:
        values["init_from"] = _path(values["init_from"], base)
    return _build(RunConfig, values, "train", where)


def _pair_overrides(values: dict, where: str) -> dict[str, Any]:
    known = {f.name for f in dataclasses.fields(PairConfig)} - set(MODEL_PAIR_FIELDS)
    decided = sorted(set(values) & set(MODEL_PAIR_FIELDS))
    if decided:
        raise ConfigError(f"{where}: [pairs] {', '.join(decided)} come from [model] (ground_hw, satellite_hw, "
                          f"metres_per_pixel)")
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) in [pairs]: {', '.join(unknown)}; "
                          f"known: {', '.join(sorted(known))}")
    return values


def _augment(values: dict, where: str) -> AugmentConfig | None:
    if not values.pop("enabled", True):
        if values:
            raise ConfigError(f"{where}: [augment] has enabled = false and other keys")
        return None
    return _build(AugmentConfig, values, "augment", where)
