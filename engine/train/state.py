"""The training-state file beside each checkpoint: optimiser, schedule, sampler, grad scaler, RNG states,
epoch/step and metrics history, so that a resumed run continues exactly.

Nothing is pickled: tensors (optimiser moments, RNG states, the neighbour table) go into a safetensors file
under generated names, and everything else is JSON in its header, with those names where the tensors were.
Dicts with integer keys (optimiser state) and tuples are tagged so they come back as they were.
"""
from __future__ import annotations

import json
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from engine.atomic import atomic_path
from engine.errors import ViewfinderError

STATE_FORMAT = "viewfinder.trainstate"
STATE_VERSION = 1
_TENSOR, _TUPLE, _INT_KEYS, _NDARRAY = "__tensor__", "__tuple__", "__int_keys__", "__ndarray__"


class TrainingStateError(ViewfinderError, ValueError):
    """A training-state file that is missing, corrupt or not from this trainer; names the file."""


def encode_state(value: Any, tensors: dict[str, torch.Tensor], name: str = "s") -> Any:
    """Nested dicts/lists/tuples of JSON values, tensors and numpy arrays -> JSON + `tensors`."""
    if isinstance(value, torch.Tensor):
        key = f"t{len(tensors)}"
        tensors[key] = value.detach().to("cpu").contiguous().clone()
        return {_TENSOR: key}
    if isinstance(value, np.ndarray):
        key = f"t{len(tensors)}"
        tensors[key] = torch.from_numpy(np.ascontiguousarray(value).copy())
        return {_NDARRAY: key}
    if isinstance(value, Mapping):
        if value and all(isinstance(k, int) for k in value):
            return {_INT_KEYS: [[k, encode_state(v, tensors, f"{name}.{k}")] for k, v in value.items()]}
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f"{name}: state dict keys must be all str or all int")
        return {k: encode_state(v, tensors, f"{name}.{k}") for k, v in value.items()}
    if isinstance(value, tuple):
        return {_TUPLE: [encode_state(v, tensors, name) for v in value]}
    if isinstance(value, list):
        return [encode_state(v, tensors, name) for v in value]
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"{name}: cannot store a {type(value).__name__} in a training state")


def decode_state(value: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    if isinstance(value, dict):
        if set(value) == {_TENSOR}:
            return tensors[value[_TENSOR]]
        if set(value) == {_NDARRAY}:
            return tensors[value[_NDARRAY]].numpy()
        if set(value) == {_TUPLE}:
            return tuple(decode_state(v, tensors) for v in value[_TUPLE])
        if set(value) == {_INT_KEYS}:
            return {int(k): decode_state(v, tensors) for k, v in value[_INT_KEYS]}
        return {k: decode_state(v, tensors) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_state(v, tensors) for v in value]
    return value


def write_training_state(path: str | Path, state: Mapping[str, Any]) -> Path:
    """Write `state` atomically to `path` (a .safetensors file)."""
    path = Path(path)
    tensors: dict[str, torch.Tensor] = {}
    encoded = encode_state(dict(state), tensors)
    header = {"format": STATE_FORMAT,
              "state": json.dumps({"format_version": STATE_VERSION, "state": encoded}, allow_nan=True)}
    with atomic_path(path, suffix=".tmp") as tmp:
        save_file(tensors, str(tmp), metadata=header)
    return path


def read_training_state(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise TrainingStateError(f"{path}: no such training-state file")
    try:
        with safe_open(str(path), framework="pt") as handle:
            header = handle.metadata() or {}
        tensors = load_file(str(path), device="cpu")
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise TrainingStateError(f"{path}: corrupt or truncated training state ({exc})") from exc
    if header.get("format") != STATE_FORMAT or "state" not in header:
        raise TrainingStateError(f"{path}: not a Viewfinder training-state file")
    try:
        payload = json.loads(header["state"])
    except json.JSONDecodeError as exc:
        raise TrainingStateError(f"{path}: training state is not valid JSON ({exc})") from exc
    if payload.get("format_version") != STATE_VERSION:
        raise TrainingStateError(f"{path}: training-state version {payload.get('format_version')!r}; this "
                                 f"Viewfinder reads version {STATE_VERSION}")
    try:
        return decode_state(payload["state"], tensors)
    except KeyError as exc:
        raise TrainingStateError(f"{path}: training state refers to a missing tensor {exc}") from exc


# ---------------------------------------------------------------- RNG states
def rng_states() -> dict[str, Any]:
    kind, keys, position, has_gauss, cached = np.random.get_state()
    states: dict[str, Any] = {"torch": torch.get_rng_state(),
                              "numpy": (kind, keys.astype(np.int64), position, has_gauss, cached),
                              "python": random.getstate()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: Mapping[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    kind, keys, position, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), int(position), int(has_gauss), float(cached)))
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in states and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(list(states["cuda"]))
