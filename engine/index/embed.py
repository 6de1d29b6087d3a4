"""Gallery embedding: tiles are read and decoded by background threads while the model embeds earlier
batches, so the model does not wait on I/O (GDAL releases the GIL while it reads and decodes).
"""
from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from engine.data.geometry import TileFrame
from engine.geo.raster import MapRaster
from engine.geo.tiling import TilingSpec
from engine.model import CrossViewNet
from engine.progress import CancelToken, ProgressCallback


@dataclass
class EmbeddingRun:
    """Descriptors of a list of tiles and where the time went."""

    descriptors: np.ndarray       # (N, D) float32, unit rows, in tile order
    seconds: float                # wall time of the whole run
    model_seconds: float          # time inside the model
    read_wait_seconds: float      # time the model waited for tiles to be read

    @property
    def tiles_per_second(self) -> float:
        return len(self.descriptors) / self.seconds if self.seconds > 0 else float("inf")


def read_tiles(raster: MapRaster, tiles: Sequence[TileFrame]) -> np.ndarray:
    """(B, H, W, 3) uint8 RGB of the tiles, read at their own metres per pixel (outside the map: black)."""
    return np.stack([raster.read_tile(tile)[0] for tile in tiles])


def images_to_tensor(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """(B, H, W, 3) uint8 -> (B, 3, H, W) uint8 tensor (a view: already channels_last in memory)."""
    tensor = torch.from_numpy(images).permute(0, 3, 1, 2)
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor


class _ThreadRasters:
    """One MapRaster per reader thread: rasterio datasets must not be shared between threads."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path, self.local, self.lock, self.opened = path, threading.local(), threading.Lock(), []

    def get(self) -> MapRaster:
        raster = getattr(self.local, "raster", None)
        if raster is None:
            raster = self.local.raster = MapRaster(self.path)
            with self.lock:
                self.opened.append(raster)
        return raster

    def close(self) -> None:
        for raster in self.opened:
            raster.close()


def embed_tiles(model: CrossViewNet, map_path: str | os.PathLike, tiles: Sequence[TileFrame], *,
                batch_size: int = 8, reader_threads: int = 2, prefetch_batches: int = 4,
                progress: ProgressCallback | None = None, cancel: CancelToken | None = None,
                stage: str = "embedding tiles") -> EmbeddingRun:
    """Global descriptors of `tiles` of the map at `map_path`, in order."""
    if batch_size < 1 or reader_threads < 1 or prefetch_batches < 1:
        raise ValueError("batch_size, reader_threads and prefetch_batches must be at least 1")
    batches = [tiles[i:i + batch_size] for i in range(0, len(tiles), batch_size)]
    descriptors = np.zeros((len(tiles), model.config.descriptor_dim), dtype=np.float32)
    start = time.perf_counter()
    model_seconds = wait_seconds = 0.0
    rasters = _ThreadRasters(map_path)
    pending: deque[Future] = deque()
    done = 0
    if progress:
        progress(stage, 0, len(tiles))
    with ThreadPoolExecutor(max_workers=reader_threads, thread_name_prefix="tile-reader") as pool:
        try:
            submitted = 0
            for index in range(len(batches)):
                while submitted < len(batches) and submitted < index + prefetch_batches:
                    pending.append(pool.submit(lambda chunk: read_tiles(rasters.get(), chunk), batches[submitted]))
                    submitted += 1
                if cancel is not None:
                    cancel.raise_if_cancelled()
                waited = time.perf_counter()
                images = pending.popleft().result()
                model_start = time.perf_counter()
                wait_seconds += model_start - waited
                with torch.inference_mode():
                    embedding = model.embed_satellite(images_to_tensor(images, model.device), with_pyramid=False)
                    descriptors[done:done + len(images)] = embedding.descriptor.float().cpu().numpy()
                model_seconds += time.perf_counter() - model_start
                done += len(images)
                if progress:
                    progress(stage, done, len(tiles))
        finally:
            for future in pending:
                future.cancel()
            pool.shutdown(wait=True, cancel_futures=True)
            rasters.close()
    return EmbeddingRun(descriptors, time.perf_counter() - start, model_seconds, wait_seconds)


def tiling_for_model(model: CrossViewNet, overlap: float = 0.5, min_valid_fraction: float = 0.25,
                     snap_to_crs_grid: bool = True) -> TilingSpec:
    """Gallery tiles of the model's satellite input size and ground resolution."""
    height, width = model.config.satellite_hw
    if height != width:
        raise ValueError(f"gallery tiles are square; this model's satellite input is {width}x{height} px")
    return TilingSpec(tile_px=int(width), metres_per_px=float(model.config.metres_per_pixel), overlap=overlap,
                      min_valid_fraction=min_valid_fraction, snap_to_crs_grid=snap_to_crs_grid)
