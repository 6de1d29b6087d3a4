"""Checkpoint files: safetensors weights with the model's JSON metadata in the header; atomic writes.

Nothing here unpickles: safetensors holds raw tensors, and .pth/.pt files (third-party backbone weights) are
read with torch.load(weights_only=True), which only accepts tensors and plain containers.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor

from engine.atomic import atomic_path
from engine.errors import ViewfinderError

CHECKPOINT_FORMAT = "viewfinder.crossview"
CHECKPOINT_VERSION = 1
_FORMAT_KEY = "format"
_METADATA_KEY = "viewfinder"


class CheckpointError(ViewfinderError, ValueError):
    """A model or weights file is missing, corrupt, truncated or does not fit the model; names the file."""


def write_checkpoint(path: str | Path, tensors: Mapping[str, Tensor], metadata: Mapping[str, Any]) -> Path:
    """Write tensors + JSON metadata to `path` atomically (readers never see a half-written file)."""
    path = Path(path)
    header = {_FORMAT_KEY: CHECKPOINT_FORMAT,
              _METADATA_KEY: json.dumps({"format_version": CHECKPOINT_VERSION, **metadata}, sort_keys=True)}
    plain = {key: tensor.detach().to("cpu").contiguous() for key, tensor in tensors.items()}
    with atomic_path(path, suffix=".tmp") as tmp:
        save_file(plain, str(tmp), metadata=header)
    return path


def read_checkpoint_metadata(path: str | Path) -> dict[str, Any]:
    """The JSON metadata of a checkpoint, read from the header without loading any tensor."""
    path = _existing(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            header = handle.metadata() or {}
    except Exception as exc:  # safetensors raises its own error types for corrupt headers
        raise CheckpointError(f"{path}: not a readable safetensors checkpoint ({exc})") from exc
    return _parse_metadata(path, header)


def read_checkpoint(path: str | Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """(tensors, metadata) of a checkpoint written by write_checkpoint."""
    path = _existing(path)
    metadata = read_checkpoint_metadata(path)
    try:
        tensors = load_file(str(path), device="cpu")
    except Exception as exc:
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint ({exc})") from exc
    return tensors, metadata


def read_tensor_file(path: str | Path) -> dict[str, Tensor]:
    """A state dict from a .safetensors file, or from a .pth/.pt file with weights_only=True."""
    path = _existing(path)
    if path.suffix == ".safetensors":
        try:
            return load_file(str(path), device="cpu")
        except Exception as exc:
            raise CheckpointError(f"{path}: corrupt or truncated safetensors file ({exc})") from exc
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(
            f"{path}: not a weights-only torch state dict ({type(exc).__name__}: {exc})") from exc
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(loaded, Mapping) and isinstance(loaded.get(key), Mapping):
            loaded = loaded[key]
    if not isinstance(loaded, Mapping) or not loaded or not all(
            isinstance(key, str) and isinstance(value, Tensor) for key, value in loaded.items()):
        raise CheckpointError(f"{path}: does not hold a state dict of named tensors")
    return dict(loaded)


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    return path


def _parse_metadata(path: Path, header: Mapping[str, str]) -> dict[str, Any]:
    if header.get(_FORMAT_KEY) != CHECKPOINT_FORMAT or _METADATA_KEY not in header:
        raise CheckpointError(f"{path}: safetensors file without Viewfinder model metadata")
    try:
        metadata = json.loads(header[_METADATA_KEY])
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: model metadata is not valid JSON ({exc})") from exc
    version = metadata.get("format_version")
    if version != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {version!r}; this Viewfinder reads version "
            f"{CHECKPOINT_VERSION}")
    return metadata
