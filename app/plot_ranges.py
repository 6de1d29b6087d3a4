"""Axis ranges for live training curves that change only when the data outgrows them.

A pyqtgraph axis lays its ticks and labels out again whenever its view range moves; with auto-range on,
every new loss value moved both axes and a curve redraw cost the GUI thread two repaints of ~20 ms each.
Holding the range until the data leaves it (or shrinks well inside it) keeps repaints cheap and the
axes still while a run trains.
"""
from __future__ import annotations

import math

PADDING = 0.08          # of the data's span, either side
SHRINK_BELOW = 0.4      # refit once the data fills less than this share of the range


def held_range(current: tuple[float, float] | None, low: float, high: float) -> tuple[float, float]:
    """`current` while it still suits data spanning [low, high], else a padded fit of the data."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return current if current is not None else (0.0, 1.0)
    span = high - low
    if current is not None:
        bottom, top = current
        if bottom <= low and high <= top and span >= SHRINK_BELOW * (top - bottom):
            return current
    pad = PADDING * span if span > 0 else max(abs(high) * 0.05, 0.05)
    return low - pad, high + pad


def steps_range(steps_done: int, steps_planned: int) -> tuple[float, float]:
    """The step axis spans the whole planned run, so it moves only if the plan changes or the run outgrows it."""
    return 0.0, float(max(steps_done, steps_planned, 1))
