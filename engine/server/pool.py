"""Warm Localizers kept between the server's commands. A model is loaded and prepared once per (checkpoint
file as it is now, device) and shared by the Localizers of every settings combination that uses it; the
most recently used few stay in memory."""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path

#: Localizers kept; each distinct model among them holds tens to hundreds of MB.
MAX_WARM = 4


class LocalizerPool:
    def __init__(self, size: int = MAX_WARM) -> None:
        self.size = size
        self._warm: OrderedDict[tuple, object] = OrderedDict()
        self._lock = threading.Lock()      # status requests read the pool from another thread

    def __call__(self, model, device, config):
        """engine.commands.localizers' source: the warm Localizer for these, or a new one."""
        model_key = (_model_key(model), device)
        # the cache folder as this command's environment resolves it ($VIEWFINDER_CACHE is the client's)
        cache = str(config.resolved_cache_dir()) if config.use_cache else None
        key = (*model_key, repr(config), cache)
        with self._lock:
            localizer = self._warm.pop(key, None)
            loaded = next((kept.loaded for kept_key, kept in self._warm.items() if kept_key[:2] == model_key), None)
        if localizer is None:
            from engine.pipeline import Localizer
            localizer = Localizer(loaded or model, device=device, config=config)   # a failure is not kept
        with self._lock:
            self._warm[key] = localizer
            while len(self._warm) > self.size:
                self._warm.popitem(last=False)
        return localizer

    def descriptions(self) -> list[str]:
        """The models loaded, each once, most recently used last (for `viewfinder serve --status`)."""
        with self._lock:
            kept = list(self._warm.values())
        names = [f"{localizer.model_description} on {localizer.model.device}" for localizer in kept]
        return list(dict.fromkeys(reversed(names)))[::-1]


def _model_key(model) -> tuple:
    """A checkpoint rewritten in place (a new training run) is a new model."""
    if model is None:
        from engine.pipeline import DEFAULT_MODEL_PATH
        path = DEFAULT_MODEL_PATH
    else:
        path = Path(model).expanduser().absolute()
    try:
        info = os.stat(path)
    except OSError:
        return (str(model), None)
    return (str(model), str(path), info.st_size, info.st_mtime_ns)
