"""Where commands get their Localizer: a new one per run, or a warm one kept by `viewfinder serve`.

The warm server (engine/server/pool.py) installs its pool here, so it runs the very same command code as a
plain `viewfinder` process and only the model loading is skipped.
"""
from __future__ import annotations

from collections.abc import Callable

#: (model, device, LocalizerConfig) -> Localizer; None: build a new one each time.
_source: Callable | None = None


def use_source(source: Callable | None) -> None:
    global _source
    _source = source


def get_localizer(model, device, config):
    """A Localizer for the model (path or None for the default), device and settings; CheckpointError if the
    model cannot be read."""
    if _source is not None:
        return _source(model, device, config)
    from engine.pipeline import Localizer
    return Localizer(model, device=device, config=config)
