"""Run under torchrun by test_distributed.py: trains the tiny config, then every rank saves its own weights
and the losses it saw, so the test can compare the processes."""
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from engine.train import TrainCallbacks, TrainConfig, Trainer


class Record(TrainCallbacks):
    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_step(self, epoch, step, steps, losses, lr):
        self.losses.append(losses["total"])


def main(config_json: str, out: str) -> None:
    torch.set_num_threads(1)
    config = TrainConfig.from_dict(json.loads(Path(config_json).read_text()))
    trainer = Trainer(config, Record())
    summary = trainer.run()
    rank = trainer.ctx.rank
    weights = {key: value.detach().clone().contiguous() for key, value in trainer.model.state_dict().items()}
    save_file(weights, str(Path(out) / f"rank{rank}.safetensors"))
    (Path(out) / f"rank{rank}.json").write_text(json.dumps({
        "world_size": trainer.ctx.world_size, "global_step": summary.global_step,
        "losses": trainer.callbacks.losses, "stopped": summary.stopped}))


if __name__ == "__main__":
    main(*sys.argv[1:3])
