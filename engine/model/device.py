"""Device choice and mixed precision: CUDA when present (bf16, else fp16 autocast), else CPU in float32."""
from __future__ import annotations

import contextlib

import torch


def best_device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The autocast dtype used for inference on `device`; None means plain float32."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def inference_autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """Autocast for inference on `device`; leaves an autocast the caller already opened untouched."""
    dtype = autocast_dtype(device)
    if dtype is None or torch.is_autocast_enabled(device.type):
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
