"""Training and evaluation of the cross-view model. The app and the CLI use only what this module exports.

    config = load_train_config("configs/synthetic-cafr.toml")
    summary = Trainer(config, callbacks, cancel).run(resume=False)
    report = evaluate(CrossViewNet.load(summary.best_checkpoint), open_dataset("synthetic-cvnaf", root))
    write_report(report, "eval-report/")
"""
from engine.train.config import (
    ConfigError,
    DataConfig,
    OptimConfig,
    RunConfig,
    SamplerConfig,
    TrainConfig,
    load_train_config,
    parse_override,
)
from engine.train.datasets import LAYOUTS, default_split, detect_kind, open_dataset
from engine.train.evaluate import EvalConfig, EvalReport, evaluate, write_report
from engine.train.ship import ship_model
from engine.train.synthetic import SyntheticDataSpec, ensure_synthetic_dataset
from engine.train.trainer import (
    BEST_MODEL,
    LAST_MODEL,
    LAST_STATE,
    NonFiniteLossError,
    TrainCallbacks,
    Trainer,
    TrainingError,
    TrainSummary,
)

__all__ = [
    "BEST_MODEL",
    "LAST_MODEL",
    "LAST_STATE",
    "LAYOUTS",
    "ConfigError",
    "DataConfig",
    "EvalConfig",
    "EvalReport",
    "NonFiniteLossError",
    "OptimConfig",
    "RunConfig",
    "SamplerConfig",
    "SyntheticDataSpec",
    "TrainCallbacks",
    "TrainConfig",
    "TrainSummary",
    "Trainer",
    "TrainingError",
    "default_split",
    "detect_kind",
    "ensure_synthetic_dataset",
    "evaluate",
    "load_train_config",
    "open_dataset",
    "parse_override",
    "ship_model",
    "write_report",
]
