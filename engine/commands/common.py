"""Argument types, errors and progress bars every `viewfinder` subcommand shares."""
from __future__ import annotations

import argparse
import sys

from engine.errors import ViewfinderError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(ViewfinderError):
    """Bad command-line input: reported as one line, exit code 2."""


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports errors as a single line and exits with code 2."""

    def error(self, message: str):
        raise UsageError(message)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def fov_range(text: str) -> tuple[float, float]:
    """'70' or '40-110' -> (lo, hi), each within 1-179 degrees."""
    parts = text.split("-") if "-" in text.strip("-") else [text]
    try:
        lo, hi = (float(parts[0]), float(parts[-1]))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected DEGREES or MIN-MAX, got {text!r}") from None
    if len(parts) > 2 or not (1.0 <= lo <= 179.0 and 1.0 <= hi <= 179.0):
        raise argparse.ArgumentTypeError(f"FoV must lie within 1-179 degrees, got {text}")
    if lo > hi:
        raise argparse.ArgumentTypeError(f"FoV range minimum exceeds maximum: {text}")
    return lo, hi


def size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text!r}") from None
    if width < 16 or height < 16 or width > 8192 or height > 8192:
        raise argparse.ArgumentTypeError(f"size must be within 16-8192 px per side, got {text}")
    return width, height


def biomes(text: str) -> list[str]:
    from engine.synth.biomes.registry import biome_names
    registered = biome_names()
    names = list(registered) if text == "all" else [b.strip() for b in text.split(",") if b.strip()]
    unknown = [b for b in names if b not in registered]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown biome {', '.join(unknown) or text!r} "
                                         f"(choose from {', '.join(registered)} or all)")
    return names


class ProgressBars:
    """Turns (stage, done, total) callbacks into tqdm bars on stderr, one per stage."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled, self.bars = enabled, {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        bar = self.bars.get(stage)
        if bar is None:
            from tqdm import tqdm  # here, not at the top: the --warm client never draws a bar itself
            bar = self.bars[stage] = tqdm(total=total, desc=stage, unit="it", file=sys.stderr, leave=True)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
