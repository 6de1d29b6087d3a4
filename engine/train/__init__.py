"""Training and evaluation of the cross-view model. The app and the CLI use only what this module exports.

    config = load_train_config("configs/synthetic-cafr.toml")
    summary = Trainer(config, callbacks, cancel).run(resume=False)
    report = evaluate(CrossViewNet.load(summary.best_checkpoint), open_dataset("synthetic-cvnaf", root))
    write_report(report, "eval-report/")
"""
from engine.data.datasets import dataset_layouts, default_split, detect_kind, open_dataset
from engine.model.device import requested_device
from engine.train.checkpointing import BEST_MODEL, LAST_MODEL, LAST_STATE
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
from engine.train.errors import NonFiniteLossError, TrainingError
from engine.train.eval_config import EvalConfig
from engine.train.eval_report import EvalReport, write_report
from engine.train.evaluate import evaluate
from engine.train.ship import ship_model
from engine.train.synthetic import SyntheticDataSpec, ensure_synthetic_dataset
from engine.train.trainer import TrainCallbacks, Trainer, TrainSummary, pair_config_for

#: `viewfinder eval --layout` names of the readers registered at import (dataset_layouts() for the live list).
LAYOUTS = dataset_layouts()

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
    "dataset_layouts",
    "default_split",
    "detect_kind",
    "ensure_synthetic_dataset",
    "evaluate",
    "load_train_config",
    "open_dataset",
    "pair_config_for",
    "parse_override",
    "requested_device",
    "ship_model",
    "write_report",
]
