"""`viewfinder train CONFIG`: train (or fine-tune, or resume) a model from a TOML configuration.

`python -m engine.commands.train CONFIG [options]` is the same command as torchrun's module target:

    python -m torch.distributed.run --nproc_per_node 2 -m engine.commands.train configs/synthetic-cafr.toml

Under torchrun every process runs this command; rank 0 shows progress and writes the checkpoints.
"""
from __future__ import annotations

import math
import os
import signal
import sys
import threading
from pathlib import Path

from engine.commands.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    OneLineParser,
    ProgressBars,
    UsageError,
    positive_int,
)

TORCHRUN_PROG = "python -m engine.commands.train"


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a model from a TOML config (see configs/)")
    add_arguments(p)


def add_arguments(p) -> None:
    p.add_argument("config", type=Path, help="training configuration (TOML), e.g. configs/synthetic-cafr.toml")
    p.add_argument("--resume", nargs="?", const=True, default=False, metavar="CHECKPOINT",
                   help="continue the run in --out (or from CHECKPOINT: a last.safetensors or its folder)")
    p.add_argument("--out", type=Path, help="output folder (overrides train.out)")
    p.add_argument("--epochs", type=positive_int, help="number of epochs (overrides train.epochs)")
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N (overrides train.device)")
    p.add_argument("--data-root", type=Path, help="dataset folder (overrides data.root)")
    p.add_argument("--set", action="append", default=[], metavar="TABLE.KEY=VALUE",
                   help="override any config value, e.g. --set optim.lr=3e-4 (repeatable)")
    p.add_argument("--force", action="store_true", help="start afresh even if --out holds a run")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


class CommandLineCallbacks:
    """Training callbacks (engine.train.TrainCallbacks' methods): a tqdm bar over the steps of each epoch,
    a line per epoch, bars for the other passes (data generation, mining, validation)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar = None
        self.passes = ProgressBars(enabled)

    def write(self, message: str) -> None:
        (self.bar.write if self.bar is not None else print)(message, file=sys.stderr)

    def on_log(self, message: str) -> None:
        self.write(message)

    def on_progress(self, stage: str, done: int, total: int) -> None:
        self.passes(stage, done, total)

    def on_checkpoint(self, path) -> None:
        pass

    def on_step(self, epoch, step, steps, losses, lr) -> None:
        if not self.enabled:
            return
        if self.bar is None or self.bar.desc != f"epoch {epoch + 1}":
            from tqdm import tqdm  # here, not at the top: `viewfinder` imports every command at start-up
            self.close()
            self.bar = tqdm(total=steps, initial=step, desc=f"epoch {epoch + 1}", unit="step", file=sys.stderr)
        self.bar.update(step + 1 - self.bar.n)
        self.bar.set_postfix(loss=f"{losses['total']:.4f}", lr=f"{lr:.2e}", refresh=False)

    def on_epoch_end(self, epoch, metrics) -> None:
        self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        self.passes.close()
        self.passes.bars.clear()


def run(args) -> int:
    from engine.data.errors import DatasetError
    from engine.progress import CancelToken
    from engine.train import ConfigError, NonFiniteLossError, Trainer, TrainingError, load_train_config, parse_override

    try:
        overrides = dict(parse_override(text) for text in args.set)
        for key, value in (("train.out", args.out), ("train.epochs", args.epochs), ("train.device", args.device),
                           ("data.root", args.data_root)):
            if value is not None:
                overrides[key] = str(value) if isinstance(value, Path) else value
        config = load_train_config(args.config, overrides)
    except ConfigError as exc:
        print(f"viewfinder train: error: {exc}", file=sys.stderr)
        return EXIT_USAGE

    cancel = CancelToken()
    interface = CommandLineCallbacks(not args.quiet)
    previous = _stop_on_first_interrupt(cancel, interface)
    try:
        summary = Trainer(config, interface, cancel).run(resume=args.resume, overwrite=args.force)
    except (DatasetError, FileNotFoundError) as exc:
        interface.close()
        print(f"viewfinder train: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (NonFiniteLossError, TrainingError) as exc:
        interface.close()
        print(f"viewfinder train: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        interface.close()
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    if summary.last_checkpoint is None or int(os.environ.get("RANK", "0")) != 0:   # rank 0 reports
        return EXIT_OK
    best = summary.best
    best_text = (f"best {best['metric']} {best['value']:.4g} (epoch {best['epoch']})"
                 if best and math.isfinite(best.get("value") or math.nan) else "no best yet")
    print(f"training {summary.stopped}: {summary.epochs_completed} epochs, {summary.global_step} steps, "
          f"{summary.pairs_per_second:.1f} pairs/s, {summary.seconds:.0f} s; {best_text}")
    print(f"  last checkpoint {summary.last_checkpoint}")
    if summary.best_checkpoint is not None:
        print(f"  best checkpoint {summary.best_checkpoint}")
    if summary.stopped != "completed":
        print(f"  continue with: viewfinder train {args.config} --resume --out {summary.out_dir}")
    return EXIT_OK


def _stop_on_first_interrupt(cancel, interface):
    """First Ctrl-C: stop after the current step with a checkpoint; a second one interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):
        if cancel.cancelled:
            raise KeyboardInterrupt
        cancel.cancel()
        interface.write("stopping after this step (a checkpoint is written); Ctrl-C again to abort")

    return signal.signal(signal.SIGINT, handler)


def main(argv=None) -> int:
    """`python -m engine.commands.train`: torchrun's module target, one process per rank."""
    parser = OneLineParser(prog=TORCHRUN_PROG, description="Train a cross-view model (torchrun target).")
    add_arguments(parser)
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        print(f"{TORCHRUN_PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
