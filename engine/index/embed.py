"""Gallery embedding: tiles are read and decoded by background threads while the model embeds earlier
batches, so the model does not wait on I/O (GDAL releases the GIL while it reads and decodes).

Reading is the costly part of I/O: resampling the map to the model's ground resolution takes GDAL several
times longer than decoding it. With 50 % overlap every map pixel lies in four tiles, so tiles on the
stride lattice (a snapped tiling) are assembled from stride-sized blocks, each read and resampled once and
kept while neighbouring tiles need it.
"""
from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict, deque
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


def images_to_tensor(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """(B, H, W, 3) uint8 -> (B, 3, H, W) uint8 tensor (a view: already channels_last in memory)."""
    tensor = torch.from_numpy(images).permute(0, 3, 1, 2)
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor


class TileReader:
    """Reads tiles of one map as (B, H, W, 3) uint8 RGB (outside the map and nodata: black).

    Safe to share between threads: each thread opens its own MapRaster (rasterio datasets must not be
    shared). With a `spec` whose stride divides the tile size, tiles on its lattice are assembled from
    cached blocks; any other tile is read directly. Both give the same pixels up to resampling round-off
    at block seams (mean difference ~0.01 grey levels).
    """

    def __init__(self, path: str | os.PathLike, spec: TilingSpec | None = None, max_blocks: int = 1024,
                 run_blocks: int = 8) -> None:
        self.path = path
        self._local = threading.local()
        self._lock = threading.Lock()
        self._opened: list[MapRaster] = []
        self._blocks: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()
        self.max_blocks = max(max_blocks, 4 * run_blocks)
        self.run_blocks = run_blocks
        self.spec = spec
        self.block_px = 0
        if spec is not None and spec.overlap > 0:
            stride_px = spec.tile_px * (1.0 - spec.overlap)
            if abs(stride_px - round(stride_px)) < 1e-9 and spec.tile_px % round(stride_px) == 0:
                self.block_px = int(round(stride_px))

    def raster(self) -> MapRaster:
        raster = getattr(self._local, "raster", None)
        if raster is None:
            raster = self._local.raster = MapRaster(self.path)
            with self._lock:
                self._opened.append(raster)
        return raster

    def close(self) -> None:
        with self._lock:
            for raster in self._opened:
                raster.close()
            self._opened.clear()
            self._blocks.clear()

    def __enter__(self) -> TileReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def read(self, tiles: Sequence[TileFrame]) -> np.ndarray:
        return np.stack([self.read_tile(tile) for tile in tiles])

    def read_tile(self, tile: TileFrame) -> np.ndarray:
        corner = self._lattice_corner(tile)
        if corner is None:
            return self.raster().read_tile(tile)[0]
        column, row = corner
        size, per_side = self.block_px, self.spec.tile_px // self.block_px
        image = np.empty((tile.height_px, tile.width_px, 3), dtype=np.uint8)
        for down in range(per_side):
            for right in range(per_side):
                block = self._block(column + right, row - down)
                image[down * size:(down + 1) * size, right * size:(right + 1) * size] = block
        return image

    def _lattice_corner(self, tile: TileFrame) -> tuple[int, int] | None:
        """(column, row) of the tile's north-west block on the stride lattice, or None if it is not on it."""
        spec = self.spec
        if not self.block_px or tile.width_px != spec.tile_px or tile.height_px != spec.tile_px \
                or abs(tile.metres_per_px - spec.metres_per_px) > 1e-12:
            return None
        column, row = tile.origin_x / spec.stride_m, tile.origin_y / spec.stride_m
        if abs(column - round(column)) > 1e-6 or abs(row - round(row)) > 1e-6:
            return None
        return int(round(column)), int(round(row))

    def _block(self, column: int, row: int) -> np.ndarray:
        """Block with north-west corner (column, row) x stride, read once and kept while tiles need it.

        A miss reads a run of blocks eastwards in one call (tiles come row by row), which halves the cost
        per block against reading them one by one.
        """
        key = (column, row)
        with self._lock:
            block = self._blocks.get(key)
            if block is not None:
                self._blocks.move_to_end(key)
                return block
        stride, size, raster = self.spec.stride_m, self.block_px, self.raster()
        west, north = column * stride, row * stride
        # runs only over blocks wholly inside the map's west-east extent: a read reaching past a map edge is
        # rescaled by a rounded pixel count, which would shift the whole run by up to half a pixel
        left, _, right, _ = raster.bounds
        inside = int(np.floor((right - west) / stride + 1e-9)) if west >= left - 1e-6 else 0
        run = max(1, min(self.run_blocks, inside))
        strip = raster.read_bounds((west, north - stride, west + run * stride, north), (run * size, size))[0]
        blocks = [np.ascontiguousarray(strip[:, i * size:(i + 1) * size]) for i in range(run)]
        with self._lock:
            for offset, part in enumerate(blocks):
                self._blocks[(column + offset, row)] = part
                self._blocks.move_to_end((column + offset, row))
            while len(self._blocks) > self.max_blocks:
                self._blocks.popitem(last=False)
        return blocks[0]


def block_budget(tiles: Sequence[TileFrame], spec: TilingSpec | None) -> int:
    """Blocks a TileReader keeps for row-by-row reading: a few block rows across the tiled width."""
    if spec is None or not tiles:
        return 0
    columns = len({round(t.origin_x, 3) for t in tiles})
    per_side = max(1, round(1.0 / (1.0 - spec.overlap)))
    return (per_side + 2) * (columns + per_side + 8)


def embed_tiles(model: CrossViewNet, map_path: str | os.PathLike, tiles: Sequence[TileFrame], *,
                spec: TilingSpec | None = None, batch_size: int = 8, reader_threads: int = 2,
                prefetch_batches: int = 4, progress: ProgressCallback | None = None,
                cancel: CancelToken | None = None, stage: str = "embedding tiles") -> EmbeddingRun:
    """Global descriptors of `tiles` (in that order) of the map at `map_path`; `spec`: their tiling."""
    if batch_size < 1 or reader_threads < 1 or prefetch_batches < 1:
        raise ValueError("batch_size, reader_threads and prefetch_batches must be at least 1")
    batches = [tiles[i:i + batch_size] for i in range(0, len(tiles), batch_size)]
    descriptors = np.zeros((len(tiles), model.config.descriptor_dim), dtype=np.float32)
    start = time.perf_counter()
    model_seconds = wait_seconds = 0.0
    reader = TileReader(map_path, spec, max(64, block_budget(tiles, spec)))
    pending: deque[Future] = deque()
    done = 0
    if progress:
        progress(stage, 0, len(tiles))
    with ThreadPoolExecutor(max_workers=reader_threads, thread_name_prefix="tile-reader") as pool:
        try:
            submitted = 0
            for index in range(len(batches)):
                while submitted < len(batches) and submitted < index + prefetch_batches:
                    pending.append(pool.submit(reader.read, batches[submitted]))
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
            reader.close()
    return EmbeddingRun(descriptors, time.perf_counter() - start, model_seconds, wait_seconds)


def tiling_for_model(model: CrossViewNet, overlap: float = 0.5, min_valid_fraction: float = 0.25,
                     snap_to_crs_grid: bool = True) -> TilingSpec:
    """Gallery tiles of the model's satellite input size and ground resolution."""
    height, width = model.config.satellite_hw
    if height != width:
        raise ValueError(f"gallery tiles are square; this model's satellite input is {width}x{height} px")
    return TilingSpec(tile_px=int(width), metres_per_px=float(model.config.metres_per_pixel), overlap=overlap,
                      min_valid_fraction=min_valid_fraction, snap_to_crs_grid=snap_to_crs_grid)
