"""`python -m engine.train CONFIG [options]`: the same as `viewfinder train`, as torchrun's module target:

    python -m torch.distributed.run --nproc_per_node 2 -m engine.train configs/synthetic-cafr.toml
"""
import sys

from engine.commands.common import EXIT_USAGE, OneLineParser, UsageError
from engine.commands.train import add_arguments, run


def main(argv=None) -> int:
    parser = OneLineParser(prog="python -m engine.train", description="Train a cross-view model (torchrun target).")
    add_arguments(parser)
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        print(f"python -m engine.train: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
