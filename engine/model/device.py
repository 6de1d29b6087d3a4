"""Device choice and mixed precision: CUDA when present (bf16, else fp16 autocast), else CPU in float32; and
the process group of a multi-GPU / multi-node run launched by torchrun (training, sharded indexing), with the
few collectives they need. A plain (non-torchrun) run is a group of one where every collective is a no-op.

torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; the backend is NCCL on CUDA and
gloo on CPU. Multi-node runs need their output folder on a file system every node sees.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist


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


def requested_device(name: str, local_rank: int = 0) -> torch.device:
    """"auto" -> this process's CUDA device when present, else CPU; "cuda" -> cuda:LOCAL_RANK."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"device {name!r} requested but CUDA is not available")
        if device.index is None:
            device = torch.device("cuda", local_rank)
    return device


@dataclass
class DistributedContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @classmethod
    def from_environment(cls, device: str = "auto", timeout: timedelta | None = None) -> DistributedContext:
        """A context for this process: joins the torchrun group when WORLD_SIZE > 1 (`timeout`: how long
        its collectives wait for the other processes; None: torch's default)."""
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        chosen = requested_device(device, local_rank)
        if world_size <= 1:
            return cls(0, 1, 0, chosen, False)
        owns = False
        if not dist.is_initialized():
            if chosen.type == "cuda":
                torch.cuda.set_device(chosen)
            options = {} if timeout is None else {"timeout": timeout}
            dist.init_process_group(backend="nccl" if chosen.type == "cuda" else "gloo", **options)
            owns = True
        return cls(dist.get_rank(), dist.get_world_size(), local_rank, chosen, owns)

    def close(self) -> None:
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()
            self.owns_group = False

    # ------------------------------------------------------------ collectives
    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """Element-wise sum over processes (a CPU float64 tensor in and out)."""
        if not self.active:
            return values
        work = values.to(self._comm_device(), torch.float64)
        dist.all_reduce(work, op=dist.ReduceOp.SUM)
        return work.cpu()

    def broadcast(self, tensor: torch.Tensor, source: int = 0) -> torch.Tensor:
        """Rank `source`'s tensor on every process (same shape and dtype everywhere)."""
        if not self.active:
            return tensor
        work = tensor.to(self._comm_device()).contiguous()
        dist.broadcast(work, src=source)
        return work.cpu()

    def broadcast_object(self, value, source: int = 0):
        if not self.active:
            return value
        holder = [value]
        dist.broadcast_object_list(holder, src=source)
        return holder[0]

    def gather_rows(self, rows: torch.Tensor, indices: torch.Tensor, total: int) -> torch.Tensor:
        """Every process holds `rows` for item `indices` of `total`: the full (total, ...) table everywhere."""
        if not self.active:
            out = torch.zeros((total, *rows.shape[1:]), dtype=rows.dtype)
            out[indices] = rows
            return out
        per_rank = -(-total // self.world_size)
        padded = torch.zeros((per_rank, *rows.shape[1:]), dtype=rows.dtype)
        padded_index = torch.full((per_rank,), -1, dtype=torch.int64)
        padded[:len(rows)] = rows
        padded_index[:len(indices)] = indices
        device = self._comm_device()
        gathered = [torch.zeros_like(padded, device=device) for _ in range(self.world_size)]
        gathered_index = [torch.zeros_like(padded_index, device=device) for _ in range(self.world_size)]
        dist.all_gather(gathered, padded.to(device))
        dist.all_gather(gathered_index, padded_index.to(device))
        out = torch.zeros((total, *rows.shape[1:]), dtype=rows.dtype)
        for part, part_index in zip(gathered, gathered_index):
            keep = part_index >= 0
            out[part_index[keep].cpu()] = part[keep].cpu()
        return out

    def average_buffers(self, module: torch.nn.Module) -> None:
        """Average floating-point buffers (BatchNorm running statistics) over processes: DDP copies rank 0's
        buffers into the others at each forward, so after the last one they differ by a step."""
        if not self.active:
            return
        for buffer in module.buffers():
            if buffer.is_floating_point():
                work = buffer.detach().to(self._comm_device())
                dist.all_reduce(work, op=dist.ReduceOp.SUM)
                buffer.copy_(work.to(buffer.device) / self.world_size)

    def _comm_device(self) -> torch.device:
        return self.device if self.device.type == "cuda" and dist.get_backend() == "nccl" else torch.device("cpu")
